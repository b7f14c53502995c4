// Package allowlist matches indicators against MISP warninglists and local
// allow-lists (partner proxies, own egress addresses, scanners you run).
//
// Lists are compiled once into an immutable [Set]: CIDR entries become
// sorted tables of disjoint address ranges searched with binary search (one
// with 32-bit starts for IPv4, one with 128-bit starts for the rest of the
// IPv6 space), hostname entries a hash table walked from the full name to
// its parents, exact strings a hash table, substrings and regular
// expressions small slices checked last. Entry values are kept in one string
// for the match evidence. [Load] compiles each shipped warninglist as soon
// as it is parsed, so loading all of them holds one parsed list at a time.
// A [Holder] serves lookups from many goroutines and swaps in a new Set
// atomically on reload.
//
// The MISP lists shipped in lists/ (CC0, see lists/SOURCES.md) are embedded in
// the binary:
//
//	lists, err := allowlist.Embedded([]string{"all"})
//	if err != nil { ... }
//	local, err := allowlist.LoadLocalFile("/etc/vigil/allow.yaml")
//	if err != nil { ... }
//	set, err := allowlist.Compile(append(local, lists...), allowlist.Options{})
//	if err != nil { ... }
//	h := allowlist.NewHolder(set)
//	if m, ok := h.Match(events.Indicator{Type: events.TypeIPv4, Value: "8.8.8.8"}); ok {
//		fmt.Println(m.List, m.Reason) // public-dns-v4 ...
//	}
//
// Matching semantics:
//   - cidr: the indicator address lies in the prefix (bare addresses are /32
//     or /128); the most specific prefix wins.
//   - hostname: the domain itself or any subdomain ("amazonaws.com" matches
//     "s3.amazonaws.com" but not "notamazonaws.com"). Leading and trailing
//     dots in entries are ignored. URL indicators are matched by their host.
//   - string: exact, case-insensitive. MISP string entries that start with a
//     dot (".google.de") are treated as hostname entries.
//   - substring: the lower-cased indicator value contains the entry.
//   - regex: Go RE2 syntax, compiled once, matched against the value.
//
// A list applies only to the indicator types its matching_attributes name
// (ip-src/ip-dst → ipv4/ipv6, domain/hostname → domain, url/uri → url,
// md5/sha1/sha256 → hashes). When several entries match, the most specific
// wins (longest prefix, longest host name, exact before substring before
// regex); among equally specific entries the list given first to [Compile]
// wins, so pass local lists first. Entries past their expiry never match.
package allowlist
