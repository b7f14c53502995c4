// Package parse turns raw firewall, IDS and EDR records into vendor-neutral Events.
//
// A Parser only reads a format; it does not decide what is an indicator. The extract package
// turns Events into canonical events.Observation values (canonicalisation, internal vs external,
// direction, allow-lists).
package parse

import (
	"errors"
	"time"
)

// Event is one raw record read into vendor-neutral fields. Zero values mean "absent".
type Event struct {
	Time     time.Time // event time from the record; zero when the record has none
	Vendor   string    // e.g. "Suricata", "Fortinet"
	Product  string    // e.g. "EVE", "FortiGate"
	Kind     string    // vendor event type, e.g. "alert", "dns", "conn", "TRAFFIC"
	SrcIP    string    // raw text as found (the extractor canonicalises)
	DstIP    string
	SrcPort  int
	DstPort  int
	Protocol string // lower-case: tcp, udp, icmp, ...
	SrcHost  string // host names of the two ends when present
	DstHost  string
	User     string
	Action   string // vendor word as found: "allowed", "deny", "drop", "blocked", "pass", ...
	Severity int    // normalised: 0 unknown/info, 1 low, 2 medium, 3 high, 4 critical
	Rule     string // rule / signature name or id
	// Observables are extra indicator candidates (domains, URLs, hashes, IPs in other fields).
	Observables []Observable
}

// Observable is an indicator candidate with the field it came from.
type Observable struct {
	Kind  string // "ip", "domain", "url", "md5", "sha1", "sha256", "hash" (length decides)
	Value string // raw text as found
	Field string // source field, e.g. "dns.rrname", "Hashes.SHA256"
}

// Parser reads one raw record format. Implementations are safe for concurrent use.
type Parser interface {
	// Name is the format name used in configuration, e.g. "suricata_eve".
	Name() string
	// Detect reports whether raw looks like this format (cheap, used when the format is "auto").
	Detect(raw []byte) bool
	// Parse reads one record. It returns a *Error for input it cannot read.
	Parse(raw []byte) (Event, error)
}

// Reasons for rejecting a record; they become the DLQ error class.
const (
	ReasonUnknownFormat = "unknown_format"
	ReasonTooLarge      = "too_large"
	ReasonInvalidUTF8   = "invalid_utf8"
	ReasonMalformed     = "malformed"   // truncated JSON, broken CEF header, bad CSV ...
	ReasonUnsupported   = "unsupported" // well-formed but an event kind this parser does not read
)

// Error is a record-level parse failure; Reason is one of the Reason* constants.
type Error struct {
	Format string
	Reason string
	Detail string
}

func (e *Error) Error() string { return e.Format + ": " + e.Reason + ": " + e.Detail }

// ErrNoParser is returned by a registry when no parser accepts a record.
var ErrNoParser = errors.New("no parser accepts the record")
