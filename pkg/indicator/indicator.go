package indicator

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"github.com/vigilsec/vigil/pkg/events"
)

// Sentinel errors; every error returned by this package wraps one of them.
var (
	// ErrEmpty is returned for an empty or blank value.
	ErrEmpty = errors.New("empty indicator")
	// ErrInvalidIP is returned when a value is not an IP address.
	ErrInvalidIP = errors.New("invalid ip address")
	// ErrInvalidDomain is returned when a value is not a syntactically valid domain name.
	ErrInvalidDomain = errors.New("invalid domain")
	// ErrNoPublicSuffix is returned (wrapped together with ErrInvalidDomain) when a domain has
	// no ICANN top-level domain or is itself a public suffix.
	ErrNoPublicSuffix = errors.New("no public suffix")
	// ErrInvalidURL is returned when a value is not an absolute http, https or ftp URL.
	ErrInvalidURL = errors.New("invalid url")
	// ErrInvalidHash is returned when a value is not an MD5, SHA-1 or SHA-256 hex digest.
	ErrInvalidHash = errors.New("invalid hash")
	// ErrUnknownKind is returned by Canonical for a kind it does not know.
	ErrUnknownKind = errors.New("unknown indicator kind")
	// ErrNotCanonical is returned by Validate when a value is valid but not in canonical form.
	ErrNotCanonical = errors.New("indicator not canonical")
)

const (
	maxDomainLen = 253
	maxLabelLen  = 63
	maxURLLen    = 4096
)

// idnaProfile maps Unicode names to punycode for lookup. Label syntax is checked afterwards by
// checkLabels so that underscores (used in DNS service names) are accepted.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
	idna.VerifyDNSLength(false),
)

var refanger = strings.NewReplacer(
	"[.]", ".", "(.)", ".", "{.}", ".", "[dot]", ".", "(dot)", ".",
	"[:]", ":", "[://]", "://", "[/]", "/",
)

// Refang undoes the usual defanging of indicators in reports: "[.]", "(.)", "{.}", "[dot]",
// "[:]", "[://]" and a leading "hxxp://", "hxxps://" or "fxp://" (any case). Surrounding spaces are removed.
func Refang(s string) string {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "[({") {
		s = refanger.Replace(s)
	}
	for _, p := range [...][2]string{{"hxxp://", "http://"}, {"hxxps://", "https://"}, {"fxp://", "ftp://"}} {
		if len(s) >= len(p[0]) && strings.EqualFold(s[:len(p[0])], p[0]) {
			return p[1] + s[len(p[0]):]
		}
	}
	return s
}

// ParseIP parses an IPv4 or IPv6 address: refanged, brackets removed, IPv6 zone stripped and
// IPv4-mapped IPv6 addresses unmapped.
func ParseIP(s string) (netip.Addr, error) {
	s = Refang(s)
	if s == "" {
		return netip.Addr{}, ErrEmpty
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %q", ErrInvalidIP, s)
	}
	return a.WithZone("").Unmap(), nil
}

// IPType returns events.TypeIPv4 or events.TypeIPv6 for a parsed address.
func IPType(a netip.Addr) string {
	if a.Is4() {
		return events.TypeIPv4
	}
	return events.TypeIPv6
}

