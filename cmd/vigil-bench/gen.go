package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
)

// publicFirstOctets are /8s of ordinary public address space (mostly RIPE/APNIC allocations)
// from which the bench draws indicator addresses.
var publicFirstOctets = []byte{5, 31, 37, 46, 62, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91,
	92, 93, 94, 95, 109, 176, 178, 185, 188, 193, 194, 195, 212, 213, 217}

// matcher says whether an indicator is on an allow-list (the ingest service would tag it and
// enrichment would skip the providers); the bench avoids such addresses.
type matcher interface {
	Match(ind events.Indicator) (events.ListMatch, bool)
}

// ipPool hands out distinct public IPv4 addresses that match no allow-list. Addresses depend
// only on the seed and the index, so two pools with different seeds rarely overlap.
type ipPool struct {
	seed  uint32
	allow matcher
	next  uint64
}

func newIPPool(seed uint32, allow matcher) *ipPool { return &ipPool{seed: seed, allow: allow} }

// candidate maps k to an address: first octet from the table, low 24 bits from an odd
// multiplier (a bijection on 24 bits for a fixed first octet).
func (p *ipPool) candidate(k uint64) netip.Addr {
	n := uint64(len(publicFirstOctets))
	hi := publicFirstOctets[k%n]
	lo := (uint32(k/n)*2654435761 + p.seed) & 0xFFFFFF
	return netip.AddrFrom4([4]byte{hi, byte(lo >> 16), byte(lo >> 8), byte(lo)})
}

