package threatq

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	segjson "github.com/segmentio/encoding/json"
)

// Client is a ThreatQ REST API client. It is safe for concurrent use.
// Call Resolve once before the indicator methods so type and status names map to this instance's ids.
type Client struct {
	cfg    Config
	base   *url.URL // ends in /api/
	hc     *http.Client
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex // guards the token fields and serialises logins
	access  string
	refresh string
	expiry  time.Time

	idsMu    sync.RWMutex
	typeIDs  map[string]int64 // name -> id
	typeName map[int64]string
	statIDs  map[string]int64
	statName map[int64]string
}

// New builds a Client. It does not contact ThreatQ.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	base, _ := url.Parse(cfg.BaseURL) // validated above
	base.Path = strings.TrimSuffix(base.Path, "/")
	if !strings.HasSuffix(base.Path, "/api") {
		base.Path += "/api"
	}
	base.Path += "/"
	base.RawQuery, base.Fragment = "", ""
	hc := cfg.HTTPClient
	if hc == nil {
		var err error
		hc, err = newHTTPClient(cfg)
		if err != nil {
			return nil, err
		}
	} else {
		c := *hc
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{cfg: cfg, base: base, hc: hc, logger: logger, now: time.Now}, nil
}

func newHTTPClient(cfg Config) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 16
	if cfg.MaxIdleConns > 0 {
		tr.MaxIdleConnsPerHost = cfg.MaxIdleConns
	}
	tr.MaxIdleConns = max(tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read threatq ca file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("threatq ca file %s: no certificates found", cfg.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: cfg.Timeout}, nil
}

// tokenResponse is the body of POST /api/token.
type tokenResponse struct {
	AccessToken  string          `json:"access_token"`
	TokenType    string          `json:"token_type"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
	RefreshToken string          `json:"refresh_token"`
}

// token returns a valid access token, logging in or refreshing when needed.
// stale, when not empty, is a token the server just refused: it is replaced even if not expired.
func (c *Client) token(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stale != "" && c.access != "" && c.access != stale {
		return c.access, nil // another caller already replaced the refused token
	}
	if stale == "" && c.access != "" && c.now().Before(c.expiry.Add(-c.cfg.RefreshMargin)) {
		return c.access, nil
	}
	if c.refresh != "" {
		err := c.requestToken(ctx, "refresh")
		if err == nil {
			return c.access, nil
		}
		if ctx.Err() != nil {
			return "", err
		}
		c.refresh = ""
		c.logger.DebugContext(ctx, "threatq token refresh refused, logging in again", "err", err)
	}
	if err := c.requestToken(ctx, "login"); err != nil {
		return "", err
	}
	return c.access, nil
}

// requestToken performs one grant; mode is "login" or "refresh". Caller holds c.mu.
func (c *Client) requestToken(ctx context.Context, mode string) error {
	u := c.endpoint("token")
	q := url.Values{}
	var body io.Reader
	var basic bool
	switch {
	case mode == "refresh":
		q.Set("grant_type", "refresh_token")
		q.Set("refresh_token", c.refresh)
	case c.cfg.Email != "" && c.cfg.Password != "":
		b, err := json.Marshal(map[string]string{
			"grant_type": "password", "client_id": c.cfg.ClientID,
			"email": c.cfg.Email, "password": c.cfg.Password,
		})
		if err != nil {
			return fmt.Errorf("encode token request: %w", err)
		}
		body = bytes.NewReader(b)
	default:
		q.Set("grant_type", "client_credentials")
		basic = true
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), body)
	if err != nil {
		return fmt.Errorf("build token request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if basic {
		req.SetBasicAuth(c.cfg.ClientID, c.cfg.ClientSecret)
	}
	if mode == "refresh" && c.access != "" {
		req.Header.Set("Authorization", "Bearer "+c.access)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError(ctx, "token", err)
	}
	defer drain(resp.Body)
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return transportError(ctx, "token", err)
	}
	if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized {
		// ThreatQ answers 400 to bad credentials on the token endpoint.
		return &APIError{Op: "token", Status: http.StatusUnauthorized, Message: errorText(data)}
	}
	if resp.StatusCode/100 != 2 {
		return apiError("token", resp, data)
	}
	var tr tokenResponse
	if err := json.Unmarshal(data, &tr); err != nil || tr.AccessToken == "" {
		return &APIError{Op: "token", Status: http.StatusUnauthorized, Message: "token response without access_token"}
	}
	ttl := c.cfg.DefaultTokenTTL
	if secs, err := strconv.ParseFloat(strings.Trim(string(tr.ExpiresIn), `"`), 64); err == nil && secs > 0 {
		ttl = time.Duration(secs * float64(time.Second))
	}
	c.access = tr.AccessToken
	if tr.RefreshToken != "" {
		c.refresh = tr.RefreshToken
	} else if mode == "login" {
		c.refresh = ""
	}
	c.expiry = c.now().Add(ttl)
	c.logger.DebugContext(ctx, "threatq token obtained", "grant", mode, "expires_in", ttl)
	return nil
}

