// Package criminalip is the Criminal IP (AI Spera) enrichment client.
//
// IPs are looked up with GET /v1/asset/ip/report?ip=…&full=true, domains with the quick check
// GET /v1/domain/quick/hash/view?domain=…; both authenticate with the x-api-key header. Criminal IP
// reports most errors as HTTP 200 with {"status":<code>,"message":…}; the client maps them to the
// provider sentinels (see bodyError).
package criminalip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

// Name is the provider id used in cache keys, metrics and records.
const Name = "criminalip"

// DefaultBaseURL is the production API.
const DefaultBaseURL = "https://api.criminalip.io"

// Config configures a Client.
type Config struct {
	BaseURL    string        // default DefaultBaseURL
	APIKey     string        // required; sent as x-api-key, never logged or put in errors
	Timeout    time.Duration // per call; default provider.DefaultTimeout
	HTTPClient *http.Client  // optional; default a new client
}

// Client queries Criminal IP. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	key     string
	timeout time.Duration
	http    *http.Client
}

var _ provider.Provider = (*Client)(nil)

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := provider.ParseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("criminalip: %w", err)
	}
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("criminalip: api key is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = provider.DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	return &Client{base: base, key: cfg.APIKey, timeout: cfg.Timeout, http: cfg.HTTPClient}, nil
}

// Name returns "criminalip".
func (c *Client) Name() string { return Name }

// Supports reports ipv4, ipv6 and domain. (Sources conflict on IPv6; the client sends it.)
func (c *Client) Supports(indicatorType string) bool {
	return indicatorType == events.TypeIPv4 || indicatorType == events.TypeIPv6 || indicatorType == events.TypeDomain
}

// Lookup queries one canonical indicator.
func (c *Client) Lookup(ctx context.Context, ind events.Indicator) (provider.Result, error) {
	if ind.Type == events.TypeDomain {
		return c.lookupDomain(ctx, ind)
	}
	addr, err := provider.CanonicalIP(ind)
	if err != nil {
		return provider.Result{}, err
	}
	q := url.Values{"ip": {addr.String()}, "full": {"true"}}
	resp, err := provider.Get(ctx, c.http, c.timeout, c.base, "/v1/asset/ip/report", q, c.header())
	if err != nil {
		return provider.Result{}, err
	}
	if resp.Status == http.StatusNotFound {
		return provider.Result{Found: false}, nil
	}
	if resp.Status != http.StatusOK {
		return provider.Result{}, provider.StatusError(resp.Status, resp.Header, c.redact(firstMessage(resp.Body)))
	}
	var r report
	if err := decodeStrict(resp.Body, &r); err != nil {
		return provider.Result{}, err
	}
	if r.Status == nil {
		return provider.Result{}, provider.BadResponse("report: missing status")
	}
	if *r.Status != http.StatusOK {
		if *r.Status == http.StatusNotFound {
			return provider.Result{Found: false}, nil
		}
		return provider.Result{}, c.bodyError(*r.Status, r.Message)
	}
	return convertReport(addr, &r)
}

func (c *Client) header() http.Header {
	return http.Header{"X-Api-Key": {c.key}, "Accept": {"application/json"}}
}

// redact removes the API key from provider text and bounds its length.
func (c *Client) redact(msg string) string {
	if c.key != "" {
		msg = strings.ReplaceAll(msg, c.key, "[redacted]")
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// bodyError maps the {"status","message"} pair of a Criminal IP error body to a sentinel:
// "invalid api key" → ErrAuth, "unable to call api at the same time" → ErrRateLimited,
// "limit exceeded" (credits used up) → ErrQuota, "Invalid IP Address." → ErrInvalidInput,
// then by status: 401/403 → ErrAuth, 429 → ErrRateLimited, 5xx → ErrUnavailable,
// 400/413/414/415 → ErrInvalidInput, else ErrBadResponse.
func (c *Client) bodyError(status int, message string) error {
	msg := strings.ToLower(strings.TrimSpace(message))
	e := &provider.Error{Status: status, Message: c.redact(message)}
	switch {
	case strings.Contains(msg, "invalid api key"):
		e.Kind = provider.ErrAuth
	case strings.Contains(msg, "at the same time"):
		e.Kind = provider.ErrRateLimited
	case strings.Contains(msg, "limit exceeded") || (strings.Contains(msg, "exceeded") && strings.Contains(msg, "limit")):
		e.Kind = provider.ErrQuota
	case strings.Contains(msg, "invalid ip"):
		e.Kind = provider.ErrInvalidInput
	case status == 401 || status == 403:
		e.Kind = provider.ErrAuth
	case status == 429:
		e.Kind = provider.ErrRateLimited
	case status >= 500:
		e.Kind = provider.ErrUnavailable
	case status == 400 || status == 413 || status == 414 || status == 415:
		e.Kind = provider.ErrInvalidInput
	default:
		e.Kind = provider.ErrBadResponse
	}
	if e.Message == "" {
		e.Message = "status " + strconv.Itoa(status)
	}
	return e
}

// firstMessage extracts "message" from a JSON body for error text, if there is one.
func firstMessage(body []byte) string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &m) == nil {
		return m.Message
	}
	return ""
}

