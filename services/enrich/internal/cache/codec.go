package cache

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// wireEntry is the compact JSON form of an Entry in Redis: short names and zero values omitted.
type wireEntry struct {
	Status    string            `json:"s"`
	Fields    map[string]string `json:"f,omitempty"`
	Exposure  wireExposure      `json:"e,omitzero"`
	FetchedAt int64             `json:"t"`   // Unix milliseconds
	TTL       int64             `json:"ttl"` // milliseconds
}

type wirePort struct {
	Port       int32    `json:"p"`
	Protocol   string   `json:"pr,omitempty"`
	Service    string   `json:"sv,omitempty"`
	Version    string   `json:"v,omitempty"`
	Vulnerable bool     `json:"vu,omitempty"`
	Tags       []string `json:"tg,omitempty"`
}

type wireCVE struct {
	ID    string  `json:"id"`
	CVSS  float64 `json:"c,omitempty"`
	Ports []int32 `json:"p,omitempty"`
}

type wireExposure struct {
	Malicious       bool       `json:"mal,omitempty"`
	InboundScore    int32      `json:"in,omitempty"`
	OutboundScore   int32      `json:"out,omitempty"`
	VPN             bool       `json:"vpn,omitempty"`
	Proxy           bool       `json:"pxy,omitempty"`
	Tor             bool       `json:"tor,omitempty"`
	Hosting         bool       `json:"hst,omitempty"`
	Cloud           bool       `json:"cld,omitempty"`
	Scanner         bool       `json:"scn,omitempty"`
	Mobile          bool       `json:"mob,omitempty"`
	Darkweb         bool       `json:"drk,omitempty"`
	OpenPorts       []wirePort `json:"ports,omitempty"`
	CVEs            []wireCVE  `json:"cves,omitempty"`
	ASN             int64      `json:"asn,omitempty"`
	ASName          string     `json:"asnm,omitempty"`
	Org             string     `json:"org,omitempty"`
	Country         string     `json:"cc,omitempty"`
	AbuseConfidence int32      `json:"abc,omitempty"`
	GreyNoiseClass  string     `json:"gn,omitempty"`
	Categories      []string   `json:"cat,omitempty"`
	FirstSeen       int64      `json:"fs,omitempty"` // Unix milliseconds
	LastSeen        int64      `json:"ls,omitempty"`
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// encode writes e in the wire form: the reflection-free appendEntry, whose output is byte for byte what
// encodeJSON gives.
func encode(e Entry) ([]byte, error) {
	return appendEntry(make([]byte, 0, 512), &e)
}

// encodeJSON is encode with encoding/json (the reference appendEntry is tested against).
func encodeJSON(e Entry) ([]byte, error) {
	x := e.Exposure
	w := wireEntry{
		Status:    e.Status,
		Fields:    e.Fields,
		FetchedAt: millis(e.FetchedAt),
		TTL:       e.TTL.Milliseconds(),
		Exposure: wireExposure{
			Malicious: x.Malicious, InboundScore: x.InboundScore, OutboundScore: x.OutboundScore,
			VPN: x.VPN, Proxy: x.Proxy, Tor: x.Tor, Hosting: x.Hosting, Cloud: x.Cloud, Scanner: x.Scanner,
			Mobile: x.Mobile, Darkweb: x.Darkweb, ASN: x.ASN, ASName: x.ASName, Org: x.Org, Country: x.Country,
			AbuseConfidence: x.AbuseConfidence, GreyNoiseClass: x.GreyNoiseClass, Categories: x.Categories,
			FirstSeen: millis(x.FirstSeen), LastSeen: millis(x.LastSeen),
		},
	}
	for _, p := range x.OpenPorts {
		w.Exposure.OpenPorts = append(w.Exposure.OpenPorts, wirePort(p))
	}
	for _, c := range x.CVEs {
		w.Exposure.CVEs = append(w.Exposure.CVEs, wireCVE(c))
	}
	return json.Marshal(w)
}

// wirePool recycles decode scratch space: the wireEntry and its port and CVE arrays (which decode copies out
// of, so they are never handed to callers). Fields and Categories are handed out and never reused.
var wirePool = sync.Pool{New: func() any { return new(wireEntry) }}

// release zeroes w, keeping only the emptied port and CVE arrays, and returns it to the pool. Elements are
// zeroed because encoding/json decodes into existing elements without clearing omitted fields.
func release(w *wireEntry) {
	ports, cves := w.Exposure.OpenPorts, w.Exposure.CVEs
	clear(ports[:cap(ports)])
	clear(cves[:cap(cves)])
	*w = wireEntry{Exposure: wireExposure{OpenPorts: ports[:0], CVEs: cves[:0]}}
	wirePool.Put(w)
}

// decode reads an entry written by encode: the reflection-free fastDecode when it recognises the input,
// else encoding/json.
func decode(raw []byte) (Entry, error) {
	if e, ok := fastDecode(raw); ok {
		if !e.Cacheable() {
			return Entry{}, ErrNotCacheable
		}
		return e, nil
	}
	return decodeJSON(raw)
}

// decodeJSON is decode with encoding/json.
func decodeJSON(raw []byte) (Entry, error) {
	w := wirePool.Get().(*wireEntry)
	defer release(w)
	if err := json.Unmarshal(raw, w); err != nil {
		return Entry{}, err
	}
	x := &w.Exposure
	e := Entry{
		Status:    w.Status,
		Fields:    w.Fields,
		FetchedAt: fromMillis(w.FetchedAt),
		TTL:       time.Duration(w.TTL) * time.Millisecond,
		Exposure: events.Exposure{
			Malicious: x.Malicious, InboundScore: x.InboundScore, OutboundScore: x.OutboundScore,
			VPN: x.VPN, Proxy: x.Proxy, Tor: x.Tor, Hosting: x.Hosting, Cloud: x.Cloud, Scanner: x.Scanner,
			Mobile: x.Mobile, Darkweb: x.Darkweb, ASN: x.ASN, ASName: x.ASName, Org: x.Org, Country: x.Country,
			AbuseConfidence: x.AbuseConfidence, GreyNoiseClass: x.GreyNoiseClass, Categories: x.Categories,
			FirstSeen: fromMillis(x.FirstSeen), LastSeen: fromMillis(x.LastSeen),
		},
	}
	if len(x.OpenPorts) > 0 {
		e.Exposure.OpenPorts = make([]events.Port, len(x.OpenPorts))
		for i, p := range x.OpenPorts {
			e.Exposure.OpenPorts[i] = events.Port(p)
		}
	}
	if len(x.CVEs) > 0 {
		e.Exposure.CVEs = make([]events.CVE, len(x.CVEs))
		for i, c := range x.CVEs {
			e.Exposure.CVEs[i] = events.CVE(c)
		}
	}
	if !e.Cacheable() {
		return Entry{}, ErrNotCacheable
	}
	e.Sorted = events.SortFields(e.Fields)
	return e, nil
}