// Domain returns the canonical form of a domain name: refanged, lower-case, trailing dot
// removed, internationalised labels converted to punycode. It checks label syntax and length
// and requires an ICANN top-level domain with at least one label below the public suffix.
func Domain(s string) (string, error) {
	s = Refang(s)
	if s == "" {
		return "", ErrEmpty
	}
	s = strings.TrimSuffix(s, ".")
	if !isASCII(s) {
		a, err := idnaProfile.ToASCII(s)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrInvalidDomain, s, err)
		}
		s = a
	}
	s = strings.ToLower(s)
	if err := checkLabels(s); err != nil {
		return "", err
	}
	if !isASCII(s) {
		return "", fmt.Errorf("%w: %q", ErrInvalidDomain, s)
	}
	if strings.HasPrefix(s, "xn--") || strings.Contains(s, ".xn--") {
		// A punycode spelling must decode, so that it is the same key as its Unicode form.
		if _, err := idnaProfile.ToUnicode(s); err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrInvalidDomain, s, err)
		}
	}
	tld := s[strings.LastIndexByte(s, '.')+1:]
	if ps, icann := publicsuffix.PublicSuffix(tld); !icann || ps != tld {
		return "", fmt.Errorf("%w: %w: %q", ErrInvalidDomain, ErrNoPublicSuffix, s)
	}
	if _, err := publicsuffix.EffectiveTLDPlusOne(s); err != nil {
		return "", fmt.Errorf("%w: %w: %q", ErrInvalidDomain, ErrNoPublicSuffix, s)
	}
	return s, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// checkLabels checks a lower-case ASCII name: 2+ labels of [a-z0-9_-], 1-63 bytes, no leading
// or trailing hyphen, 253 bytes at most, a TLD that is not all digits.
func checkLabels(s string) error {
	if len(s) > maxDomainLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidDomain, maxDomainLen)
	}
	labels := 0
	allDigits := true
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c == '-', c == '_':
				allDigits = false
			default:
				return fmt.Errorf("%w: %q: character %q", ErrInvalidDomain, s, c)
			}
			continue
		}
		l := s[start:i]
		if l == "" || len(l) > maxLabelLen {
			return fmt.Errorf("%w: %q: bad label length", ErrInvalidDomain, s)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%w: %q: label starts or ends with '-'", ErrInvalidDomain, s)
		}
		labels++
		if i < len(s) {
			allDigits = true
		}
		start = i + 1
	}
	if labels < 2 {
		return fmt.Errorf("%w: %q: single label", ErrInvalidDomain, s)
	}
	if allDigits {
		return fmt.Errorf("%w: %q: numeric top-level label", ErrInvalidDomain, s)
	}
	return nil
}

var defaultPorts = map[string]string{"http": "80", "https": "443", "ftp": "21"}

// URL returns the canonical form of an absolute http, https or ftp URL: refanged, scheme and
// host lower-case, host canonicalised as an IP or a domain, default port dropped, user info and
// fragment removed, dot segments resolved, an empty path written as "/".
func URL(s string) (string, error) {
	s = Refang(s)
	if s == "" {
		return "", ErrEmpty
	}
	if len(s) > maxURLLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidURL, maxURLLen)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	scheme := strings.ToLower(u.Scheme)
	def, ok := defaultPorts[scheme]
	if !ok || u.Opaque != "" || u.Host == "" {
		return "", fmt.Errorf("%w: %q: not an absolute http(s)/ftp URL", ErrInvalidURL, s)
	}
	host, err := URLHost(u)
	if err != nil {
		return "", err
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%w: %q: bad port", ErrInvalidURL, s)
		}
		port = strconv.Itoa(n)
		if port == def {
			port = ""
		}
	}
	if strings.Contains(u.Path, "/.") {
		u = u.ResolveReference(&url.URL{Path: u.Path, RawQuery: u.RawQuery})
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	var b strings.Builder
	b.Grow(len(scheme) + len(host) + len(path) + len(u.RawQuery) + 12)
	b.WriteString(scheme)
	b.WriteString("://")
	if strings.IndexByte(host, ':') >= 0 {
		b.WriteByte('[')
		b.WriteString(host)
		b.WriteByte(']')
	} else {
		b.WriteString(host)
	}
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(path)
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteByte('?')
		b.WriteString(u.RawQuery)
	}
	return b.String(), nil
}

// URLHost returns the canonical host of a parsed URL (an IP address or a domain). Callers use it
// to decide whether a URL points inside the network before canonicalising it.
func URLHost(u *url.URL) (string, error) {
	h := u.Hostname()
	if h == "" {
		return "", fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if strings.IndexByte(h, ':') >= 0 || isIPv4Literal(h) {
		a, err := ParseIP(h)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrInvalidURL, err)
		}
		return a.String(), nil
	}
	d, err := Domain(h)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	return d, nil
}

