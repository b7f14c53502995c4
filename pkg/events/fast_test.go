package events

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// gen makes random values that exercise every corner of the mapping: empty, unicode, invalid
// UTF-8 and long strings, nil vs empty slices and maps, optional fields present and absent,
// zero and extreme times, negative and extreme numbers.
type gen struct {
	r     *rand.Rand
	multi bool // maps may hold more than one key
}

func newGen(seed uint64) *gen { return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

var symbols = []string{TypeIPv4, TypeDomain, TypeSHA256, DirectionInbound, DirectionUnknown, ActionBlocked,
	StatusOK, StatusBreakerOpen, VerdictSuppress, "tcp", "udp", "high", "none"}

func (g *gen) str() string {
	switch g.r.IntN(9) {
	case 0, 1:
		return ""
	case 2:
		runes := []rune("aé漢字🙂\u0000\uFFFD\u200d/\\\"")
		var sb strings.Builder
		for range g.r.IntN(12) {
			sb.WriteRune(runes[g.r.IntN(len(runes))])
		}
		return sb.String()
	case 3:
		return symbols[g.r.IntN(len(symbols))]
	case 4:
		b := make([]byte, g.r.IntN(6))
		for i := range b {
			b[i] = byte(0x80 + g.r.IntN(0x80)) // not valid UTF-8
		}
		return string(b)
	case 5:
		return strings.Repeat("x", 60+g.r.IntN(400)) // length varint of 1 or 2 bytes
	default:
		const abc = "abcdefghijklmnopqrstuvwxyz0123456789.-:_"
		b := make([]byte, 1+g.r.IntN(20))
		for i := range b {
			b[i] = abc[g.r.IntN(len(abc))]
		}
		return string(b)
	}
}

func (g *gen) i32() int32 {
	switch g.r.IntN(8) {
	case 0:
		return 0
	case 1:
		return -1
	case 2:
		return math.MinInt32
	case 3:
		return math.MaxInt32
	case 4:
		return int32(g.r.IntN(200) - 100)
	default:
		return int32(g.r.Uint32())
	}
}

func (g *gen) i64() int64 {
	switch g.r.IntN(8) {
	case 0:
		return 0
	case 1:
		return -1
	case 2:
		return math.MinInt64
	case 3:
		return math.MaxInt64
	case 4:
		return int64(g.r.IntN(20000) - 10000)
	default:
		return int64(g.r.Uint64())
	}
}

// f64 never returns NaN (DeepEqual cannot compare it); TestFastEncodeFloats covers NaN.
func (g *gen) f64() float64 {
	switch g.r.IntN(7) {
	case 0:
		return 0
	case 1:
		return -1
	case 2:
		return math.Inf(1 - 2*g.r.IntN(2))
	case 3:
		return math.SmallestNonzeroFloat64
	default:
		return g.r.NormFloat64() * 1e3
	}
}

func (g *gen) bool() bool { return g.r.IntN(2) == 1 }

func (g *gen) time() time.Time {
	switch g.r.IntN(9) {
	case 0, 1:
		return time.Time{}
	case 2:
		return time.UnixMilli(0) // not zero, but written as epoch 0: decodes to the zero time
	case 3:
		return time.Unix(-g.r.Int64N(1e11), g.r.Int64N(1e9)) // before 1970, sub-millisecond
	case 4:
		return time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) // non-zero at year 1
	case 5:
		return time.Unix(g.r.Int64N(1e10), g.r.Int64N(1e9)).In(time.FixedZone("X", 3600*5))
	case 6:
		return time.Unix(math.MaxInt64/500-g.r.Int64N(1e6), 0) // milliseconds overflow int64
	default:
		return time.UnixMilli(1.7e12 + g.r.Int64N(1e11)).UTC()
	}
}

func (g *gen) strs() []string {
	switch g.r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	out := make([]string, 1+g.r.IntN(5))
	for i := range out {
		out[i] = g.str()
	}
	return out
}

