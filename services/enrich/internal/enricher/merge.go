package enricher

import (
	"slices"

	"github.com/vigilsec/vigil/pkg/events"
)

// merge builds the merged exposure view of one record from the providers whose status is ok (not_found,
// skipped and failures contribute nothing). The rule:
//
//   - Malicious, VPN, Proxy, Tor, Hosting, Cloud, Scanner, Mobile, Darkweb: OR.
//   - InboundScore, OutboundScore: max.
//   - ASN, ASName, Org, Country: each field from the first provider that has it, in MergeConfig.NetworkPreference
//     order (default Criminal IP, then offline), then the remaining providers by name.
//   - OpenPorts: union keyed by port number; Vulnerable OR-ed, Tags unioned, Protocol/Service/Version from the
//     first provider (same order) that has them; sorted by port.
//   - CVEs: union keyed by ID keeping the max CVSS, Ports unioned; sorted by ID.
//   - Categories: sorted union.
//   - AbuseConfidence: the AbuseProvider's value, -1 when it has no ok answer.
//   - GreyNoiseClass: the GreyNoiseProvider's value, empty when it has no ok answer.
//   - FirstSeen: earliest non-zero; LastSeen: latest.
func merge(mc MergeConfig, ocs []outcome) events.Exposure {
	x := events.Exposure{AbuseConfidence: -1}
	// Pointers into ocs (outcomes are large); the buffer keeps the usual few providers off the heap.
	var buf [8]*outcome
	ok := buf[:0]
	for i := range ocs {
		if ocs[i].res.Status == events.StatusOK {
			ok = append(ok, &ocs[i])
		}
	}
	rank := func(name string) int {
		if i := slices.Index(mc.NetworkPreference, name); i >= 0 {
			return i
		}
		return len(mc.NetworkPreference)
	}
	// ocs are in provider-name order; a stable sort by preference keeps name order among the rest.
	slices.SortStableFunc(ok, func(a, b *outcome) int { return rank(a.res.Provider) - rank(b.res.Provider) })

	ports := map[int32]*events.Port{}
	cves := map[string]*events.CVE{}
	cats := map[string]bool{}
	for _, oc := range ok {
		p := &oc.exp
		x.Malicious = x.Malicious || p.Malicious
		x.VPN = x.VPN || p.VPN
		x.Proxy = x.Proxy || p.Proxy
		x.Tor = x.Tor || p.Tor
		x.Hosting = x.Hosting || p.Hosting
		x.Cloud = x.Cloud || p.Cloud
		x.Scanner = x.Scanner || p.Scanner
		x.Mobile = x.Mobile || p.Mobile
		x.Darkweb = x.Darkweb || p.Darkweb
		x.InboundScore = max(x.InboundScore, p.InboundScore)
		x.OutboundScore = max(x.OutboundScore, p.OutboundScore)
		if x.ASN == 0 {
			x.ASN = p.ASN
		}
		if x.ASName == "" {
			x.ASName = p.ASName
		}
		if x.Org == "" {
			x.Org = p.Org
		}
		if x.Country == "" {
			x.Country = p.Country
		}
		switch oc.res.Provider {
		case mc.AbuseProvider:
			x.AbuseConfidence = p.AbuseConfidence
		case mc.GreyNoiseProvider:
			x.GreyNoiseClass = p.GreyNoiseClass
		}
		if !p.FirstSeen.IsZero() && (x.FirstSeen.IsZero() || p.FirstSeen.Before(x.FirstSeen)) {
			x.FirstSeen = p.FirstSeen
		}
		if p.LastSeen.After(x.LastSeen) {
			x.LastSeen = p.LastSeen
		}
		for _, c := range p.Categories {
			cats[c] = true
		}
		for _, pt := range p.OpenPorts {
			m, seen := ports[pt.Port]
			if !seen {
				m = &events.Port{Port: pt.Port}
				ports[pt.Port] = m
			}
			m.Vulnerable = m.Vulnerable || pt.Vulnerable
			m.Tags = union(m.Tags, pt.Tags)
			if m.Protocol == "" {
				m.Protocol = pt.Protocol
			}
			if m.Service == "" {
				m.Service = pt.Service
			}
			if m.Version == "" {
				m.Version = pt.Version
			}
		}
		for _, c := range p.CVEs {
			m, seen := cves[c.ID]
			if !seen {
				m = &events.CVE{ID: c.ID}
				cves[c.ID] = m
			}
			m.CVSS = max(m.CVSS, c.CVSS)
			m.Ports = union(m.Ports, c.Ports)
		}
	}
	for _, p := range ports {
		x.OpenPorts = append(x.OpenPorts, *p)
	}
	slices.SortFunc(x.OpenPorts, func(a, b events.Port) int { return int(a.Port) - int(b.Port) })
	for _, c := range cves {
		x.CVEs = append(x.CVEs, *c)
	}
	slices.SortFunc(x.CVEs, func(a, b events.CVE) int { return compareStrings(a.ID, b.ID) })
	for c := range cats {
		x.Categories = append(x.Categories, c)
	}
	slices.Sort(x.Categories)
	return x
}

// union returns the sorted set union of a and b.
func union[T int32 | string](a, b []T) []T {
	if len(b) == 0 {
		return a
	}
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