func decodeStrict(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return provider.BadResponse("body is not a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return provider.BadResponse("decode: %v", err)
	}
	return nil
}

// Score is a Criminal IP score: 1 Safe, 2 Low, 3 Moderate, 4 Dangerous, 5 Critical (0 = absent).
// It decodes from the names (any case) or the legacy integers 1–5.
type Score int32

var scoreNames = []string{"", "Safe", "Low", "Moderate", "Dangerous", "Critical"}

// String returns the API spelling of the score, or "" when absent.
func (s Score) String() string {
	if s < 0 || int(s) >= len(scoreNames) {
		return ""
	}
	return scoreNames[s]
}

// UnmarshalJSON accepts a score name or an integer 1–5.
func (s *Score) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = 0
		return nil
	}
	// A name without escapes (the usual case) is compared in place, without decoding it again.
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		name := bytes.TrimSpace(b[1 : len(b)-1])
		for i := 1; i < len(scoreNames); i++ {
			if bytes.EqualFold(name, []byte(scoreNames[i])) {
				*s = Score(i)
				return nil
			}
		}
		return fmt.Errorf("unknown score %q", name)
	}
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		for i := 1; i < len(scoreNames); i++ {
			if strings.EqualFold(strings.TrimSpace(name), scoreNames[i]) {
				*s = Score(i)
				return nil
			}
		}
		return fmt.Errorf("unknown score %q", name)
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("score is neither a string nor a number")
	}
	if n != float64(int(n)) || n < 1 || n > 5 {
		return fmt.Errorf("score %v out of range 1-5", n)
	}
	*s = Score(int(n))
	return nil
}

// skipped is a list element only counted: its content is not decoded or kept.
type skipped struct{}

// UnmarshalJSON implements json.Unmarshaler (the value was already validated by the caller's decoder).
func (*skipped) UnmarshalJSON([]byte) error { return nil }

// tagList accepts a list of strings, a single string, or a list containing objects (ignored).
type tagList []string

// UnmarshalJSON implements json.Unmarshaler.
func (t *tagList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		if one != "" {
			*t = tagList{one}
		}
		return nil
	}
	var many []any
	if err := json.Unmarshal(b, &many); err != nil {
		if string(b) == "null" {
			return nil
		}
		return errors.New("tags: not a string or list")
	}
	for _, v := range many {
		if s, ok := v.(string); ok && s != "" {
			*t = append(*t, s)
		}
	}
	return nil
}

type issues struct {
	IsVPN          bool `json:"is_vpn"`
	IsCloud        bool `json:"is_cloud"`
	IsTor          bool `json:"is_tor"`
	IsProxy        bool `json:"is_proxy"`
	IsHosting      bool `json:"is_hosting"`
	IsMobile       bool `json:"is_mobile"`
	IsDarkweb      bool `json:"is_darkweb"`
	IsScanner      bool `json:"is_scanner"`
	IsSnort        bool `json:"is_snort"`
	IsAnonymousVPN bool `json:"is_anonymous_vpn"`
}

type list[T any] struct {
	Count int `json:"count"`
	Data  []T `json:"data"`
}

type whois struct {
	ASName         string `json:"as_name"`
	ASNo           int64  `json:"as_no"`
	OrgName        string `json:"org_name"`
	OrgCountryCode string `json:"org_country_code"`
	City           string `json:"city"`
	Region         string `json:"region"`
}

type ids struct {
	Classification string `json:"classification"`
	Message        string `json:"message"`
	URL            string `json:"url"`
	ConfirmedTime  string `json:"confirmed_time"`
}

type honeypot struct {
	IPAddress    string `json:"ip_address"`
	LogDate      string `json:"log_date"`
	DstPort      int    `json:"dst_port"`
	ProtocolType string `json:"protocol_type"`
}

type category struct {
	Type         string `json:"type"`
	DetectSource string `json:"detect_source"`
}