func (g *gen) fields() map[string]string {
	switch g.r.IntN(4) {
	case 0:
		return nil
	case 1:
		return map[string]string{}
	}
	n := 1
	if g.multi {
		n = 1 + g.r.IntN(30)
	}
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%d%s", i, g.str())] = g.str()
	}
	return m
}

func (g *gen) bytes() []byte {
	switch g.r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, g.r.IntN(300))
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

func (g *gen) observation() Observation {
	o := Observation{
		Indicator:  Indicator{Type: g.str(), Value: g.str()},
		Field:      g.str(),
		EventTime:  g.time(),
		IngestTime: g.time(),
		Producer: Producer{Topic: g.str(), Partition: g.i32(), Offset: g.i64(), Format: g.str(),
			Vendor: g.str(), Product: g.str()},
		Sighting: Sighting{AssetIP: g.str(), AssetHost: g.str(), User: g.str(), Direction: g.str(), Action: g.str(),
			Severity: g.i32(), Rule: g.str(), SrcPort: g.i32(), DstPort: g.i32(), Protocol: g.str(), Count: g.i32()},
	}
	if g.bool() {
		o.Allowlist = &ListMatch{List: g.str(), Reason: g.str()}
	}
	return o
}

func (g *gen) enrichment() Enrichment {
	e := Enrichment{Observation: g.observation(), EnrichedAt: g.time()}
	if g.bool() {
		e.Results = []ProviderResult{}
	}
	for range g.r.IntN(4) {
		ttl := time.Duration(g.i64())
		if g.bool() {
			ttl = time.Duration(g.r.IntN(100000)) * time.Millisecond
		}
		e.Results = append(e.Results, ProviderResult{Provider: g.str(), Status: g.str(), Error: g.str(),
			FetchedAt: g.time(), CachedAt: g.time(), TTL: ttl, Fields: g.fields()})
	}
	x := &e.Exposure
	*x = Exposure{Malicious: g.bool(), InboundScore: g.i32(), OutboundScore: g.i32(), VPN: g.bool(), Proxy: g.bool(),
		Tor: g.bool(), Hosting: g.bool(), Cloud: g.bool(), Scanner: g.bool(), Mobile: g.bool(), Darkweb: g.bool(),
		ASN: g.i64(), ASName: g.str(), Org: g.str(), Country: g.str(), AbuseConfidence: g.i32(),
		GreyNoiseClass: g.str(), Categories: g.strs(), FirstSeen: g.time(), LastSeen: g.time()}
	if g.bool() {
		x.OpenPorts = []Port{}
	}
	for range g.r.IntN(4) {
		x.OpenPorts = append(x.OpenPorts, Port{Port: g.i32(), Protocol: g.str(), Service: g.str(), Version: g.str(),
			Vulnerable: g.bool(), Tags: g.strs()})
	}
	for range g.r.IntN(4) {
		c := CVE{ID: g.str(), CVSS: g.f64()}
		for range g.r.IntN(4) {
			c.Ports = append(c.Ports, g.i32())
		}
		x.CVEs = append(x.CVEs, c)
	}
	return e
}

func (g *gen) verdict() Verdict {
	v := Verdict{Indicator: Indicator{Type: g.str(), Value: g.str()}, Priority: g.i32(), Level: g.str(), Action: g.str(),
		PolicyVersion: g.str(), PreviousPriority: g.i32(), PriorityWithoutExposure: g.i32(), ExposureChanged: g.bool(),
		Sightings: SightingSummary{Count: g.i64(), Count1h: g.i64(), Count24h: g.i64(), Count7d: g.i64(),
			DistinctAssets: g.i64(), FirstSeen: g.time(), LastSeen: g.time(), Allowed: g.i64(), Blocked: g.i64(),
			Alerted: g.i64(), BlockedShare: g.f64(), MaxSeverity: g.i32()},
		Tags: g.strs(), Sources: g.strs(), SetScore: g.bool(), Description: g.str(),
		EventTime: g.time(), DecidedAt: g.time(), ValidUntil: g.time()}
	for range g.r.IntN(5) {
		v.Reasons = append(v.Reasons, Reason{Code: g.str(), Text: g.str(), Weight: g.f64()})
	}
	if g.bool() {
		v.Attributes = []Attribute{}
	}
	for range g.r.IntN(5) {
		v.Attributes = append(v.Attributes, Attribute{Name: g.str(), Value: g.str()})
	}
	return v
}