// isIPv4Literal reports whether s consists only of digits and dots, i.e. must be an IPv4
// address rather than a domain.
func isIPv4Literal(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return s != ""
}

// Hash returns the type (md5, sha1, sha256, decided by length) and lower-case hex value of a
// digest. An all-zero digest is a placeholder and is refused.
func Hash(s string) (typ, value string, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "", ErrEmpty
	}
	switch len(s) {
	case 32:
		typ = events.TypeMD5
	case 40:
		typ = events.TypeSHA1
	case 64:
		typ = events.TypeSHA256
	default:
		return "", "", fmt.Errorf("%w: length %d", ErrInvalidHash, len(s))
	}
	zero := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return "", "", fmt.Errorf("%w: non-hex character %q", ErrInvalidHash, c)
		}
		if c != '0' {
			zero = false
		}
	}
	if zero {
		return "", "", fmt.Errorf("%w: all zero", ErrInvalidHash)
	}
	return typ, strings.ToLower(s), nil
}

// Canonical returns the canonical indicator for a raw value of the given kind. Kinds are "ip",
// "domain", "url", "hash" (type by length), or one of the events.Type* names, which must agree
// with the value.
func Canonical(kind, raw string) (events.Indicator, error) {
	switch kind {
	case "ip", events.TypeIPv4, events.TypeIPv6:
		a, err := ParseIP(raw)
		if err != nil {
			return events.Indicator{}, err
		}
		t := IPType(a)
		if kind != "ip" && kind != t {
			return events.Indicator{}, fmt.Errorf("%w: %s is not %s", ErrInvalidIP, a, kind)
		}
		return events.Indicator{Type: t, Value: a.String()}, nil
	case events.TypeDomain:
		d, err := Domain(raw)
		if err != nil {
			return events.Indicator{}, err
		}
		return events.Indicator{Type: events.TypeDomain, Value: d}, nil
	case events.TypeURL:
		u, err := URL(raw)
		if err != nil {
			return events.Indicator{}, err
		}
		return events.Indicator{Type: events.TypeURL, Value: u}, nil
	case "hash", events.TypeMD5, events.TypeSHA1, events.TypeSHA256:
		t, v, err := Hash(raw)
		if err != nil {
			return events.Indicator{}, err
		}
		if kind != "hash" && kind != t {
			return events.Indicator{}, fmt.Errorf("%w: %d hex digits is not %s", ErrInvalidHash, len(v), kind)
		}
		return events.Indicator{Type: t, Value: v}, nil
	default:
		return events.Indicator{}, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
	}
}

// Validate checks that ind is exactly canonical: its value canonicalises to itself under its
// type. Anything else (other spellings, paths or control characters after an IP, encoded line
// breaks in a domain) is refused, so it can never reach a provider.
func Validate(ind events.Indicator) error {
	switch ind.Type {
	case events.TypeIPv4, events.TypeIPv6, events.TypeDomain, events.TypeURL,
		events.TypeMD5, events.TypeSHA1, events.TypeSHA256:
	default:
		return fmt.Errorf("%w: %q", ErrUnknownKind, ind.Type)
	}
	for i := 0; i < len(ind.Value); i++ {
		if c := ind.Value[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: control or space character", ErrNotCanonical)
		}
	}
	c, err := Canonical(ind.Type, ind.Value)
	if err != nil {
		return err
	}
	if c != ind {
		return fmt.Errorf("%w: %q is %q", ErrNotCanonical, ind.Key(), c.Key())
	}
	return nil
}

// ParseKey splits a record key "type:value" and validates it.
func ParseKey(key string) (events.Indicator, error) {
	t, v, ok := strings.Cut(key, ":")
	if !ok {
		return events.Indicator{}, fmt.Errorf("%w: key %q has no type", ErrUnknownKind, key)
	}
	ind := events.Indicator{Type: t, Value: v}
	if err := Validate(ind); err != nil {
		return events.Indicator{}, err
	}
	return ind, nil
}
