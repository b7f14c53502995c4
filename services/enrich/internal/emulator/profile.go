package emulator

import (
	"hash/fnv"
	"net/netip"
)

// Kind is the deterministic profile the emulator assigns to an indicator.
type Kind int

// Profiles. Profile maps the FNV-1a 64 hash of the canonical indicator, modulo 16, onto them:
// 0–4 safe, 5–6 vpn, 7–8 hosting, 9 tor, 10–11 scanner, 12–13 critical, 14–15 not_found.
const (
	KindSafe     Kind = iota // clean residential address: Safe/Safe scores, one HTTPS port
	KindVPN                  // VPN exit: is_vpn, OpenVPN port, Moderate inbound
	KindHosting              // data-centre host: is_hosting + is_cloud, SSH and HTTP ports
	KindTor                  // Tor relay: is_tor, Dangerous scores, AbuseIPDB 100
	KindScanner              // internet scanner: is_scanner, honeypot and IDS hits, GreyNoise malicious
	KindCritical             // exposed host: Critical scores, vulnerable ports with CVEs (CVSS v3)
	KindNotFound             // unknown to every provider: 404 / not-observed answers
)

// Kinds lists every profile in order.
var Kinds = []Kind{KindSafe, KindVPN, KindHosting, KindTor, KindScanner, KindCritical, KindNotFound}

var kindNames = [...]string{"safe", "vpn", "hosting", "tor", "scanner", "critical", "not_found"}

// String returns the profile name, e.g. "critical".
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return "invalid"
	}
	return kindNames[k]
}

var bucketKinds = [16]Kind{
	KindSafe, KindSafe, KindSafe, KindSafe, KindSafe,
	KindVPN, KindVPN, KindHosting, KindHosting, KindTor,
	KindScanner, KindScanner, KindCritical, KindCritical, KindNotFound, KindNotFound,
}

// hash64 is FNV-1a 64 over s.
func hash64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// Profile returns the profile of an indicator value (an IP or a domain). IPs are canonicalised
// with net/netip first, so "::ffff:1.2.3.4" and "1.2.3.4" share a profile.
func Profile(indicator string) Kind {
	if a, err := netip.ParseAddr(indicator); err == nil {
		indicator = a.Unmap().WithZone("").String()
	}
	return bucketKinds[hash64(indicator)%16]
}

// IPOf returns the n-th (n ≥ 0) IPv4 address in 198.18.0.0/15 (the benchmarking range) whose profile
// is k, so tests can pick addresses of each kind. It returns "" for an invalid kind.
func IPOf(k Kind, n int) string {
	if k < 0 || int(k) >= len(kindNames) || n < 0 {
		return ""
	}
	seen := 0
	for i := uint32(0); i < 1<<17; i++ {
		ip := netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)}).String()
		if Profile(ip) != k {
			continue
		}
		if seen == n {
			return ip
		}
		seen++
	}
	return ""
}
