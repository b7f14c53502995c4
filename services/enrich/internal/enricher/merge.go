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

	var nports, ncves, ncats int
	for _, oc := range ok {
		nports += len(oc.exp.OpenPorts)
		ncves += len(oc.exp.CVEs)
		ncats += len(oc.exp.Categories)
	}
	// Ports, CVEs and categories are gathered in preference order, stably sorted by key and merged run by
	// run: no maps, and the first provider of a key in preference order comes first in its run.
	if nports > 0 {
		x.OpenPorts = make([]events.Port, 0, nports)
	}
	if ncves > 0 {
		x.CVEs = make([]events.CVE, 0, ncves)
	}
	if ncats > 0 {
		x.Categories = make([]string, 0, ncats)
	}
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
		x.Categories = append(x.Categories, p.Categories...)
		x.OpenPorts = append(x.OpenPorts, p.OpenPorts...)
		x.CVEs = append(x.CVEs, p.CVEs...)
	}
	if len(x.Categories) > 1 {
		slices.Sort(x.Categories)
		x.Categories = slices.Compact(x.Categories)
	}
	x.OpenPorts = mergePorts(x.OpenPorts)
	x.CVEs = mergeCVEs(x.CVEs)
	return x
}

// mergePorts sorts ports (gathered in preference order) by number and folds each number's run into its
// first element: Vulnerable OR-ed, Tags unioned, Protocol/Service/Version from the first that has them.
// The result owns its Tags slices (the inputs' are never written).
func mergePorts(ps []events.Port) []events.Port {
	if len(ps) == 0 {
		return ps
	}
	slices.SortStableFunc(ps, func(a, b events.Port) int { return int(a.Port) - int(b.Port) })
	out := ps[:0]
	for i := 0; i < len(ps); {
		m := ps[i]
		m.Tags = union(nil, m.Tags) // sorted, de-duplicated and never the input's slice
		j := i + 1
		for ; j < len(ps) && ps[j].Port == m.Port; j++ {
			pt := ps[j]
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
		out = append(out, m)
		i = j
	}
	return out
}

// mergeCVEs sorts CVEs by ID and folds each ID's run: max CVSS, Ports unioned.
func mergeCVEs(cs []events.CVE) []events.CVE {
	if len(cs) == 0 {
		return cs
	}
	slices.SortStableFunc(cs, func(a, b events.CVE) int { return compareStrings(a.ID, b.ID) })
	out := cs[:0]
	for i := 0; i < len(cs); {
		m := cs[i]
		m.CVSS = max(0, m.CVSS)
		m.Ports = union(nil, m.Ports)
		j := i + 1
		for ; j < len(cs) && cs[j].ID == m.ID; j++ {
			m.CVSS = max(m.CVSS, cs[j].CVSS)
			m.Ports = union(m.Ports, cs[j].Ports)
		}
		out = append(out, m)
		i = j
	}
	return out
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
