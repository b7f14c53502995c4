package events

import "time"

// Indicator type names used in keys and records.
const (
	TypeIPv4   = "ipv4"
	TypeIPv6   = "ipv6"
	TypeDomain = "domain"
	TypeURL    = "url"
	TypeMD5    = "md5"
	TypeSHA1   = "sha1"
	TypeSHA256 = "sha256"
)

// Sighting directions.
const (
	DirectionInbound  = "inbound"
	DirectionOutbound = "outbound"
	DirectionInternal = "internal"
	DirectionUnknown  = "unknown"
)

// Sighting actions.
const (
	ActionAllowed = "allowed"
	ActionBlocked = "blocked"
	ActionAlerted = "alerted"
	ActionUnknown = "unknown"
)

// Provider result statuses.
const (
	StatusOK          = "ok"
	StatusNotFound    = "not_found"
	StatusError       = "error"
	StatusSkipped     = "skipped"
	StatusBreakerOpen = "breaker_open"
	StatusRateLimited = "rate_limited"
)

// Verdict actions.
const (
	VerdictBlock    = "block"
	VerdictAlert    = "alert"
	VerdictAnnotate = "annotate"
	VerdictReview   = "review"
	VerdictSuppress = "suppress"
)

// Indicator is a canonical indicator of compromise.
type Indicator struct {
	Type  string // one of the Type* constants
	Value string // canonical value
}

// Key returns the Kafka record key of the indicator: "type:value".
func (i Indicator) Key() string { return i.Type + ":" + i.Value }

// Producer says where a raw record came from.
type Producer struct {
	Topic     string
	Partition int32
	Offset    int64
	Format    string // parser name, e.g. "suricata_eve"
	Vendor    string // optional
	Product   string // optional
}

// Sighting is the context in which an indicator was seen.
type Sighting struct {
	AssetIP   string // internal address involved, optional
	AssetHost string // internal host name, optional
	User      string // optional
	Direction string // Direction* constants
	Action    string // Action* constants
	Severity  int32  // 0 unknown/info, 1 low, 2 medium, 3 high, 4 critical
	Rule      string // rule or signature, optional
	SrcPort   int32  // 0 when unknown
	DstPort   int32  // 0 when unknown
	Protocol  string // optional, lower-case
	Count     int32  // identical sightings collapsed into this one (>= 1)
}

// ListMatch records that an indicator matched an allow-list or warninglist.
type ListMatch struct {
	List   string
	Reason string
}

// Observation is one indicator sighted in one raw record (topic indicators.observed).
type Observation struct {
	Indicator  Indicator
	Field      string // field of the raw record it came from
	EventTime  time.Time
	IngestTime time.Time
	Producer   Producer
	Sighting   Sighting
	Allowlist  *ListMatch // set when a list matched at ingest; providers are not queried
}

// ProviderResult is one provider's answer for an indicator.
type ProviderResult struct {
	Provider  string
	Status    string // Status* constants
	Error     string // reason when Status is error / rate_limited / breaker_open
	FetchedAt time.Time
	CachedAt  time.Time // zero when fetched live
	TTL       time.Duration
	Fields    map[string]string // normalised provider fields (evidence)
}

// Port is an open port seen on an IP.
type Port struct {
	Port       int32
	Protocol   string // tcp / udp
	Service    string
	Version    string
	Vulnerable bool
	Tags       []string
}

// CVE is a vulnerability reported on an IP.
type CVE struct {
	ID    string
	CVSS  float64 // CVSS v3 base score, 0 when unknown
	Ports []int32
}

// Exposure is the merged view over all providers.
type Exposure struct {
	Malicious       bool
	InboundScore    int32 // 0 unknown, 1 safe, 2 low, 3 moderate, 4 dangerous, 5 critical
	OutboundScore   int32
	VPN             bool
	Proxy           bool
	Tor             bool
	Hosting         bool
	Cloud           bool
	Scanner         bool
	Mobile          bool
	Darkweb         bool
	OpenPorts       []Port
	CVEs            []CVE
	ASN             int64
	ASName          string
	Org             string
	Country         string // ISO 3166-1 alpha-2, upper-case
	AbuseConfidence int32  // AbuseIPDB 0-100, -1 unknown
	GreyNoiseClass  string // benign / malicious / unknown, empty if no data
	Categories      []string
	FirstSeen       time.Time
	LastSeen        time.Time
}

// Enrichment is an observation plus provider results (topic indicators.enriched).
type Enrichment struct {
	Observation Observation
	Results     []ProviderResult
	Exposure    Exposure
	EnrichedAt  time.Time
}

// Reason explains one contribution to a verdict.
type Reason struct {
	Code   string // machine-readable, e.g. "criminalip.inbound"
	Text   string // human-readable, e.g. "criminalip.inbound=Critical"
	Weight float64
}

// SightingSummary summarises internal telemetry for an indicator.
type SightingSummary struct {
	Count          int64
	Count1h        int64
	Count24h       int64
	Count7d        int64
	DistinctAssets int64
	FirstSeen      time.Time
	LastSeen       time.Time
	Allowed        int64
	Blocked        int64
	Alerted        int64
	BlockedShare   float64
	MaxSeverity    int32
}

// Attribute is one ThreatQ attribute (name, value).
type Attribute struct {
	Name  string
	Value string
}

// Verdict is correlate's decision for an indicator (topic indicators.verdicts).
type Verdict struct {
	Indicator               Indicator
	Priority                int32 // ThreatQ 0-10
	Level                   string
	Action                  string // Verdict* constants
	Reasons                 []Reason
	PolicyVersion           string
	PreviousPriority        int32 // -1 when none
	PriorityWithoutExposure int32
	ExposureChanged         bool
	Sightings               SightingSummary
	Attributes              []Attribute
	Tags                    []string
	Sources                 []string // providers that contributed
	SetScore                bool     // the policy asks for a manual ThreatQ score
	Description             string
	EventTime               time.Time // event time of the observation that triggered it
	DecidedAt               time.Time
	ValidUntil              time.Time
}

// Feedback is an analyst's decision read back from ThreatQ (topic indicators.feedback).
type Feedback struct {
	Indicator      Indicator
	ThreatQID      int64
	Kind           string // status_changed / score_changed / removed
	NewStatus      string
	PreviousStatus string
	NewScore       float64 // -1 when unchanged/unknown
	Reason         string
	Analyst        string
	VigilAction    string
	VigilPriority  int32
	ChangedAt      time.Time
}

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// DeadLetter is a record that could not be processed (topic vigil.dlq). It never holds secrets.
type DeadLetter struct {
	Key             []byte
	Value           []byte
	Headers         []Header
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	Stage           string
	ErrorClass      string
	Message         string
	Attempts        int32
	Time            time.Time
}