func (g *gen) feedback() Feedback {
	return Feedback{Indicator: Indicator{Type: g.str(), Value: g.str()}, ThreatQID: g.i64(), Kind: g.str(),
		NewStatus: g.str(), PreviousStatus: g.str(), NewScore: g.f64(), Reason: g.str(), Analyst: g.str(),
		VigilAction: g.str(), VigilPriority: g.i32(), ChangedAt: g.time()}
}

func (g *gen) deadLetter() DeadLetter {
	d := DeadLetter{Key: g.bytes(), Value: g.bytes(), SourceTopic: g.str(), SourcePartition: g.i32(),
		SourceOffset: g.i64(), Stage: g.str(), ErrorClass: g.str(), Message: g.str(), Attempts: g.i32(), Time: g.time()}
	if g.bool() {
		d.Headers = []Header{}
	}
	for range g.r.IntN(4) {
		d.Headers = append(d.Headers, Header{Key: g.str(), Value: g.bytes()})
	}
	return d
}

// record ties one record type's generator, reference (goavro) mapping and Serde methods together.
type record struct {
	name   string
	gen    func(*gen) any
	native func(any) map[string]any // native.go's former encoder mapping (oracle_test.go)
	from   func(map[string]any) any // native.go's decoder mapping
	encode func(*Serde, any) ([]byte, error)
	decode func(*Serde, []byte) (any, error)
}

var records = []record{
	{SchemaObservation,
		func(g *gen) any { return g.observation() },
		func(v any) map[string]any { o := v.(Observation); return observationNative(&o) },
		func(m map[string]any) any { return observationFrom(m) },
		func(s *Serde, v any) ([]byte, error) { o := v.(Observation); return s.EncodeObservation(&o) },
		func(s *Serde, b []byte) (any, error) { return s.DecodeObservation(context.Background(), b) }},
	{SchemaEnrichment,
		func(g *gen) any { return g.enrichment() },
		func(v any) map[string]any { e := v.(Enrichment); return enrichmentNative(&e) },
		func(m map[string]any) any { return enrichmentFrom(m) },
		func(s *Serde, v any) ([]byte, error) { e := v.(Enrichment); return s.EncodeEnrichment(&e) },
		func(s *Serde, b []byte) (any, error) { return s.DecodeEnrichment(context.Background(), b) }},
	{SchemaVerdict,
		func(g *gen) any { return g.verdict() },
		func(v any) map[string]any { x := v.(Verdict); return verdictNative(&x) },
		func(m map[string]any) any { return verdictFrom(m) },
		func(s *Serde, v any) ([]byte, error) { x := v.(Verdict); return s.EncodeVerdict(&x) },
		func(s *Serde, b []byte) (any, error) { return s.DecodeVerdict(context.Background(), b) }},
	{SchemaFeedback,
		func(g *gen) any { return g.feedback() },
		func(v any) map[string]any { f := v.(Feedback); return feedbackNative(&f) },
		func(m map[string]any) any { return feedbackFrom(m) },
		func(s *Serde, v any) ([]byte, error) { f := v.(Feedback); return s.EncodeFeedback(&f) },
		func(s *Serde, b []byte) (any, error) { return s.DecodeFeedback(context.Background(), b) }},
	{SchemaDeadLetter,
		func(g *gen) any { return g.deadLetter() },
		func(v any) map[string]any { d := v.(DeadLetter); return deadLetterNative(&d) },
		func(m map[string]any) any { return deadLetterFrom(m) },
		func(s *Serde, v any) ([]byte, error) { d := v.(DeadLetter); return s.EncodeDeadLetter(&d) },
		func(s *Serde, b []byte) (any, error) { return s.DecodeDeadLetter(context.Background(), b) }},
}

