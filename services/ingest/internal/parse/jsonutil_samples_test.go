package parse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// updateJSONGolden rewrites the golden files of the JSON sample tests. It is not called
// "-update" so it cannot clash with a flag of another test file in this package.
var updateJSONGolden = flag.Bool("update-json", false, "rewrite testdata/json golden files")

const jsonSampleRoot = "../../testdata/json"

// jsonParsers lists the JSON parsers with the sample folder each one reads.
func jsonParsers() map[string]Parser {
	return map[string]Parser{
		"suricata_eve":   NewSuricataEVE(),
		"zeek":           NewZeek(),
		"windows_sysmon": NewSysmon(),
		"crowdstrike":    NewCrowdStrike(),
		"ecs":            NewECS(),
		"ocsf":           NewOCSF(),
		"ms_defender":    NewDefender(),
		"sentinelone":    NewSentinelOne(),
	}
}

// readSampleRecords splits a sample file into records. Files whose first line is a whole
// JSON object are one record per non-empty line (kept byte for byte, broken lines
// included); other files are read as a stream of JSON values, where an array stands for its
// elements and an {"expected": [...]} test-fixture wrapper for the documents it holds.
func readSampleRecords(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	first, _, _ := bytes.Cut(bytes.TrimLeft(data, " \t\r\n"), []byte("\n"))
	first = bytes.TrimSpace(first)
	var recs [][]byte
	if len(first) > 1 && first[0] == '{' && first[len(first)-1] == '}' {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) > 0 {
				recs = append(recs, append([]byte(nil), line...))
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("scan %s: %v", path, err)
		}
		return recs
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		recs = append(recs, unwrapSample(t, v)...)
	}
	return recs
}

func unwrapSample(t testing.TB, v json.RawMessage) [][]byte {
	t.Helper()
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(v, &elems); err != nil {
			t.Fatalf("split array: %v", err)
		}
		var out [][]byte
		for _, e := range elems {
			out = append(out, unwrapSample(t, e)...)
		}
		return out
	}
	var wrapper map[string]json.RawMessage
	if err := json.Unmarshal(v, &wrapper); err == nil && len(wrapper) == 1 {
		if inner, ok := wrapper["expected"]; ok {
			return unwrapSample(t, inner)
		}
	}
	return [][]byte{v}
}

// goldenEvent is the reviewed, stable JSON form of a parse result.
type goldenEvent struct {
	Error       string     `json:"error,omitempty"`
	Kind        string     `json:"kind,omitempty"`
	Vendor      string     `json:"vendor,omitempty"`
	Product     string     `json:"product,omitempty"`
	Time        string     `json:"time,omitempty"`
	Src         string     `json:"src,omitempty"`
	Dst         string     `json:"dst,omitempty"`
	Protocol    string     `json:"proto,omitempty"`
	Action      string     `json:"action,omitempty"`
	Severity    int        `json:"severity,omitempty"`
	Rule        string     `json:"rule,omitempty"`
	User        string     `json:"user,omitempty"`
	SrcHost     string     `json:"src_host,omitempty"`
	DstHost     string     `json:"dst_host,omitempty"`
	Observables [][]string `json:"obs,omitempty"`
}

func endpoint(ip string, port int) string {
	if port == 0 {
		return ip
	}
	return ip + " " + itoa(port)
}

func goldenLine(t testing.TB, ev Event, err error) []byte {
	t.Helper()
	var g goldenEvent
	if err != nil {
		g.Error = err.Error()
	} else {
		g = goldenEvent{
			Kind: ev.Kind, Vendor: ev.Vendor, Product: ev.Product,
			Src: endpoint(ev.SrcIP, ev.SrcPort), Dst: endpoint(ev.DstIP, ev.DstPort),
			Protocol: ev.Protocol, Action: ev.Action, Severity: ev.Severity, Rule: ev.Rule,
			User: ev.User, SrcHost: ev.SrcHost, DstHost: ev.DstHost,
		}
		if !ev.Time.IsZero() {
			g.Time = ev.Time.UTC().Format(time.RFC3339Nano)
		}
		for _, o := range ev.Observables {
			g.Observables = append(g.Observables, []string{o.Kind, o.Value, o.Field})
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(g); err != nil {
		t.Fatalf("encode golden: %v", err)
	}
	return buf.Bytes()
}

func sampleFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(jsonSampleRoot, dir))
	if err != nil {
		t.Fatalf("read dir: %v", err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".golden.jsonl") {
			continue
		}
		files = append(files, filepath.Join(jsonSampleRoot, dir, e.Name()))
	}
	sort.Strings(files)
	return files
}

