package main

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"testing"

	"github.com/vigilsec/vigil/pkg/events"
)

// WarninglistCost is the in-process cost of one allow-list lookup with every shipped
// warninglist loaded (what ingest and correlate pay per indicator).
type WarninglistCost struct {
	Lists      int     `json:"lists"`
	Entries    int     `json:"entries"`
	IPv4NS     float64 `json:"ipv4_ns"`
	IPv6NS     float64 `json:"ipv6_ns"`
	DomainNS   float64 `json:"domain_ns"`
	Samples    int     `json:"samples"`     // distinct indicators per type, cycled through
	MatchShare float64 `json:"match_share"` // share of the sample indicators some list matches
}

// runWarninglist measures Match on a mix of public addresses from the bench's pool, addresses
// and names the shipped lists contain, and random subdomains.
func (b *bench) runWarninglist(context.Context) error {
	if b.allow == nil {
		return errors.New("allow-lists not loaded")
	}
	const n = 4096
	pool := newIPPool(b.seed^0x5bd1e995, nil).Take(n)
	listedV4 := []string{"8.8.8.8", "1.1.1.1", "52.95.110.1", "13.107.42.14", "104.16.0.1", "20.190.128.1"}
	v4 := make([]events.Indicator, 0, n)
	v6 := make([]events.Indicator, 0, n)
	doms := make([]events.Indicator, 0, n)
	listedDoms := []string{"www.google.com", "api.github.com", "login.microsoftonline.com", "s3.amazonaws.com", "cdn.cloudflare.net"}
	for i := range n {
		ip := pool[i]
		if i%8 == 0 {
			ip = listedV4[(i/8)%len(listedV4)]
		}
		v4 = append(v4, events.Indicator{Type: events.TypeIPv4, Value: ip})
		a := netip.MustParseAddr(ip).As4()
		v6addr := netip.AddrFrom16([16]byte{0x2a, 0x00, 0x14, 0x50, 0x40, 0x01, byte(i >> 8), byte(i), 0, 0, 0, 0, a[0], a[1], a[2], a[3]})
		if i%2 == 0 {
			v6addr = netip.AddrFrom16([16]byte{0x24, 0x06, 0xda, 0x00, byte(i >> 8), byte(i), 0, 0, 0, 0, 0, 0, a[0], a[1], a[2], a[3]})
		}
		v6 = append(v6, events.Indicator{Type: events.TypeIPv6, Value: v6addr.String()})
		d := "h" + strconv.Itoa(i) + ".vigilbench-" + strconv.Itoa(int(b.seed%9973)) + ".net"
		if i%8 == 0 {
			d = "x" + strconv.Itoa(i) + "." + listedDoms[(i/8)%len(listedDoms)]
		}
		doms = append(doms, events.Indicator{Type: events.TypeDomain, Value: d})
	}
	matched, total := 0, 0
	for _, set := range [][]events.Indicator{v4, v6, doms} {
		for _, ind := range set {
			if _, ok := b.allow.Match(ind); ok {
				matched++
			}
			total++
		}
	}
	perLookup := func(inds []events.Indicator) float64 {
		r := testing.Benchmark(func(tb *testing.B) {
			for i := 0; tb.Loop(); i++ {
				b.allow.Match(inds[i%len(inds)])
			}
		})
		return round(float64(r.T.Nanoseconds())/float64(max(r.N, 1)), 1)
	}
	b.rep.Warninglist = &WarninglistCost{
		Lists: len(b.allow.Lists()), Entries: b.allow.Len(), Samples: n,
		IPv4NS: perLookup(v4), IPv6NS: perLookup(v6), DomainNS: perLookup(doms),
		MatchShare: round(float64(matched)/float64(total), 3),
	}
	b.log.Info("warninglist", "ipv4_ns", b.rep.Warninglist.IPv4NS, "ipv6_ns", b.rep.Warninglist.IPv6NS,
		"domain_ns", b.rep.Warninglist.DomainNS, "match_share", b.rep.Warninglist.MatchShare)
	return nil
}
