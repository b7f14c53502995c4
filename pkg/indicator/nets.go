package indicator

import (
	"fmt"
	"net/netip"
	"strings"
)

// defaultNetworks are the address ranges that are never indicators: private, shared, loopback,
// link-local, documentation, benchmarking, multicast, reserved and unspecified space.
var defaultNetworks = []string{
	"0.0.0.0/8",       // "this network"
	"10.0.0.0/8",      // RFC 1918
	"100.64.0.0/10",   // RFC 6598 shared address space (CGNAT)
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local
	"172.16.0.0/12",   // RFC 1918
	"192.0.2.0/24",    // TEST-NET-1
	"192.168.0.0/16",  // RFC 1918
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // TEST-NET-2
	"203.0.113.0/24",  // TEST-NET-3
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, includes 255.255.255.255 broadcast
	"::/128",          // unspecified
	"::1/128",         // loopback
	"fc00::/7",        // unique local
	"fe80::/10",       // link-local
	"ff00::/8",        // multicast
	"2001:db8::/32",   // documentation
	"100::/64",        // discard-only
}

// Nets is a set of internal networks. The zero value contains nothing. A Nets is immutable
// after construction and safe for concurrent use.
type Nets struct {
	prefixes []netip.Prefix
}

// DefaultNets returns the default internal networks (RFC 1918, RFC 6598, loopback, link-local,
// ULA, documentation, benchmarking, multicast, reserved and unspecified ranges).
func DefaultNets() *Nets {
	n := &Nets{prefixes: make([]netip.Prefix, 0, len(defaultNetworks))}
	for _, s := range defaultNetworks {
		n.prefixes = append(n.prefixes, netip.MustParsePrefix(s))
	}
	return n
}

// NewNets returns a set of the given prefixes (masked).
func NewNets(prefixes ...netip.Prefix) *Nets {
	n := &Nets{prefixes: make([]netip.Prefix, 0, len(prefixes))}
	for _, p := range prefixes {
		n.prefixes = append(n.prefixes, p.Masked())
	}
	return n
}

// ParseNets parses a comma-separated list of CIDR prefixes or single addresses, e.g.
// "10.0.0.0/8,192.168.0.0/16,2001:db8::/32". The word "default" adds the DefaultNets ranges,
// so "default,198.19.7.0/24" extends them. Empty items are ignored.
func ParseNets(s string) (*Nets, error) {
	n := &Nets{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			continue
		case strings.EqualFold(item, "default"):
			n.prefixes = append(n.prefixes, DefaultNets().prefixes...)
		case strings.Contains(item, "/"):
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("parse internal network %q: %w", item, err)
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			n.prefixes = append(n.prefixes, p.Masked())
		default:
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("parse internal network %q: %w", item, err)
			}
			a = a.WithZone("").Unmap()
			n.prefixes = append(n.prefixes, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return n, nil
}

// Contains reports whether a (unmapped, zone ignored) lies in one of the networks.
func (n *Nets) Contains(a netip.Addr) bool {
	if n == nil || !a.IsValid() {
		return false
	}
	a = a.WithZone("").Unmap()
	for _, p := range n.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Prefixes returns a copy of the networks.
func (n *Nets) Prefixes() []netip.Prefix {
	if n == nil {
		return nil
	}
	return append([]netip.Prefix(nil), n.prefixes...)
}

// defaultSuffixes are the DNS suffixes of internal names.
var defaultSuffixes = []string{"local", "internal", "lan", "corp", "home.arpa", "localdomain", "localhost", "intranet", "arpa"}

// InternalSuffixes is a set of DNS suffixes whose names are internal host names, never
// indicators. It is immutable after construction and safe for concurrent use.
type InternalSuffixes struct {
	suffixes []string // lower-case, no leading or trailing dot
}

// DefaultInternalSuffixes returns .local, .internal, .lan, .corp, .home.arpa, .localdomain,
// .localhost, .intranet and .arpa (reverse-lookup names).
func DefaultInternalSuffixes() *InternalSuffixes {
	return &InternalSuffixes{suffixes: append([]string(nil), defaultSuffixes...)}
}

// ParseInternalSuffixes parses a comma-separated list of suffixes such as
// ".corp.example.com,.lan"; leading dots are optional and "default" adds the defaults.
func ParseInternalSuffixes(s string) (*InternalSuffixes, error) {
	x := &InternalSuffixes{}
	for _, item := range strings.Split(s, ",") {
		item = strings.Trim(strings.ToLower(strings.TrimSpace(item)), ".")
		switch {
		case item == "":
			continue
		case item == "default":
			x.suffixes = append(x.suffixes, defaultSuffixes...)
		case strings.ContainsAny(item, " /:*"):
			return nil, fmt.Errorf("parse internal suffix %q: %w", item, ErrInvalidDomain)
		default:
			x.suffixes = append(x.suffixes, item)
		}
	}
	return x, nil
}

// Match reports whether name (any case, optional trailing dot) equals a suffix or ends with
// "." + suffix.
func (x *InternalSuffixes) Match(name string) bool {
	if x == nil {
		return false
	}
	name = strings.TrimSuffix(strings.TrimSpace(name), ".")
	for _, s := range x.suffixes {
		if len(name) < len(s) {
			continue
		}
		tail := name[len(name)-len(s):]
		if !strings.EqualFold(tail, s) {
			continue
		}
		if len(name) == len(s) || name[len(name)-len(s)-1] == '.' {
			return true
		}
	}
	return false
}
