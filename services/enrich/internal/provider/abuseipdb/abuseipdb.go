// Package abuseipdb is the AbuseIPDB v2 client (GET /api/v2/check?ipAddress=…&maxAgeInDays=…, header Key).
// Every public IP has an answer, so Found is true for any valid response (a score of 0 is data).
package abuseipdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

// Name is the provider id used in cache keys, metrics and records.
const Name = "abuseipdb"

// DefaultBaseURL is the production API.
const DefaultBaseURL = "https://api.abuseipdb.com"

// Config configures a Client.
type Config struct {
	BaseURL      string        // default DefaultBaseURL
	APIKey       string        // required; sent as the Key header, never logged or put in errors
	Timeout      time.Duration // per call; default provider.DefaultTimeout
	HTTPClient   *http.Client  // optional
	MaxAgeInDays int           // report window, 1–365; default 90
}

// Client queries AbuseIPDB. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	key     string
	maxAge  string
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
		return nil, fmt.Errorf("abuseipdb: %w", err)
	}
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("abuseipdb: api key is required")
	}
	if cfg.MaxAgeInDays == 0 {
		cfg.MaxAgeInDays = 90
	}
	if cfg.MaxAgeInDays < 1 || cfg.MaxAgeInDays > 365 {
		return nil, errors.New("abuseipdb: max age must be 1-365 days")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = provider.DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	return &Client{base: base, key: cfg.APIKey, maxAge: strconv.Itoa(cfg.MaxAgeInDays), timeout: cfg.Timeout, http: cfg.HTTPClient}, nil
}

// Name returns "abuseipdb".
func (c *Client) Name() string { return Name }

// Supports reports ipv4 and ipv6.
func (c *Client) Supports(indicatorType string) bool {
	return indicatorType == events.TypeIPv4 || indicatorType == events.TypeIPv6
}

type check struct {
	Data *struct {
		IPAddress            string   `json:"ipAddress"`
		IsPublic             *bool    `json:"isPublic"`
		IPVersion            int      `json:"ipVersion"`
		IsWhitelisted        *bool    `json:"isWhitelisted"`
		AbuseConfidenceScore *int     `json:"abuseConfidenceScore"`
		CountryCode          *string  `json:"countryCode"`
		UsageType            *string  `json:"usageType"`
		ISP                  string   `json:"isp"`
		Domain               *string  `json:"domain"`
		Hostnames            []string `json:"hostnames"`
		IsTor                *bool    `json:"isTor"`
		TotalReports         *int     `json:"totalReports"`
		NumDistinctUsers     *int     `json:"numDistinctUsers"`
		LastReportedAt       *string  `json:"lastReportedAt"`
	} `json:"data"`
	Errors []struct {
		Detail string `json:"detail"`
		Status int    `json:"status"`
	} `json:"errors"`
}

var countryRE = regexp.MustCompile(`^[A-Z]{2}$`)

// Lookup queries one canonical IP indicator. HTTP 429 is ErrQuota when X-RateLimit-Remaining is 0
// (daily quota used up) and ErrRateLimited otherwise; both carry Retry-After.
func (c *Client) Lookup(ctx context.Context, ind events.Indicator) (provider.Result, error) {
	addr, err := provider.CanonicalIP(ind)
	if err != nil {
		return provider.Result{}, err
	}
	q := url.Values{"ipAddress": {addr.String()}, "maxAgeInDays": {c.maxAge}}
	h := http.Header{"Key": {c.key}, "Accept": {"application/json"}}
	resp, err := provider.Get(ctx, c.http, c.timeout, c.base, "/api/v2/check", q, h)
	if err != nil {
		return provider.Result{}, err
	}
	var ch check
	if resp.Status != http.StatusOK {
		msg := ""
		if decode(resp.Body, &ch) == nil && len(ch.Errors) > 0 {
			msg = strings.ReplaceAll(ch.Errors[0].Detail, c.key, "[redacted]")
		}
		e := provider.StatusError(resp.Status, resp.Header, msg)
		if resp.Status == http.StatusTooManyRequests && resp.Header.Get("X-RateLimit-Remaining") == "0" {
			e.Kind = provider.ErrQuota
		}
		return provider.Result{}, e
	}
	if err := decode(resp.Body, &ch); err != nil {
		return provider.Result{}, err
	}
	return convert(addr, &ch)
}