// sampleOutcome is how a sample record parsed.
type sampleOutcome int

const (
	sampleParsed      sampleOutcome = iota // an Event
	sampleUnsupported                      // a *Error with ReasonUnsupported
	sampleMalformed                        // any other error
)

// parseSample parses record i of a sample file with parsers[dir] and checks detection: that parser's Detect
// must accept what it parses, and no other parser's Detect may accept the record.
func parseSample(t *testing.T, parsers map[string]Parser, dir string, i int, rec []byte) (Event, error, sampleOutcome) {
	t.Helper()
	p := parsers[dir]
	ev, err := p.Parse(rec)
	out := sampleMalformed
	var perr *Error
	switch {
	case err == nil:
		out = sampleParsed
		if !p.Detect(rec) {
			t.Errorf("record %d: %s.Detect = false for a record it parses", i+1, p.Name())
		}
	case errors.As(err, &perr) && perr.Reason == ReasonUnsupported:
		out = sampleUnsupported
	}
	for name, q := range parsers {
		if name != dir && q.Detect(rec) {
			t.Errorf("record %d: %s.Detect also accepts a %s record", i+1, q.Name(), dir)
		}
	}
	return ev, err, out
}

// TestJSONSamples parses every copied sample file: at least 99 % of the records of each file
// must give an Event or an unsupported *Error, the parser's Detect must accept the records it
// reads while no other JSON parser's Detect accepts any record of the file, and the results
// must equal the reviewed golden file.
func TestJSONSamples(t *testing.T) {
	parsers := jsonParsers()
	dirs := make([]string, 0, len(parsers))
	for d := range parsers {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		files := sampleFiles(t, dir)
		if len(files) == 0 {
			t.Errorf("%s: no sample files", dir)
		}
		for _, file := range files {
			t.Run(dir+"/"+filepath.Base(file), func(t *testing.T) {
				recs := readSampleRecords(t, file)
				if len(recs) == 0 {
					t.Fatal("no records")
				}
				var got bytes.Buffer
				var ok, unsup, bad int
				for i, rec := range recs {
					ev, err, out := parseSample(t, parsers, dir, i, rec)
					switch out {
					case sampleParsed:
						ok++
					case sampleUnsupported:
						unsup++
					default:
						bad++
						t.Logf("record %d: %v", i+1, err)
					}
					got.Write(goldenLine(t, ev, err))
				}
				rate := float64(ok+unsup) / float64(len(recs))
				t.Logf("%s: %d records, %d events, %d unsupported, %d malformed, parse rate %.1f%%",
					filepath.Base(file), len(recs), ok, unsup, bad, 100*rate)
				if rate < 0.99 {
					t.Errorf("parse rate %.3f < 0.99 (%d malformed of %d)", rate, bad, len(recs))
				}
				golden := file + ".golden.jsonl"
				if *updateJSONGolden {
					if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
						t.Fatalf("write golden: %v", err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("read golden (run with -update-json to create): %v", err)
				}
				if !bytes.Equal(got.Bytes(), want) {
					gl := strings.Split(got.String(), "\n")
					wl := strings.Split(string(want), "\n")
					for i := 0; i < len(gl) || i < len(wl); i++ {
						var g, w string
						if i < len(gl) {
							g = gl[i]
						}
						if i < len(wl) {
							w = wl[i]
						}
						if g != w {
							t.Fatalf("golden mismatch at record %d:\n got: %s\nwant: %s", i+1, g, w)
						}
					}
				}
			})
		}
	}
}
