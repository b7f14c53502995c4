package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// recClass is what ingest should do with a generated raw record.
type recClass uint8

const (
	classObservation recClass = iota // one public IPv4 indicator: an observation (or collapsed into one)
	classNone                        // internal-only flow: no indicator, nothing on the DLQ
	classMalformed                   // truly malformed: dead-lettered by ingest
)

func (c recClass) String() string {
	switch c {
	case classObservation:
		return "observation"
	case classNone:
		return "none"
	default:
		return "malformed"
	}
}

// Dead-letter classes ingest gives the malformed kinds the generator writes
// (services/ingest/internal/parse reasons).
const (
	badMalformed   = "malformed"
	badInvalidUTF8 = "invalid_utf8"
)

// genConfig sizes the input of one run.
type genConfig struct {
	Records    int    // raw records in total
	Indicators int    // distinct public IPv4 indicators
	Malformed  int    // truly malformed records among Records
	None       int    // internal-only records among Records
	Seed       uint32 // picks the addresses, so runs do not share cache or state keys
}

// maxSightings keeps every indicator below the policy's first sightings step (10) so that its
// verdict does not depend on how much correlation state survived a Redis restart.
const maxSightings = 9

// ErrBadInput means the generator was asked for an input it cannot make.
var ErrBadInput = errors.New("bad generator input")

func (c genConfig) validate() error {
	obs := c.Records - c.Malformed - c.None
	switch {
	case c.Indicators < 1 || c.Malformed < 0 || c.None < 0:
		return fmt.Errorf("%w: need at least one indicator and no negative counts", ErrBadInput)
	case obs < c.Indicators:
		return fmt.Errorf("%w: %d records with indicators cannot cover %d indicators", ErrBadInput, obs, c.Indicators)
	case (obs+c.Indicators-1)/c.Indicators > maxSightings:
		return fmt.Errorf("%w: %d records over %d indicators is more than %d sightings each", ErrBadInput, obs, c.Indicators, maxSightings)
	}
	return nil
}

// plan says, for every raw record index, what it is. It is pure: the same config always gives
// the same plan.
type plan struct {
	Class []recClass
	Ind   []int32  // indicator index for classObservation, -1 otherwise
	Bad   []string // expected dead-letter class for classMalformed
	IPs   []string // indicator index -> address
}

// publicOctets are first octets of ordinary unicast space allocated to RIRs (no private,
// shared, documentation, multicast or reserved ranges).
var publicOctets = []byte{5, 31, 37, 46, 62, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93,
	94, 95, 109, 176, 178, 185, 188, 193, 194, 195, 212, 213, 217}

// matcher says whether an address is on an allow-list or internal; such addresses are skipped.
type matcher func(netip.Addr) bool

// publicIPs returns n distinct public IPv4 addresses derived from seed, none matched by skip.
func publicIPs(n int, seed uint32, skip matcher) []string {
	out := make([]string, 0, n)
	seen := make(map[netip.Addr]bool, n)
	no := uint64(len(publicOctets))
	for k := uint64(0); len(out) < n; k++ {
		lo := (uint32(k/no)*2654435761 + seed*40503) & 0xFFFFFF
		a := netip.AddrFrom4([4]byte{publicOctets[k%no], byte(lo >> 16), byte(lo >> 8), byte(lo)})
		if b := a.As4(); b[3] == 0 || b[3] == 255 || seen[a] || (skip != nil && skip(a)) {
			continue
		}
		seen[a] = true
		out = append(out, a.String())
	}
	return out
}

// makePlan lays the records out: malformed and internal-only records evenly spread, the rest
// cycling through the indicators so repeats of one indicator are far apart in the stream.
func makePlan(c genConfig, skip matcher) (plan, error) {
	if err := c.validate(); err != nil {
		return plan{}, err
	}
	p := plan{Class: make([]recClass, c.Records), Ind: make([]int32, c.Records), Bad: make([]string, c.Records),
		IPs: publicIPs(c.Indicators, c.Seed, skip)}
	special := map[int]recClass{}
	place := func(n int, cl recClass, phase int) {
		if n == 0 {
			return
		}
		step := c.Records / n
		for j := range n {
			i := j*step + (step*phase)/3
			for isSet(special, i%c.Records) {
				i++
			}
			special[i%c.Records] = cl
		}
	}
	place(c.Malformed, classMalformed, 1)
	place(c.None, classNone, 2)
	k := 0
	for i := range c.Records {
		cl, ok := special[i]
		if !ok {
			cl = classObservation
		}
		p.Class[i], p.Ind[i] = cl, -1
		switch cl {
		case classObservation:
			p.Ind[i] = int32(k % c.Indicators)
			k++
		case classMalformed:
			p.Bad[i] = badKind(i)
		}
	}
	return p, nil
}

