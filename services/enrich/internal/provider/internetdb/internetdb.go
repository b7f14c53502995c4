// Package internetdb is the Shodan InternetDB client (GET https://internetdb.shodan.io/{ip}, no key).
// An HTTP 404 with {"detail": …} means "no information" and yields Found=false, not an error.
package internetdb

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

// Name is the provider id used in cache keys, metrics and records.
const Name = "internetdb"

// DefaultBaseURL is the production API.
const DefaultBaseURL = "https://internetdb.shodan.io"

// Config configures a Client. InternetDB takes no key; APIKey is accepted for symmetry and ignored.
type Config struct {
	BaseURL    string        // default DefaultBaseURL
	APIKey     string        // unused
	Timeout    time.Duration // per call; default provider.DefaultTimeout
	HTTPClient *http.Client  // optional
}

// Client queries InternetDB. It is safe for concurrent use.
type Client struct {
	base    *url.URL
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
		return nil, fmt.Errorf("internetdb: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = provider.DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	return &Client{base: base, timeout: cfg.Timeout, http: cfg.HTTPClient}, nil
}

// Name returns "internetdb".
func (c *Client) Name() string { return Name }

// Supports reports ipv4 only (InternetDB documents IPv4 look-ups).
func (c *Client) Supports(indicatorType string) bool { return indicatorType == events.TypeIPv4 }

type answer struct {
	IP        *string  `json:"ip"`
	Ports     []int    `json:"ports"`
	Hostnames []string `json:"hostnames"`
	CPEs      []string `json:"cpes"`
	Tags      []string `json:"tags"`
	Vulns     []string `json:"vulns"`
	Detail    *string  `json:"detail"`
}

// Lookup queries one canonical IPv4 indicator.
func (c *Client) Lookup(ctx context.Context, ind events.Indicator) (provider.Result, error) {
	if ind.Type != events.TypeIPv4 {
		return provider.Result{}, &provider.Error{Kind: provider.ErrInvalidInput, Message: "internetdb serves ipv4 only"}
	}
	addr, err := provider.CanonicalIP(ind)
	if err != nil {
		return provider.Result{}, err
	}
	resp, err := provider.Get(ctx, c.http, c.timeout, c.base, "/"+url.PathEscape(addr.String()), nil, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return provider.Result{}, err
	}
	var a answer
	switch {
	case resp.Status == http.StatusNotFound:
		if err := decode(resp.Body, &a); err != nil || a.Detail == nil {
			return provider.Result{}, provider.BadResponse("404 without the documented detail body")
		}
		return provider.Result{Found: false}, nil
	case resp.Status != http.StatusOK:
		msg := ""
		if decode(resp.Body, &a) == nil && a.Detail != nil {
			msg = *a.Detail
		}
		return provider.Result{}, provider.StatusError(resp.Status, resp.Header, msg)
	}
	if err := decode(resp.Body, &a); err != nil {
		return provider.Result{}, err
	}
	return convert(addr, &a)
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

// tagFlags maps InternetDB tags onto exposure flags.
func applyTag(x *events.Exposure, tag string) {
	switch tag {
	case "vpn":
		x.VPN = true
	case "proxy":
		x.Proxy = true
	case "tor":
		x.Tor = true
	case "cloud":
		x.Cloud = true
	case "scanner":
		x.Scanner = true
	case "c2", "malware", "compromised":
		x.Malicious = true
	}
}

func convert(asked netip.Addr, a *answer) (provider.Result, error) {
	if a.IP == nil {
		return provider.Result{}, provider.BadResponse("missing ip")
	}
	got, err := netip.ParseAddr(*a.IP)
	if err != nil || got.Unmap() != asked {
		return provider.Result{}, provider.BadResponse("answer is for %q, asked for %s", *a.IP, asked)
	}
	if a.Ports == nil || a.Vulns == nil || a.Tags == nil || a.Hostnames == nil || a.CPEs == nil {
		return provider.Result{}, provider.BadResponse("missing ports/hostnames/cpes/tags/vulns")
	}
	var x events.Exposure
	var ports []string
	for _, p := range a.Ports {
		if p < 0 || p > 65535 {
			return provider.Result{}, provider.BadResponse("port %d out of range", p)
		}
		x.OpenPorts = append(x.OpenPorts, events.Port{Port: int32(p)})
		ports = append(ports, strconv.Itoa(p))
	}
	for _, v := range a.Vulns {
		if !strings.HasPrefix(v, "CVE-") || len(v) < 13 {
			return provider.Result{}, provider.BadResponse("bad vuln id %q", v)
		}
		x.CVEs = append(x.CVEs, events.CVE{ID: v})
	}
	for _, t := range a.Tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" || slices.Contains(x.Categories, t) {
			continue
		}
		applyTag(&x, t)
		x.Categories = append(x.Categories, t)
	}
	f := map[string]string{
		"open_port_count": strconv.Itoa(len(a.Ports)),
		"cve_count":       strconv.Itoa(len(a.Vulns)),
	}
	put(f, "open_ports", strings.Join(ports, ","))
	put(f, "cves", strings.Join(a.Vulns, ","))
	put(f, "tags", strings.Join(x.Categories, ","))
	put(f, "hostnames", strings.Join(a.Hostnames, ","))
	put(f, "cpes", strings.Join(a.CPEs, ","))
	return provider.Result{Found: true, Fields: f, Exposure: x}, nil
}

func put(f map[string]string, k, v string) {
	if v != "" {
		f[k] = v
	}
}