func recordByName(t testing.TB, name string) record {
	t.Helper()
	for _, r := range records {
		if r.name == name {
			return r
		}
	}
	t.Fatalf("no record %s", name)
	return record{}
}

// goavroSingle is the encoding the Serde produced before the direct encoder.
func goavroSingle(t testing.TB, s *Serde, rec record, v any) []byte {
	t.Helper()
	b, err := s.current[rec.name].SingleFromNative(nil, rec.native(v))
	if err != nil {
		t.Fatalf("goavro encode %s: %v", rec.name, err)
	}
	return b
}

// goavroDecode decodes an SOE record of the current schema the way the Serde did before
// (goavro, then native.go's mapping).
func goavroDecode(s *Serde, rec record, b []byte) (any, error) {
	m, err := native(s.byFP[s.Fingerprint(rec.name)], rec.name, b[10:])
	if err != nil {
		return nil, err
	}
	return rec.from(m), nil
}

func TestFastEncodeMatchesGoavro(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	for _, rec := range records {
		t.Run(rec.name, func(t *testing.T) {
			t.Parallel()
			for _, multi := range []bool{false, true} {
				g := newGen(uint64(len(rec.name)) + 7)
				g.multi = multi
				for i := range 400 {
					v := rec.gen(g)
					got, err := rec.encode(s, v)
					if err != nil {
						t.Fatal(err)
					}
					want := goavroSingle(t, s, rec, v)
					if !multi {
						if !bytes.Equal(got, want) {
							t.Fatalf("value %d: fast encoding differs from goavro\n got % x\nwant % x\nvalue %#v", i, got, want, v)
						}
						continue
					}
					// goavro writes maps in Go's random order: compare lengths and the decoded natives
					if len(got) != len(want) || !bytes.Equal(got[:10], want[:10]) {
						t.Fatalf("value %d: length or header differs: %d vs %d", i, len(got), len(want))
					}
					gn, _, err1 := s.current[rec.name].NativeFromBinary(got[10:])
					wn, _, err2 := s.current[rec.name].NativeFromBinary(want[10:])
					if err1 != nil || err2 != nil || !reflect.DeepEqual(gn, wn) {
						t.Fatalf("value %d: decoded natives differ (%v, %v)", i, err1, err2)
					}
				}
			}
		})
	}
}

// TestFastEncodeEdges pins byte-for-byte equality for floats that DeepEqual cannot compare
// (NaN, -0) and for values at the limits.
func TestFastEncodeEdges(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	nan := math.Float64frombits(0x7ff8000000000001)
	for _, f := range []float64{nan, math.NaN(), math.Copysign(0, -1), math.Inf(-1), math.MaxFloat64, -math.SmallestNonzeroFloat64} {
		e := sampleEnrichment()
		e.Exposure.CVEs[0].CVSS = f
		v := sampleVerdict()
		v.Reasons[0].Weight, v.Sightings.BlockedShare = f, f
		fb := sampleFeedback()
		fb.NewScore = f
		for _, c := range []struct {
			rec record
			v   any
		}{{recordByName(t, SchemaEnrichment), e}, {recordByName(t, SchemaVerdict), v}, {recordByName(t, SchemaFeedback), fb}} {
			got, err := c.rec.encode(s, c.v)
			if err != nil {
				t.Fatal(err)
			}
			if want := goavroSingle(t, s, c.rec, c.v); !bytes.Equal(got, want) {
				t.Fatalf("%s with float %v: got % x want % x", c.rec.name, f, got, want)
			}
		}
	}
}

