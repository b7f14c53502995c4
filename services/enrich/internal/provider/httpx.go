package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
)

// MaxBody is the largest response body a client reads; larger answers are ErrBadResponse.
const MaxBody = 4 << 20

// DefaultTimeout bounds one provider call when a client Config leaves Timeout at zero.
const DefaultTimeout = 10 * time.Second

// domainRE accepts a canonical (lower-case, punycode, no trailing dot) host name with at least two labels.
var domainRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// CanonicalIP returns the address of an ipv4/ipv6 indicator whose value is already canonical
// (indicator.Validate accepts it, and it is exactly as net/netip prints it: no zone, IPv4-mapped
// IPv6 unmapped). Anything else is ErrInvalidInput, so only canonical values reach a URL.
func CanonicalIP(ind events.Indicator) (netip.Addr, error) {
	if err := indicator.Validate(ind); err != nil {
		return netip.Addr{}, &Error{Kind: ErrInvalidInput, Message: "indicator is not canonical"}
	}
	addr, err := netip.ParseAddr(ind.Value)
	if err != nil {
		return netip.Addr{}, &Error{Kind: ErrInvalidInput, Message: "not an IP address"}
	}
	switch {
	case addr.Zone() != "":
		return netip.Addr{}, &Error{Kind: ErrInvalidInput, Message: "IP address has a zone"}
	case addr.String() != ind.Value:
		return netip.Addr{}, &Error{Kind: ErrInvalidInput, Message: "IP address is not canonical"}
	case ind.Type == events.TypeIPv4 && !addr.Is4():
		return netip.Addr{}, &Error{Kind: ErrInvalidInput, Message: "not an IPv4 address"}
	case ind.Type == events.TypeIPv6 && (!addr.Is6() || addr.Is4In6()):
		return netip.Addr{}, &Error{Kind: ErrInvalidInput, Message: "not a canonical IPv6 address"}
	case ind.Type != events.TypeIPv4 && ind.Type != events.TypeIPv6:
		return netip.Addr{}, &Error{Kind: ErrInvalidInput, Message: "indicator type " + ind.Type + " is not an IP"}
	}
	return addr, nil
}

// CanonicalDomain checks that a domain indicator is canonical (indicator.Validate accepts it, and it
// is lower-case punycode without a trailing dot).
func CanonicalDomain(ind events.Indicator) (string, error) {
	if err := indicator.Validate(ind); err != nil {
		return "", &Error{Kind: ErrInvalidInput, Message: "indicator is not canonical"}
	}
	if ind.Type != events.TypeDomain || len(ind.Value) > 253 || !domainRE.MatchString(ind.Value) {
		return "", &Error{Kind: ErrInvalidInput, Message: "not a canonical domain"}
	}
	return ind.Value, nil
}

// BadResponse returns an ErrBadResponse error with a reason.
func BadResponse(format string, args ...any) *Error {
	return &Error{Kind: ErrBadResponse, Message: fmt.Sprintf(format, args...)}
}

// ParseRetryAfter reads a Retry-After value given in seconds or as an HTTP date. It returns 0 when the
// value is absent, malformed or in the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 || secs > 7*24*3600 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil || !t.After(now) {
		return 0
	}
	return t.Sub(now)
}

// StatusError classifies a non-2xx HTTP status: 401/403 → ErrAuth, 429 → ErrRateLimited (with
// Retry-After), 5xx → ErrUnavailable, 400/422 → ErrInvalidInput, anything else → ErrBadResponse.
func StatusError(status int, h http.Header, msg string) *Error {
	e := &Error{Status: status, Message: msg}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Kind = ErrAuth
	case status == http.StatusTooManyRequests:
		e.Kind = ErrRateLimited
		e.RetryAfter = ParseRetryAfter(h.Get("Retry-After"), time.Now())
	case status >= 500:
		e.Kind = ErrUnavailable
		e.RetryAfter = ParseRetryAfter(h.Get("Retry-After"), time.Now())
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		e.Kind = ErrInvalidInput
	default:
		e.Kind = ErrBadResponse
	}
	if e.Message == "" {
		e.Message = "HTTP " + strconv.Itoa(status)
	}
	return e
}

// Response is a fully read HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Get sends a GET to base+path?query (path already escaped, e.g. with url.PathEscape) with the given headers and reads the whole body (at most MaxBody).
// Transport failures and timeouts are ErrUnavailable; a cancelled ctx is returned as ctx.Err() wrapped.
// Error messages never contain header values, so API keys do not leak.
func Get(ctx context.Context, client *http.Client, timeout time.Duration, base *url.URL, path string, query url.Values, header http.Header) (Response, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	u := *base
	raw := strings.TrimSuffix(base.EscapedPath(), "/") + path
	p, err := url.PathUnescape(raw)
	if err != nil {
		return Response{}, fmt.Errorf("build path: %w", err)
	}
	u.Path, u.RawPath = p, raw
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Response{}, fmt.Errorf("build request: %w", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return Response{}, transportError(ctx, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return Response{}, transportError(ctx, err)
	}
	if len(body) > MaxBody {
		return Response{}, BadResponse("body larger than %d bytes", MaxBody)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// readBody reads at most MaxBody+1 bytes of the body, into one buffer of the announced length when the
// server sent a Content-Length (instead of growing a buffer step by step).
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= MaxBody {
		body := make([]byte, n, n+1)
		if _, err := io.ReadFull(resp.Body, body); err != nil {
			return nil, err
		}
		// Drain to EOF (the connection is reused); a body longer than announced is the transport's error.
		var one [1]byte
		if m, err := resp.Body.Read(one[:]); m > 0 || (err != nil && err != io.EOF) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
}

// transportError maps a client error to ErrUnavailable without echoing the URL.
func transportError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("request: %w", ctx.Err())
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	msg := "connection error"
	var nerr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()):
		msg = "timeout"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		msg = "connection closed"
	case err != nil:
		var oerr *net.OpError
		if errors.As(err, &oerr) {
			msg = "connection error: " + oerr.Op
		}
	}
	return &Error{Kind: ErrUnavailable, Message: msg}
}

// ParseBaseURL validates a provider base URL (http or https, with a host, no query or credentials).
func ParseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse base url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("base url must be http(s)://host[/path] without credentials, query or fragment")
	}
	return u, nil
}