type vpn struct {
	VPNName string `json:"vpn_name"`
}

type port struct {
	AppName         string  `json:"app_name"`
	AppVersion      string  `json:"app_version"`
	OpenPortNo      int     `json:"open_port_no"`
	Protocol        string  `json:"protocol"`
	Socket          string  `json:"socket"`
	PortStatus      string  `json:"port_status"`
	Tags            tagList `json:"tags"`
	IsVulnerability bool    `json:"is_vulnerability"`
}

type vulnPort struct {
	Port   int    `json:"port"`
	Socket string `json:"socket"`
}

type vuln struct {
	CVEID       string     `json:"cve_id"`
	CVSSv3Score float64    `json:"cvssv3_score"`
	AppName     string     `json:"app_name"`
	OpenPortNo  []vulnPort `json:"open_port_no"`
}

type report struct {
	Status     *int            `json:"status"`
	Message    string          `json:"message"`
	IP         string          `json:"ip"`
	Issues     *issues         `json:"issues"`
	LegacyTags json.RawMessage `json:"tags"` // legacy /v1/ip/data: object of is_* flags
	Score      *struct {
		Inbound  Score `json:"inbound"`
		Outbound Score `json:"outbound"`
	} `json:"score"`
	ProtectedIP   list[skipped]  `json:"protected_ip"`
	Whois         list[whois]    `json:"whois"`
	IDS           list[ids]      `json:"ids"`
	VPN           list[vpn]      `json:"vpn"`
	AnonymousVPN  list[vpn]      `json:"anonymous_vpn"`
	Honeypot      list[honeypot] `json:"honeypot"`
	IPCategory    list[category] `json:"ip_category"`
	Port          list[port]     `json:"port"`
	Vulnerability list[vuln]     `json:"vulnerability"`
	Domain        list[skipped]  `json:"domain"`
}

var (
	cveRE     = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)
	countryRE = regexp.MustCompile(`^[A-Za-z]{2}$`)
)

// validCount checks a {count,data} section: count never negative and never below the data length.
func validCount(name string, count, n int) error {
	if count < 0 || count < n {
		return provider.BadResponse("%s: count %d with %d items", name, count, n)
	}
	return nil
}