func TestFastDecodeMatchesGoavro(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	for _, rec := range records {
		t.Run(rec.name, func(t *testing.T) {
			t.Parallel()
			g := newGen(uint64(len(rec.name)) + 99)
			g.multi = true
			for i := range 400 {
				v := rec.gen(g)
				for _, b := range [][]byte{goavroSingle(t, s, rec, v), mustEncode(t, s, rec, v)} {
					got, err := rec.decode(s, b)
					if err != nil {
						t.Fatalf("value %d: fast decode: %v", i, err)
					}
					want, err := goavroDecode(s, rec, b)
					if err != nil {
						t.Fatalf("value %d: goavro decode: %v", i, err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("value %d: fast decode differs\n got %#v\nwant %#v", i, got, want)
					}
				}
			}
		})
	}
}

func mustEncode(t testing.TB, s *Serde, rec record, v any) []byte {
	t.Helper()
	b, err := rec.encode(s, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFastPathSelection: records of the current schemas take the direct decoder, older
// writers goavro.
func TestFastPathSelection(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	for _, rec := range records {
		if ws := s.byFP[s.Fingerprint(rec.name)]; !ws.fast || ws.name != rec.name {
			t.Errorf("%s: current fingerprint not on the fast path: %+v", rec.name, ws.name)
		}
	}
	for fp, ws := range s.byFP {
		if ws.fast != (s.Fingerprint(ws.name) == fp) {
			t.Errorf("%s %016x: fast=%v", ws.name, fp, ws.fast)
		}
	}
}

// avroWriter is an independent, schema-driven Avro writer of goavro natives that splits
// arrays and maps into random blocks, some with negative counts and byte sizes, as other
// writers (Java's blocking encoder) do.
type avroWriter struct {
	r     *rand.Rand
	named map[string]any
}

func (w *avroWriter) write(b []byte, schema, datum any) []byte {
	switch sc := schema.(type) {
	case string:
		switch sc {
		case "null":
			return b
		case "boolean":
			return appendBool(b, datum.(bool))
		case "int":
			return appendInt(b, datum.(int32))
		case "long":
			if t, ok := datum.(time.Time); ok {
				return appendLong(b, t.Unix()*1e3+int64(t.Nanosecond()/1e6))
			}
			return appendLong(b, datum.(int64))
		case "double":
			return appendDouble(b, datum.(float64))
		case "string":
			return appendString(b, datum.(string))
		case "bytes":
			return appendBytes(b, datum.([]byte))
		}
		return w.write(b, w.named[sc], datum)
	case []any:
		if datum == nil {
			return appendLong(b, int64(slicesIndex(sc, "null")))
		}
		for k, v := range datum.(map[string]any) {
			for i, branch := range sc {
				if branchName(branch) == k[strings.LastIndex(k, ".")+1:] {
					return w.write(appendLong(b, int64(i)), branch, v)
				}
			}
			panic("no union branch " + k)
		}
	case map[string]any:
		switch sc["type"] {
		case "record":
			w.named[sc["name"].(string)] = sc
			m := datum.(map[string]any)
			for _, f := range sc["fields"].([]any) {
				fm := f.(map[string]any)
				b = w.write(b, fm["type"], m[fm["name"].(string)])
			}
			return b
		case "array":
			items := datum.([]any)
			return w.blocks(b, len(items), func(b []byte, i int) []byte { return w.write(b, sc["items"], items[i]) })
		case "map":
			m := datum.(map[string]any)
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			return w.blocks(b, len(keys), func(b []byte, i int) []byte {
				return w.write(appendString(b, keys[i]), sc["values"], m[keys[i]])
			})
		default:
			return w.write(b, sc["type"], datum)
		}
	}
	panic(fmt.Sprintf("unsupported schema %v", schema))
}

// blocks writes n items in random blocks, then the 0 end marker.
func (w *avroWriter) blocks(b []byte, n int, item func([]byte, int) []byte) []byte {
	for i := 0; i < n; {
		k := 1 + w.r.IntN(n-i)
		var body []byte
		for j := i; j < i+k; j++ {
			body = item(body, j)
		}
		if w.r.IntN(2) == 0 {
			b = appendLong(b, int64(k))
		} else {
			b = appendLong(appendLong(b, -int64(k)), int64(len(body)))
		}
		b = append(b, body...)
		i += k
	}
	return append(b, 0)
}

func branchName(schema any) string {
	if s, ok := schema.(string); ok {
		return s
	}
	return schema.(map[string]any)["name"].(string)
}

func slicesIndex(s []any, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestFastDecodeMultiBlock(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	for _, rec := range records {
		t.Run(rec.name, func(t *testing.T) {
			t.Parallel()
			text, _ := s.Schema(rec.name)
			var schema any
			if err := json.Unmarshal([]byte(text), &schema); err != nil {
				t.Fatal(err)
			}
			g := newGen(uint64(len(rec.name)) + 1234)
			g.multi = true
			w := &avroWriter{r: g.r, named: map[string]any{}}
			blocked := 0
			for i := range 300 {
				v := rec.gen(g)
				ref := goavroSingle(t, s, rec, v)
				nat, _, err := s.current[rec.name].NativeFromBinary(ref[10:])
				if err != nil {
					t.Fatal(err)
				}
				b := w.write(append([]byte{}, ref[:10]...), schema, nat)
				if !bytes.Equal(b, ref) {
					blocked++
				}
				got, err := rec.decode(s, b)
				if err != nil {
					t.Fatalf("value %d: fast decode of blocked encoding: %v\n% x", i, err, b)
				}
				want, err := goavroDecode(s, rec, b)
				if err != nil {
					t.Fatalf("value %d: goavro decode of blocked encoding: %v", i, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("value %d: fast decode differs\n got %#v\nwant %#v", i, got, want)
				}
			}
			if hasBlocks := rec.name != SchemaObservation && rec.name != SchemaFeedback; hasBlocks && blocked < 50 {
				t.Fatalf("only %d of 300 encodings used other blocking than goavro's", blocked)
			}
		})
	}
}

// checkDecode runs the direct decoder on the Avro body of a current-schema rec record and
// compares it with goavro + native.go: both fail, or both succeed with the same value. A failure
// of the direct decoder is a *DecodeError wrapping ErrCorrupt.
func checkDecode(t testing.TB, s *Serde, rec record, body []byte) {
	framed := binary.LittleEndian.AppendUint64([]byte{0xC3, 0x01}, s.Fingerprint(rec.name))
	framed = append(framed, body...)
	got, err := rec.decode(s, framed)
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error is not a *DecodeError wrapping ErrCorrupt: %T %v", err, err)
		}
	}
	want, refErr := goavroDecode(s, rec, framed)
	if (err == nil) != (refErr == nil) {
		t.Fatalf("direct decoder and goavro disagree on % x:\ndirect: %v\ngoavro: %v", body, err, refErr)
	}
	if err == nil && !sameValue(reflect.ValueOf(got), reflect.ValueOf(want)) {
		t.Fatalf("direct decoder and goavro decode % x differently\n got %#v\nwant %#v", body, got, want)
	}
}

// limitGoavroBlocks keeps goavro from allocating for a huge corrupt block count (it allocates
// before it reads the items); the direct decoder bounds counts by the remaining input instead.
// Only call it from tests that are not parallel.
func limitGoavroBlocks(t testing.TB) {
	old := goavro.MaxBlockCount
	goavro.MaxBlockCount = 1 << 16
	t.Cleanup(func() { goavro.MaxBlockCount = old })
}

// TestFastDecodeCorrupt mutates valid encodings (flip, truncate, insert, delete, overwrite with
// varints) and checks the direct decoder against goavro on every result. Not parallel: see
// limitGoavroBlocks.
func TestFastDecodeCorrupt(t *testing.T) {
	limitGoavroBlocks(t)
	s := newSerde(t)
	for _, rec := range records {
		g := newGen(uint64(len(rec.name)) + 555)
		g.multi = true
		for range 1500 {
			body := mustEncode(t, s, rec, rec.gen(g))[10:]
			b := append([]byte{}, body...)
			for range 1 + g.r.IntN(3) {
				b = mutate(g.r, b)
			}
			checkDecode(t, s, rec, b)
		}
	}
}

func mutate(r *rand.Rand, b []byte) []byte {
	if len(b) == 0 {
		return append(b, byte(r.Uint32()))
	}
	i := r.IntN(len(b))
	switch r.IntN(6) {
	case 0:
		b[i] ^= 1 << r.IntN(8)
	case 1:
		return b[:i]
	case 2:
		return append(b[:i], append([]byte{byte(r.Uint32())}, b[i:]...)...)
	case 3:
		return append(b[:i], b[i+1:]...)
	case 4: // a random, possibly huge or negative, varint
		v := appendLong(nil, int64(r.Uint64())>>r.IntN(64))
		return append(b[:i], append(v, b[i:]...)...)
	default:
		b[i] = byte(r.Uint32())
	}
	return b
}

// sameValue is reflect.DeepEqual that also holds NaN equal to a NaN of the same bits.
func sameValue(a, b reflect.Value) bool {
	if a.Kind() != b.Kind() || a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float() || math.Float64bits(a.Float()) == math.Float64bits(b.Float())
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		if a.Type() == reflect.TypeFor[*time.Location]() {
			return a.Pointer() == b.Pointer()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !sameValue(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	}
	panic("sameValue: unsupported kind " + a.Kind().String())
}

func fuzzDecode(f *testing.F, name string) {
	limitGoavroBlocks(f)
	s := newSerde(f)
	rec := recordByName(f, name)
	g := newGen(uint64(len(name)))
	g.multi = true
	for range 8 {
		body := mustEncode(f, s, rec, rec.gen(g))[10:]
		f.Add(body)
		f.Add(body[:len(body)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecode(t, s, rec, body)
	})
}

func FuzzDecodeObservation(f *testing.F) { fuzzDecode(f, SchemaObservation) }
func FuzzDecodeEnrichment(f *testing.F)  { fuzzDecode(f, SchemaEnrichment) }
func FuzzDecodeVerdict(f *testing.F)     { fuzzDecode(f, SchemaVerdict) }
func FuzzDecodeFeedback(f *testing.F)    { fuzzDecode(f, SchemaFeedback) }
func FuzzDecodeDeadLetter(f *testing.F)  { fuzzDecode(f, SchemaDeadLetter) }

// TestEncodeOwnsItsBytes: the scratch buffers are pooled, the returned slices are not.
func TestEncodeOwnsItsBytes(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	o := sampleObservation()
	first, err := s.EncodeObservation(&o)
	if err != nil {
		t.Fatal(err)
	}
	keep := append([]byte{}, first...)
	g := newGen(3)
	for range 50 {
		v := g.enrichment()
		if _, err := s.EncodeEnrichment(&v); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(first, keep) {
		t.Fatal("an earlier result changed after later encodes")
	}
	if cap(first) != len(first) {
		t.Fatalf("result has spare capacity %d > %d", cap(first), len(first))
	}
}

// TestConcurrentCodec encodes and decodes from several goroutines (run with -race).
func TestConcurrentCodec(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	errs := make(chan error, 4)
	for w := range 4 {
		go func() {
			g := newGen(uint64(w) + 1000)
			for range 200 {
				rec := records[g.r.IntN(len(records))]
				v := rec.gen(g)
				b, err := rec.encode(s, v)
				if err != nil {
					errs <- err
					return
				}
				got, err := rec.decode(s, b)
				if err != nil {
					errs <- err
					return
				}
				want, err := goavroDecode(s, rec, b)
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("%s: decode differs", rec.name)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
