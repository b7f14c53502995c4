// Package greynoise is the GreyNoise Community API client (GET /v3/community/{ip}, optional header key).
// HTTP 404 with the documented body ("IP not observed …") yields Found=false.
package greynoise

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

// Name is the provider id used in cache keys, metrics and records.
const Name = "greynoise"

// DefaultBaseURL is the production API.
const DefaultBaseURL = "https://api.greynoise.io"

// Config configures a Client.
type Config struct {
	BaseURL    string        // default DefaultBaseURL
	APIKey     string        // optional; sent as the key header when set, never logged or put in errors
	Timeout    time.Duration // per call; default provider.DefaultTimeout
	HTTPClient *http.Client  // optional
}

// Client queries the GreyNoise Community API. It is safe for concurrent use.
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
		return nil, fmt.Errorf("greynoise: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = provider.DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	return &Client{base: base, key: strings.TrimSpace(cfg.APIKey), timeout: cfg.Timeout, http: cfg.HTTPClient}, nil
}

// Name returns "greynoise".
func (c *Client) Name() string { return Name }

// Supports reports ipv4 only (the community API is IPv4 only).
func (c *Client) Supports(indicatorType string) bool { return indicatorType == events.TypeIPv4 }

type answer struct {
	IP             *string `json:"ip"`
	Noise          *bool   `json:"noise"`
	RIOT           *bool   `json:"riot"`
	Classification string  `json:"classification"`
	Name           string  `json:"name"`
	Link           string  `json:"link"`
	LastSeen       string  `json:"last_seen"`
	Message        string  `json:"message"`
}

// Lookup queries one canonical IPv4 indicator.
func (c *Client) Lookup(ctx context.Context, ind events.Indicator) (provider.Result, error) {
	if ind.Type != events.TypeIPv4 {
		return provider.Result{}, &provider.Error{Kind: provider.ErrInvalidInput, Message: "greynoise serves ipv4 only"}
	}
	addr, err := provider.CanonicalIP(ind)
	if err != nil {
		return provider.Result{}, err
	}
	h := http.Header{"Accept": {"application/json"}}
	if c.key != "" {
		h.Set("key", c.key)
	}
	resp, err := provider.Get(ctx, c.http, c.timeout, c.base, "/v3/community/"+url.PathEscape(addr.String()), nil, h)
	if err != nil {
		return provider.Result{}, err
	}
	var a answer
	switch {
	case resp.Status == http.StatusNotFound:
		if err := decode(resp.Body, &a); err != nil {
			return provider.Result{}, provider.BadResponse("404 without the documented body")
		}
		if err := checkIP(addr, a.IP); err != nil {
			return provider.Result{}, err
		}
		return provider.Result{Found: false}, nil
	case resp.Status != http.StatusOK:
		msg := ""
		if decode(resp.Body, &a) == nil {
			msg = a.Message
		}
		if c.key != "" {
			msg = strings.ReplaceAll(msg, c.key, "[redacted]")
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

func checkIP(asked netip.Addr, ip *string) error {
	if ip == nil {
		return provider.BadResponse("missing ip")
	}
	got, err := netip.ParseAddr(*ip)
	if err != nil || got.Unmap() != asked {
		return provider.BadResponse("answer is for %q, asked for %s", *ip, asked)
	}
	return nil
}

func convert(asked netip.Addr, a *answer) (provider.Result, error) {
	if err := checkIP(asked, a.IP); err != nil {
		return provider.Result{}, err
	}
	if a.Noise == nil || a.RIOT == nil {
		return provider.Result{}, provider.BadResponse("missing noise/riot")
	}
	class := strings.ToLower(a.Classification)
	switch class {
	case "benign", "malicious", "unknown", "":
	default:
		return provider.Result{}, provider.BadResponse("unknown classification %q", a.Classification)
	}
	x := events.Exposure{
		GreyNoiseClass: class,
		Scanner:        *a.Noise,
		Malicious:      class == "malicious",
	}
	if a.LastSeen != "" {
		t, err := time.Parse(time.DateOnly, a.LastSeen)
		if err != nil {
			return provider.Result{}, provider.BadResponse("bad last_seen %q", a.LastSeen)
		}
		x.LastSeen = t
	}
	f := map[string]string{
		"noise": strconv.FormatBool(*a.Noise),
		"riot":  strconv.FormatBool(*a.RIOT),
	}
	for k, v := range map[string]string{"classification": class, "name": a.Name, "last_seen": a.LastSeen, "link": a.Link} {
		if v != "" {
			f[k] = v
		}
	}
	return provider.Result{Found: true, Fields: f, Exposure: x}, nil
}