// isSet reports whether i is in m (the zero recClass is a valid value).
func isSet(m map[int]recClass, i int) bool { _, ok := m[i]; return ok }

// badKind is the dead-letter class of malformed record i; render cycles the kinds by i%3:
// truncated JSON, invalid UTF-8, not JSON at all.
func badKind(i int) string {
	if i%3 == 1 {
		return badInvalidUTF8
	}
	return badMalformed
}

// Counts returns how many records of each class the plan has.
func (p plan) Counts() map[recClass]int {
	out := map[recClass]int{}
	for _, c := range p.Class {
		out[c]++
	}
	return out
}

// BadCounts returns the expected dead letters by class.
func (p plan) BadCounts() map[string]int {
	out := map[string]int{}
	for i, c := range p.Class {
		if c == classMalformed {
			out[p.Bad[i]]++
		}
	}
	return out
}

// eveLayout is Suricata's timestamp format.
const eveLayout = "2006-01-02T15:04:05.000000-0700"

// render returns raw record i at time ts. Everything but the timestamp depends only on i and
// the indicator, and what the policy reads (event type, action, severity, asset) is fixed per
// indicator so a verdict does not depend on which of its sightings correlate still remembers.
func (p plan) render(i int, ts time.Time) []byte {
	b := make([]byte, 0, 512)
	b = append(b, `{"timestamp":"`...)
	b = ts.AppendFormat(b, eveLayout)
	b = append(b, `","flow_id":`...)
	b = strconv.AppendInt(b, int64(1_000_000_000+i), 10)
	switch p.Class[i] {
	case classMalformed:
		switch i % 3 {
		case 0:
			return append(b, `,"in_iface":"eth0","event_type":"alert","src_ip":"10.0.`...) // truncated mid-record
		case 1:
			return append(append(b, `,"event_type":"alert","src_ip":"10.0.0.1","dest_ip":"`...), 0xff, 0xfe, '"', '}')
		default:
			return []byte("<<chaos garbage " + strconv.Itoa(i) + ">> not an EVE record")
		}
	case classNone:
		b = append(b, `,"event_type":"flow","src_ip":"10.9.`...)
		b = strconv.AppendInt(b, int64(i%250), 10)
		b = append(b, `.7","src_port":`...)
		b = strconv.AppendInt(b, int64(30000+i%30000), 10)
		b = append(b, `,"dest_ip":"192.168.40.10","dest_port":445,"proto":"TCP","app_proto":"smb","flow":{"pkts_toserver":6,"pkts_toclient":5,"bytes_toserver":900,"bytes_toclient":700,"state":"closed","reason":"timeout","alerted":false}}`...)
		return b
	}
	k := int(p.Ind[i])
	asset := "10." + strconv.Itoa(1+k%200) + "." + strconv.Itoa((k/200)%250) + "." + strconv.Itoa(1+k%250)
	b = append(b, `,"in_iface":"eth0","event_type":"`...)
	if k%4 == 3 {
		b = append(b, `flow","src_ip":"`...)
	} else {
		b = append(b, `alert","src_ip":"`...)
	}
	b = append(b, asset...)
	b = append(b, `","src_port":`...)
	b = strconv.AppendInt(b, int64(40000+i%20000), 10)
	b = append(b, `,"dest_ip":"`...)
	b = append(b, p.IPs[k]...)
	b = append(b, `","dest_port":443,"proto":"TCP","app_proto":"tls",`...)
	if k%4 == 3 {
		return append(b, `"flow":{"pkts_toserver":4,"pkts_toclient":3,"bytes_toserver":793,"bytes_toclient":343,"state":"established","reason":"timeout","alerted":false}}`...)
	}
	action := "allowed"
	if k%5 == 0 {
		action = "blocked"
	}
	b = append(b, `"alert":{"action":"`...)
	b = append(b, action...)
	b = append(b, `","gid":1,"signature_id":`...)
	b = strconv.AppendInt(b, int64(2_900_000+k%40), 10)
	b = append(b, `,"rev":1,"signature":"ET CHAOS synthetic rule `...)
	b = strconv.AppendInt(b, int64(k%40), 10)
	b = append(b, `","category":"A Network Trojan was detected","severity":`...)
	b = strconv.AppendInt(b, int64(1+k%3), 10)
	return append(b, `}}`...)
}

// Key returns the canonical key of indicator k.
func (p plan) Key(k int) string {
	return events.Indicator{Type: events.TypeIPv4, Value: p.IPs[k]}.Key()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