func decode(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return provider.BadResponse("body is not a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return provider.BadResponse("decode: %v", err)
	}
	return nil
}

func convert(asked netip.Addr, ch *check) (provider.Result, error) {
	d := ch.Data
	if d == nil {
		return provider.Result{}, provider.BadResponse("missing data")
	}
	got, err := netip.ParseAddr(d.IPAddress)
	if err != nil || got.Unmap() != asked {
		return provider.Result{}, provider.BadResponse("answer is for %q, asked for %s", d.IPAddress, asked)
	}
	wantVersion := 6
	if asked.Is4() {
		wantVersion = 4
	}
	switch {
	case d.IPVersion != wantVersion:
		return provider.Result{}, provider.BadResponse("ipVersion %d for %s", d.IPVersion, asked)
	case d.AbuseConfidenceScore == nil || *d.AbuseConfidenceScore < 0 || *d.AbuseConfidenceScore > 100:
		return provider.Result{}, provider.BadResponse("abuseConfidenceScore missing or out of range 0-100")
	case d.TotalReports == nil || *d.TotalReports < 0:
		return provider.Result{}, provider.BadResponse("totalReports missing or negative")
	case d.NumDistinctUsers != nil && *d.NumDistinctUsers < 0:
		return provider.Result{}, provider.BadResponse("numDistinctUsers negative")
	case d.CountryCode != nil && *d.CountryCode != "" && !countryRE.MatchString(*d.CountryCode):
		return provider.Result{}, provider.BadResponse("bad countryCode %q", *d.CountryCode)
	}
	x := events.Exposure{AbuseConfidence: int32(*d.AbuseConfidenceScore)}
	f := map[string]string{
		"abuse_confidence_score": strconv.Itoa(*d.AbuseConfidenceScore),
		"total_reports":          strconv.Itoa(*d.TotalReports),
	}
	if d.NumDistinctUsers != nil {
		f["num_distinct_users"] = strconv.Itoa(*d.NumDistinctUsers)
	}
	if d.CountryCode != nil && *d.CountryCode != "" {
		x.Country = *d.CountryCode
		f["country"] = x.Country
	}
	if d.IsWhitelisted != nil {
		f["is_whitelisted"] = strconv.FormatBool(*d.IsWhitelisted)
	}
	if d.IsPublic != nil {
		f["is_public"] = strconv.FormatBool(*d.IsPublic)
	}
	if d.IsTor != nil {
		x.Tor = *d.IsTor
		f["is_tor"] = strconv.FormatBool(*d.IsTor)
	}
	if d.UsageType != nil && *d.UsageType != "" {
		f["usage_type"] = *d.UsageType
		x.Hosting = strings.Contains(strings.ToLower(*d.UsageType), "hosting")
	}
	if d.ISP != "" {
		f["isp"] = d.ISP
	}
	if d.Domain != nil && *d.Domain != "" {
		f["domain"] = *d.Domain
	}
	if d.LastReportedAt != nil && *d.LastReportedAt != "" {
		t, err := time.Parse(time.RFC3339, *d.LastReportedAt)
		if err != nil {
			return provider.Result{}, provider.BadResponse("bad lastReportedAt %q", *d.LastReportedAt)
		}
		x.LastSeen = t.UTC()
		f["last_reported_at"] = x.LastSeen.Format(time.RFC3339)
	}
	return provider.Result{Found: true, Fields: f, Exposure: x}, nil
}
