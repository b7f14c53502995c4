package enricher

import (
	"reflect"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

func ok(name string, x events.Exposure) outcome {
	return outcome{res: events.ProviderResult{Provider: name, Status: events.StatusOK}, exp: x}
}

func TestMerge(t *testing.T) {
	mc := MergeConfig{NetworkPreference: []string{"criminalip", "offline"}, AbuseProvider: "abuseipdb", GreyNoiseProvider: "greynoise"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Inputs in provider-name order, as EnrichBatch passes them.
	in := []outcome{
		ok("abuseipdb", events.Exposure{AbuseConfidence: 87, Country: "DE", Tor: true, LastSeen: t0.Add(48 * time.Hour)}),
		ok("criminalip", events.Exposure{InboundScore: 5, OutboundScore: 2, VPN: true, ASN: 8075, ASName: "MSFT", Country: "US",
			OpenPorts: []events.Port{{Port: 3389, Protocol: "tcp", Service: "rdp", Tags: []string{"Data Leak"}}},
			CVEs:      []events.CVE{{ID: "CVE-2021-23017", CVSS: 7.5, Ports: []int32{514}}},
			FirstSeen: t0.Add(24 * time.Hour), Categories: []string{"scanner"}}),
		{res: events.ProviderResult{Provider: "failing", Status: events.StatusError}, exp: events.Exposure{Malicious: true, InboundScore: 5}},
		ok("greynoise", events.Exposure{GreyNoiseClass: "malicious", Scanner: true, Malicious: true, FirstSeen: t0}),
		ok("internetdb", events.Exposure{Org: "Org From IDB", ASN: 1, Country: "FR",
			OpenPorts:  []events.Port{{Port: 3389, Vulnerable: true, Tags: []string{"cloud"}}, {Port: 22, Protocol: "tcp"}},
			CVEs:       []events.CVE{{ID: "CVE-2021-23017", CVSS: 9.4, Ports: []int32{443}}, {ID: "CVE-2020-0001"}},
			Categories: []string{"cloud", "scanner"}}),
		ok("offline", events.Exposure{ASN: 64500, ASName: "OFFLINE-AS", Org: "Offline Org", Country: "NL"}),
		{res: events.ProviderResult{Provider: "nf", Status: events.StatusNotFound}},
	}
	got := merge(mc, in)
	want := events.Exposure{
		Malicious: true, InboundScore: 5, OutboundScore: 2, VPN: true, Tor: true, Scanner: true,
		ASN: 8075, ASName: "MSFT", Org: "Offline Org", Country: "US", // criminalip, then offline, then others
		AbuseConfidence: 87, GreyNoiseClass: "malicious",
		OpenPorts: []events.Port{
			{Port: 22, Protocol: "tcp"},
			{Port: 3389, Protocol: "tcp", Service: "rdp", Vulnerable: true, Tags: []string{"Data Leak", "cloud"}},
		},
		CVEs: []events.CVE{
			{ID: "CVE-2020-0001"},
			{ID: "CVE-2021-23017", CVSS: 9.4, Ports: []int32{443, 514}},
		},
		Categories: []string{"cloud", "scanner"},
		FirstSeen:  t0, LastSeen: t0.Add(48 * time.Hour),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merge\n got %+v\nwant %+v", got, want)
	}
}

func TestMergeNothingKnown(t *testing.T) {
	got := merge(MergeConfig{}, []outcome{{res: events.ProviderResult{Provider: "abuseipdb", Status: events.StatusRateLimited}, exp: events.Exposure{AbuseConfidence: 99}}})
	if !reflect.DeepEqual(got, events.Exposure{AbuseConfidence: -1}) {
		t.Fatalf("got %+v, want the unknown view", got)
	}
}

// TestMergeOwnsItsSlices: one provider's ports, tags and CVE ports come out sorted and de-duplicated in
// slices of their own, so a merged view never aliases (or reorders) a cached entry.
func TestMergeOwnsItsSlices(t *testing.T) {
	x := events.Exposure{
		OpenPorts: []events.Port{{Port: 443, Tags: []string{"b", "a", "b"}}, {Port: 22}},
		CVEs:      []events.CVE{{ID: "CVE-2", CVSS: -1, Ports: []int32{443, 22}}, {ID: "CVE-1"}},
	}
	got := merge(MergeConfig{}, []outcome{ok("internetdb", x)})
	want := []events.Port{{Port: 22}, {Port: 443, Tags: []string{"a", "b"}}}
	if !reflect.DeepEqual(got.OpenPorts, want) {
		t.Fatalf("ports %+v", got.OpenPorts)
	}
	if c := got.CVEs; len(c) != 2 || c[0].ID != "CVE-1" || c[1].CVSS != 0 || !reflect.DeepEqual(c[1].Ports, []int32{22, 443}) {
		t.Fatalf("cves %+v", c)
	}
	if x.OpenPorts[0].Port != 443 || x.OpenPorts[0].Tags[0] != "b" || x.CVEs[0].Ports[0] != 443 {
		t.Fatalf("input changed: %+v", x)
	}
}