func (c *Client) endpoint(path string) *url.URL {
	u := *c.base
	u.Path += strings.TrimPrefix(path, "/")
	return &u
}

// do sends one authenticated request. body (if not nil) is JSON-encoded; out (if not nil) receives
// the decoded response. A 401 triggers one re-authentication and one retry.
func (c *Client) do(ctx context.Context, op, method, path string, query url.Values, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		payload, err = segjson.Marshal(body) // segmentio: same output as encoding/json, less CPU
		if err != nil {
			return fmt.Errorf("encode %s request: %w", op, err)
		}
	}
	tok, err := c.token(ctx, "")
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		status, data, hdr, err := c.send(ctx, op, method, path, query, payload, tok)
		if err != nil {
			return err
		}
		if status == http.StatusUnauthorized && attempt == 0 {
			if tok, err = c.token(ctx, tok); err != nil {
				return err
			}
			continue
		}
		if status/100 != 2 {
			return apiError(op, &http.Response{StatusCode: status, Header: hdr}, data)
		}
		if out == nil || len(bytes.TrimSpace(data)) == 0 {
			return nil
		}
		if err := segjson.Unmarshal(data, out); err != nil {
			return &APIError{Op: op, Status: status, Message: "decode response: " + err.Error()}
		}
		if e := embeddedErrors(data); e != "" {
			return &APIError{Op: op, Status: http.StatusBadRequest, Message: e}
		}
		return nil
	}
}

func (c *Client) send(ctx context.Context, op, method, path string, query url.Values, payload []byte, tok string) (int, []byte, http.Header, error) {
	u := c.endpoint(path)
	u.RawQuery = query.Encode()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build %s request: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, transportError(ctx, op, err)
	}
	defer drain(resp.Body)
	data, err := readBody(resp, 64<<20)
	if err != nil {
		return 0, nil, nil, transportError(ctx, op, err)
	}
	return resp.StatusCode, data, resp.Header, nil
}

// readBody reads at most limit bytes of the body, in one allocation when the server sent a
// Content-Length (io.ReadAll would grow, copy and clear its buffer many times for a large body).
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	n := resp.ContentLength
	if n < 0 || n > limit {
		return io.ReadAll(io.LimitReader(resp.Body, limit))
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 1<<16))
	_ = rc.Close()
}

// transportError hides the request URL (it may carry a refresh token) and returns ctx errors as is.
func transportError(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("threatq %s: %w", op, cerr)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &APIError{Op: op, Status: 0, Message: err.Error()}
}

func apiError(op string, resp *http.Response, body []byte) error {
	e := &APIError{Op: op, Status: resp.StatusCode, Message: errorText(body)}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	return e
}

// errorText extracts ThreatQ's error messages from the known body shapes, or a trimmed body.
func errorText(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	var env struct {
		Data    json.RawMessage `json:"data"`
		Errors  json.RawMessage `json:"errors"`
		Message string          `json:"message"`
		Error   any             `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil {
		var msgs []string
		if len(env.Data) > 0 {
			var inner struct {
				Errors json.RawMessage `json:"errors"`
			}
			if json.Unmarshal(env.Data, &inner) == nil {
				msgs = flattenErrors(inner.Errors, msgs)
			}
		}
		msgs = flattenErrors(env.Errors, msgs)
		if env.Message != "" {
			msgs = append(msgs, env.Message)
		}
		if s, ok := env.Error.(string); ok && s != "" {
			msgs = append(msgs, s)
		}
		if len(msgs) > 0 {
			return truncate(strings.Join(msgs, "; "), 1000)
		}
	}
	return truncate(string(body), 500)
}

// embeddedErrors returns the error text of a 2xx body that carries an "errors" key.
func embeddedErrors(body []byte) string {
	if !bytes.Contains(body, []byte(`"errors"`)) {
		return "" // the common case: no second full parse of a large body
	}
	var env struct {
		Errors json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &env) != nil {
		return ""
	}
	return strings.Join(flattenErrors(env.Errors, nil), "; ")
}

// flattenErrors turns {"field":["msg"]}, ["msg",["a","b"]] or "msg" into "field: msg" strings.
func flattenErrors(raw json.RawMessage, acc []string) []string {
	if len(raw) == 0 || string(raw) == "null" {
		return acc
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return acc
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch t := v.(type) {
		case string:
			if prefix != "" {
				acc = append(acc, prefix+": "+t)
			} else {
				acc = append(acc, t)
			}
		case []any:
			for _, x := range t {
				walk(prefix, x)
			}
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, t[k])
			}
		}
	}
	walk("", v)
	return acc
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