// Take returns n fresh addresses.
func (p *ipPool) Take(n int) []string {
	out := make([]string, 0, n)
	for len(out) < n {
		a := p.candidate(p.next)
		p.next++
		b := a.As4()
		if b[3] == 0 || b[3] == 255 {
			continue
		}
		s := a.String()
		if p.allow != nil {
			if _, ok := p.allow.Match(events.Indicator{Type: events.TypeIPv4, Value: s}); ok {
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

// eveTemplate is one Suricata EVE line split around its placeholders.
type eveTemplate struct {
	parts [][]byte // len(parts) == len(slots)+1
	slots []slot
}

type slot int

const (
	slotTime slot = iota
	slotPublic
)

const (
	phTime   = "@@VIGIL_BENCH_TS@@"
	phPublic = "@@VIGIL_BENCH_PUBLIC@@"
)

// eveTimeLayout is Suricata's timestamp format.
const eveTimeLayout = "2006-01-02T15:04:05.000000-0700"

// loadEVETemplates reads the bundled Suricata samples and turns every line that carries
// src_ip and dest_ip into a template whose timestamp and public address are filled per record.
// The public side is the address outside the internal networks; when both are internal, the
// destination is made public.
func loadEVETemplates(dir string) ([]eveTemplate, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return nil, fmt.Errorf("list samples: %w", err)
	}
	sort.Strings(files)
	nets := indicator.DefaultNets()
	var out []eveTemplate
	for _, f := range files {
		if filepath.Ext(f) == ".jsonl" {
			continue // golden outputs
		}
		ts, err := templatesFromFile(f, nets)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no usable Suricata EVE lines in %s", dir)
	}
	return out, nil
}

func templatesFromFile(path string, nets *indicator.Nets) ([]eveTemplate, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open sample: %w", err)
	}
	defer fh.Close()
	var out []eveTemplate
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		t, ok, err := makeTemplate(line, nets)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if ok {
			out = append(out, t)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read sample: %w", err)
	}
	return out, nil
}

func makeTemplate(line []byte, nets *indicator.Nets) (eveTemplate, bool, error) {
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		return eveTemplate{}, false, fmt.Errorf("decode line: %w", err)
	}
	src, _ := m["src_ip"].(string)
	dst, _ := m["dest_ip"].(string)
	if src == "" || dst == "" {
		return eveTemplate{}, false, nil
	}
	internal := func(s string) bool {
		a, err := netip.ParseAddr(s)
		return err == nil && nets.Contains(a)
	}
	m["timestamp"] = phTime
	switch {
	case internal(src) && internal(dst):
		m["dest_ip"] = phPublic
	case internal(src):
		m["dest_ip"] = phPublic
	case internal(dst):
		m["src_ip"] = phPublic
	default:
		m["src_ip"] = "10.20.30.40"
		m["dest_ip"] = phPublic
	}
	b, err := json.Marshal(m)
	if err != nil {
		return eveTemplate{}, false, fmt.Errorf("encode line: %w", err)
	}
	return splitTemplate(b)
}

// splitTemplate cuts b at the quoted placeholders.
func splitTemplate(b []byte) (eveTemplate, bool, error) {
	var t eveTemplate
	rest := b
	for {
		it := bytes.Index(rest, []byte(phTime))
		ip := bytes.Index(rest, []byte(phPublic))
		if it < 0 && ip < 0 {
			t.parts = append(t.parts, bytes.Clone(rest))
			break
		}
		if ip < 0 || (it >= 0 && it < ip) {
			t.parts = append(t.parts, bytes.Clone(rest[:it]))
			t.slots = append(t.slots, slotTime)
			rest = rest[it+len(phTime):]
		} else {
			t.parts = append(t.parts, bytes.Clone(rest[:ip]))
			t.slots = append(t.slots, slotPublic)
			rest = rest[ip+len(phPublic):]
		}
	}
	var hasTime, hasIP bool
	for _, s := range t.slots {
		hasTime = hasTime || s == slotTime
		hasIP = hasIP || s == slotPublic
	}
	if !hasTime || !hasIP {
		return eveTemplate{}, false, errors.New("template lost a placeholder")
	}
	return t, true, nil
}

// Render appends the line for one event at time ts with the public address ip.
func (t eveTemplate) Render(dst []byte, ts time.Time, ip string) []byte {
	for i, s := range t.slots {
		dst = append(dst, t.parts[i]...)
		switch s {
		case slotTime:
			dst = ts.AppendFormat(dst, eveTimeLayout)
		case slotPublic:
			dst = append(dst, ip...)
		}
	}
	return append(dst, t.parts[len(t.parts)-1]...)
}

// indicatorFor returns the indicator of record i over a pool of distinct IPs; every tenth
// distinct indicator is a domain, so domain lookups are exercised too.
func indicatorFor(pool []string, i int) events.Indicator {
	k := i % len(pool)
	if k%10 == 9 {
		return events.Indicator{Type: events.TypeDomain, Value: "h" + strconv.Itoa(k) + "-" + pool[k][:1] + ".vigilbench-" + seedWord(pool) + ".net"}
	}
	return events.Indicator{Type: events.TypeIPv4, Value: pool[k]}
}

// seedWord derives a short label from the pool so that domains differ between runs.
func seedWord(pool []string) string {
	h := uint32(2166136261)
	for _, c := range []byte(pool[0]) {
		h = (h ^ uint32(c)) * 16777619
	}
	return strconv.FormatUint(uint64(h%1679616), 36)
}

// observationFor builds a plausible Observation of record i.
func observationFor(pool []string, i int, now time.Time) events.Observation {
	ind := indicatorFor(pool, i)
	field := "dest_ip"
	if ind.Type == events.TypeDomain {
		field = "http.hostname"
	}
	actions := []string{events.ActionAllowed, events.ActionBlocked, events.ActionAlerted}
	return events.Observation{
		Indicator:  ind,
		Field:      field,
		EventTime:  now,
		IngestTime: now,
		Producer: events.Producer{Topic: "raw.suricata", Partition: int32(i % 12), Offset: int64(i),
			Format: "suricata_eve", Vendor: "Suricata", Product: "EVE"},
		Sighting: events.Sighting{
			AssetIP:   "10.1." + strconv.Itoa(i%200) + "." + strconv.Itoa(1+i%250),
			Direction: events.DirectionOutbound, Action: actions[i%3], Severity: int32(i % 5),
			Rule: "ET POLICY bench rule " + strconv.Itoa(i%40), SrcPort: int32(40000 + i%20000), DstPort: 443,
			Protocol: "tcp", Count: 1,
		},
	}
}

// enrichmentFor builds an Enrichment of record i with one result per provider and a merged
// exposure view whose scores vary by indicator.
func enrichmentFor(pool []string, i int, now time.Time) events.Enrichment {
	obs := observationFor(pool, i, now)
	k := i % len(pool)
	score := int32(1 + k%5)
	res := func(p string) events.ProviderResult {
		return events.ProviderResult{Provider: p, Status: events.StatusOK, FetchedAt: now, TTL: 24 * time.Hour,
			Fields: map[string]string{"score": strconv.Itoa(int(score))}}
	}
	results := []events.ProviderResult{res("criminalip"), res("internetdb"), res("abuseipdb"), res("greynoise")}
	if obs.Indicator.Type == events.TypeDomain {
		results = []events.ProviderResult{res("criminalip")}
	}
	return events.Enrichment{
		Observation: obs,
		Results:     results,
		Exposure: events.Exposure{
			Malicious: k%7 == 0, InboundScore: score, OutboundScore: int32(1 + (k/5)%5),
			VPN: k%11 == 0, Proxy: k%13 == 0, Tor: k%17 == 0, Hosting: k%3 == 0, Scanner: k%19 == 0,
			OpenPorts: []events.Port{{Port: 22, Protocol: "tcp", Service: "ssh"}, {Port: 443, Protocol: "tcp", Service: "https"}},
			CVEs:      cvesFor(k),
			ASN:       int64(64500 + k%1000), ASName: "BENCH-AS", Org: "Bench Hosting", Country: []string{"DE", "NL", "FR", "US", "RU"}[k%5],
			AbuseConfidence: int32(k % 101), GreyNoiseClass: []string{"benign", "malicious", "unknown"}[k%3],
		},
		EnrichedAt: now,
	}
}

func cvesFor(k int) []events.CVE {
	if k%4 != 0 {
		return nil
	}
	return []events.CVE{{ID: "CVE-2024-" + strconv.Itoa(1000+k%9000), CVSS: float64(k%100) / 10, Ports: []int32{443}}}
}

// verdictFor builds a Verdict of record i. Repeats of an indicator carry a growing sightings
// count and change priority every fifth repeat, as correlate's verdicts would.
func verdictFor(pool []string, i int, now time.Time) events.Verdict {
	k := i % len(pool)
	rep := i / len(pool)
	prio := int32((k + rep/5) % 11)
	action := events.VerdictAnnotate
	switch {
	case prio >= 8:
		action = events.VerdictBlock
	case prio >= 6:
		action = events.VerdictAlert
	case prio >= 3:
		action = events.VerdictReview
	}
	levels := []string{"info", "info", "info", "low", "low", "medium", "medium", "high", "high", "critical", "critical"}
	return events.Verdict{
		Indicator:               indicatorFor(pool, i),
		Priority:                prio,
		Level:                   levels[prio],
		Action:                  action,
		Reasons:                 []events.Reason{{Code: "criminalip.inbound", Text: "criminalip.inbound=" + strconv.Itoa(int(prio)), Weight: 1}},
		PolicyVersion:           "bench-1",
		PreviousPriority:        -1,
		PriorityWithoutExposure: prio / 2,
		ExposureChanged:         prio/2 != prio,
		Sightings: events.SightingSummary{Count: int64(rep + 1), Count1h: int64(rep + 1), Count24h: int64(rep + 1),
			Count7d: int64(rep + 1), DistinctAssets: 1, FirstSeen: now, LastSeen: now, Alerted: int64(rep + 1), MaxSeverity: 2},
		Attributes:  []events.Attribute{{Name: "Exposure Score", Value: strconv.Itoa(int(prio))}, {Name: "Country", Value: "DE"}},
		Tags:        []string{"vigil-bench"},
		Sources:     []string{"criminalip"},
		Description: "bench verdict",
		EventTime:   now,
		DecidedAt:   now,
		ValidUntil:  now.Add(7 * 24 * time.Hour),
	}
}