// convertReport validates the report and maps it to a Result.
func convertReport(asked netip.Addr, r *report) (provider.Result, error) {
	got, err := netip.ParseAddr(r.IP)
	if err != nil || got.Unmap() != asked {
		return provider.Result{}, provider.BadResponse("report is for %q, asked for %s", r.IP, asked)
	}
	if r.Score == nil || r.Score.Inbound == 0 || r.Score.Outbound == 0 {
		return provider.Result{}, provider.BadResponse("report: missing score")
	}
	is := r.Issues
	if is == nil && len(r.LegacyTags) > 0 && r.LegacyTags[0] == '{' {
		is = new(issues)
		if err := json.Unmarshal(r.LegacyTags, is); err != nil {
			return provider.Result{}, provider.BadResponse("legacy tags: %v", err)
		}
	}
	if is == nil {
		return provider.Result{}, provider.BadResponse("report: missing issues")
	}
	for _, c := range []struct {
		name     string
		count, n int
	}{
		{"protected_ip", r.ProtectedIP.Count, len(r.ProtectedIP.Data)},
		{"whois", r.Whois.Count, len(r.Whois.Data)},
		{"ids", r.IDS.Count, len(r.IDS.Data)},
		{"vpn", r.VPN.Count, len(r.VPN.Data)},
		{"anonymous_vpn", r.AnonymousVPN.Count, len(r.AnonymousVPN.Data)},
		{"honeypot", r.Honeypot.Count, len(r.Honeypot.Data)},
		{"ip_category", r.IPCategory.Count, len(r.IPCategory.Data)},
		{"port", r.Port.Count, len(r.Port.Data)},
		{"vulnerability", r.Vulnerability.Count, len(r.Vulnerability.Data)},
		{"domain", r.Domain.Count, len(r.Domain.Data)},
	} {
		if err := validCount(c.name, c.count, c.n); err != nil {
			return provider.Result{}, err
		}
	}

	in, out := r.Score.Inbound, r.Score.Outbound
	x := events.Exposure{
		Malicious:     in >= 4 || out >= 4,
		InboundScore:  int32(in),
		OutboundScore: int32(out),
		VPN:           is.IsVPN || is.IsAnonymousVPN,
		Proxy:         is.IsProxy,
		Tor:           is.IsTor,
		Hosting:       is.IsHosting,
		Cloud:         is.IsCloud,
		Scanner:       is.IsScanner,
		Mobile:        is.IsMobile,
		Darkweb:       is.IsDarkweb,
	}
	f := map[string]string{
		"inbound_score":      in.String(),
		"outbound_score":     out.String(),
		"is_malicious":       strconv.FormatBool(x.Malicious),
		"is_vpn":             strconv.FormatBool(is.IsVPN),
		"is_proxy":           strconv.FormatBool(is.IsProxy),
		"is_tor":             strconv.FormatBool(is.IsTor),
		"is_hosting":         strconv.FormatBool(is.IsHosting),
		"is_cloud":           strconv.FormatBool(is.IsCloud),
		"is_mobile":          strconv.FormatBool(is.IsMobile),
		"is_darkweb":         strconv.FormatBool(is.IsDarkweb),
		"is_scanner":         strconv.FormatBool(is.IsScanner),
		"is_snort":           strconv.FormatBool(is.IsSnort),
		"is_anonymous_vpn":   strconv.FormatBool(is.IsAnonymousVPN),
		"protected_ip_count": strconv.Itoa(r.ProtectedIP.Count),
		"ids_count":          strconv.Itoa(r.IDS.Count),
		"honeypot_count":     strconv.Itoa(r.Honeypot.Count),
		"open_port_count":    strconv.Itoa(r.Port.Count),
		"cve_count":          strconv.Itoa(r.Vulnerability.Count),
	}

	if len(r.Whois.Data) > 0 {
		w := r.Whois.Data[0]
		if w.ASNo < 0 || w.ASNo > 1<<32-1 {
			return provider.Result{}, provider.BadResponse("whois: as_no %d out of range", w.ASNo)
		}
		if w.OrgCountryCode != "" && !countryRE.MatchString(w.OrgCountryCode) {
			return provider.Result{}, provider.BadResponse("whois: bad country code %q", w.OrgCountryCode)
		}
		x.ASN, x.ASName, x.Org, x.Country = w.ASNo, w.ASName, w.OrgName, strings.ToUpper(w.OrgCountryCode)
		putNonEmpty(f, "asn", formatASN(w.ASNo))
		putNonEmpty(f, "as_name", w.ASName)
		putNonEmpty(f, "org", w.OrgName)
		putNonEmpty(f, "country", x.Country)
	}

	var portKeys []string
	for _, p := range r.Port.Data {
		if p.OpenPortNo < 1 || p.OpenPortNo > 65535 {
			return provider.Result{}, provider.BadResponse("port: %d out of range", p.OpenPortNo)
		}
		sock := strings.ToLower(p.Socket)
		if sock != "tcp" && sock != "udp" && sock != "" {
			return provider.Result{}, provider.BadResponse("port %d: socket %q", p.OpenPortNo, p.Socket)
		}
		service := p.AppName
		if service == "" || strings.EqualFold(service, "unknown") {
			service = strings.ToLower(p.Protocol)
		}
		x.OpenPorts = append(x.OpenPorts, events.Port{
			Port:       int32(p.OpenPortNo),
			Protocol:   sock,
			Service:    service,
			Version:    cleanVersion(p.AppVersion),
			Vulnerable: p.IsVulnerability,
			Tags:       slices.Clone([]string(p.Tags)),
		})
		portKeys = append(portKeys, strconv.Itoa(p.OpenPortNo)+"/"+sock)
	}
	putNonEmpty(f, "open_ports", strings.Join(portKeys, ","))

	var cves []string
	maxCVSS := 0.0
	for _, v := range r.Vulnerability.Data {
		if !cveRE.MatchString(v.CVEID) {
			return provider.Result{}, provider.BadResponse("vulnerability: bad cve id %q", v.CVEID)
		}
		if v.CVSSv3Score < 0 || v.CVSSv3Score > 10 {
			return provider.Result{}, provider.BadResponse("vulnerability %s: cvss %v out of range", v.CVEID, v.CVSSv3Score)
		}
		c := events.CVE{ID: v.CVEID, CVSS: v.CVSSv3Score}
		for _, p := range v.OpenPortNo {
			if p.Port < 1 || p.Port > 65535 {
				return provider.Result{}, provider.BadResponse("vulnerability %s: port %d out of range", v.CVEID, p.Port)
			}
			if !slices.Contains(c.Ports, int32(p.Port)) {
				c.Ports = append(c.Ports, int32(p.Port))
			}
		}
		x.CVEs = append(x.CVEs, c)
		cves = append(cves, v.CVEID)
		maxCVSS = max(maxCVSS, v.CVSSv3Score)
	}
	putNonEmpty(f, "cves", strings.Join(cves, ","))
	if len(cves) > 0 {
		f["max_cvss"] = strconv.FormatFloat(maxCVSS, 'f', 1, 64)
	}

	for _, c := range r.IPCategory.Data {
		if c.Type != "" && !slices.Contains(x.Categories, c.Type) {
			x.Categories = append(x.Categories, c.Type)
		}
	}
	var idsClasses []string
	for _, d := range r.IDS.Data {
		if d.Classification != "" && !slices.Contains(idsClasses, d.Classification) {
			idsClasses = append(idsClasses, d.Classification)
			x.Categories = append(x.Categories, "ids:"+d.Classification)
		}
	}
	if r.Honeypot.Count > 0 {
		x.Categories = append(x.Categories, "honeypot")
	}
	putNonEmpty(f, "categories", strings.Join(x.Categories, ","))
	putNonEmpty(f, "ids_classifications", strings.Join(idsClasses, ","))

	var vpnNames []string
	for _, v := range append(slices.Clone(r.VPN.Data), r.AnonymousVPN.Data...) {
		if v.VPNName != "" && !slices.Contains(vpnNames, v.VPNName) {
			vpnNames = append(vpnNames, v.VPNName)
		}
	}
	putNonEmpty(f, "vpn_names", strings.Join(vpnNames, ","))

	return provider.Result{Found: true, Fields: f, Exposure: x}, nil
}

