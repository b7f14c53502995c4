package extract

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/services/ingest/internal/parse"
)

var update = flag.Bool("update", false, "rewrite the text-format golden files")

const textSamples = "../../testdata/text"

// goldenObs is what a golden file records of one observation.
type goldenObs struct {
	Key       string `json:"key"`
	Type      string `json:"type"`
	Field     string `json:"field"`
	Direction string `json:"direction"`
	Action    string `json:"action"`
	Asset     string `json:"asset,omitempty"`
	AssetHost string `json:"asset_host,omitempty"`
}

// goldenRecord is one line of a golden file: one sample record.
type goldenRecord struct {
	Line    int            `json:"line"`
	Kind    string         `json:"kind,omitempty"`
	Error   string         `json:"error,omitempty"`
	Obs     []goldenObs    `json:"obs"`
	Dropped map[string]int `json:"dropped,omitempty"`
}

func textRegistry(t testing.TB) *parse.Registry {
	t.Helper()
	r, err := parse.NewRegistry(parse.NewCEF(), parse.NewCiscoASA(), parse.NewPANOS(), parse.NewFortiGate())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sampleFiles returns the sample files of every text format, keyed by format (folder) name.
func sampleFiles(t testing.TB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	dirs, err := os.ReadDir(textSamples)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(textSamples, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if !strings.HasSuffix(f.Name(), ".golden.jsonl") {
				out[d.Name()] = append(out[d.Name()], filepath.Join(textSamples, d.Name(), f.Name()))
			}
		}
	}
	if len(out) != 4 {
		t.Fatalf("found sample folders %v, want cef, cisco_asa, fortigate, panos", out)
	}
	return out
}

// sampleLines returns the non-empty lines of a file with their 1-based line numbers.
func sampleLines(t testing.TB, path string) ([]int, [][]byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	var lines [][]byte
	for i, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			nums = append(nums, i+1)
			lines = append(lines, l)
		}
	}
	return nums, lines
}

// TestSampleParseRate checks that at least 99% of the records of every sample file parse with
// the format of its folder, and that auto-detection picks that format for every record.
func TestSampleParseRate(t *testing.T) {
	t.Parallel()
	reg := textRegistry(t)
	for format, files := range sampleFiles(t) {
		for _, path := range files {
			t.Run(filepath.Base(path), func(t *testing.T) {
				t.Parallel()
				nums, lines := sampleLines(t, path)
				ok := 0
				for i, l := range lines {
					if p, err := reg.Detect(l); err != nil || p.Name() != format {
						t.Errorf("line %d: detected %v (%v), want %s", nums[i], p, err, format)
					}
					if _, _, err := reg.Parse(format, l, 1<<20); err == nil {
						ok++
					} else {
						t.Logf("line %d: %v", nums[i], err)
					}
				}
				if len(lines) == 0 || ok*100 < len(lines)*99 {
					t.Errorf("%d of %d records parsed, want >= 99%%", ok, len(lines))
				}
			})
		}
	}
}

// TestSampleGolden runs every sample record through the registry and the extractor and
// compares what is observed with <file>.golden.jsonl.
func TestSampleGolden(t *testing.T) {
	t.Parallel()
	reg := textRegistry(t)
	x := New(Config{})
	ingest := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for format, files := range sampleFiles(t) {
		for _, path := range files {
			t.Run(filepath.Base(path), func(t *testing.T) {
				t.Parallel()
				nums, lines := sampleLines(t, path)
				var got bytes.Buffer
				for i, l := range lines {
					rec := goldenRecord{Line: nums[i], Obs: []goldenObs{}}
					ev, _, err := reg.Parse(format, l, 1<<20)
					if err != nil {
						var pe *parse.Error
						if !errors.As(err, &pe) {
							t.Fatalf("line %d: error %v is not a *parse.Error", nums[i], err)
						}
						rec.Error = pe.Reason
					} else {
						rec.Kind = ev.Kind
						obs, dropped := x.Extract(ev, Meta{Topic: "raw", Format: format, IngestTime: ingest})
						rec.Dropped = dropped
						for _, o := range obs {
							rec.Obs = append(rec.Obs, goldenObs{
								Key: o.Indicator.Key(), Type: o.Indicator.Type, Field: o.Field,
								Direction: o.Sighting.Direction, Action: o.Sighting.Action,
								Asset: o.Sighting.AssetIP, AssetHost: o.Sighting.AssetHost,
							})
						}
					}
					b, err := json.Marshal(rec)
					if err != nil {
						t.Fatal(err)
					}
					got.Write(b)
					got.WriteByte('\n')
				}
				golden := path + ".golden.jsonl"
				if *update {
					if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(got.Bytes(), want) {
					gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
					for i := range max(len(gl), len(wl)) {
						var g, w string
						if i < len(gl) {
							g = gl[i]
						}
						if i < len(wl) {
							w = wl[i]
						}
						if g != w {
							t.Fatalf("%s differs at record %d:\n got: %s\nwant: %s", golden, i+1, g, w)
						}
					}
				}
			})
		}
	}
}