func formatASN(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

func cleanVersion(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "unknown", "n/a", "-":
		return ""
	}
	return strings.TrimSpace(v)
}

func putNonEmpty(f map[string]string, k, v string) {
	if v != "" {
		f[k] = v
	}
}

type domainQuick struct {
	Status  *int   `json:"status"`
	Message string `json:"message"`
	Data    *struct {
		Domain    string `json:"domain"`
		Type      string `json:"type"`
		Result    string `json:"result"`
		RegDTime  string `json:"reg_dtime"`
		CallCount *int   `json:"call_count"`
	} `json:"data"`
}

// lookupDomain uses the quick hash check. The meaning of data.result is not documented; the client
// treats the value "malicious" (any case) as malicious and otherwise only reports the fields.
func (c *Client) lookupDomain(ctx context.Context, ind events.Indicator) (provider.Result, error) {
	dom, err := provider.CanonicalDomain(ind)
	if err != nil {
		return provider.Result{}, err
	}
	resp, err := provider.Get(ctx, c.http, c.timeout, c.base, "/v1/domain/quick/hash/view", url.Values{"domain": {dom}}, c.header())
	if err != nil {
		return provider.Result{}, err
	}
	if resp.Status == http.StatusNotFound {
		return provider.Result{Found: false}, nil
	}
	if resp.Status != http.StatusOK {
		return provider.Result{}, provider.StatusError(resp.Status, resp.Header, c.redact(firstMessage(resp.Body)))
	}
	var d domainQuick
	if err := decodeStrict(resp.Body, &d); err != nil {
		return provider.Result{}, err
	}
	if d.Status == nil {
		return provider.Result{}, provider.BadResponse("domain: missing status")
	}
	if *d.Status != http.StatusOK {
		if *d.Status == http.StatusNotFound {
			return provider.Result{Found: false}, nil
		}
		return provider.Result{}, c.bodyError(*d.Status, d.Message)
	}
	if d.Data == nil || d.Data.Domain == "" {
		return provider.Result{Found: false}, nil
	}
	if !strings.EqualFold(strings.TrimSuffix(d.Data.Domain, "."), dom) {
		return provider.Result{}, provider.BadResponse("domain answer is for %q, asked for %s", d.Data.Domain, dom)
	}
	if d.Data.CallCount != nil && *d.Data.CallCount < 0 {
		return provider.Result{}, provider.BadResponse("domain: negative call_count")
	}
	f := map[string]string{}
	putNonEmpty(f, "domain_type", d.Data.Type)
	putNonEmpty(f, "domain_result", d.Data.Result)
	putNonEmpty(f, "reg_dtime", d.Data.RegDTime)
	x := events.Exposure{Malicious: strings.EqualFold(d.Data.Result, "malicious")}
	if d.Data.Result != "" {
		x.Categories = []string{strings.ToLower(d.Data.Result)}
	}
	f["is_malicious"] = strconv.FormatBool(x.Malicious)
	return provider.Result{Found: true, Fields: f, Exposure: x}, nil
}
