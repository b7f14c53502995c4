package parse

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// textSampleDir holds the text-format sample files (one folder per parser name).
const textSampleDir = "../../testdata/text"

// textSampleLines returns the non-empty lines of every sample file of a format.
func textSampleLines(tb testing.TB, format string) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(textSampleDir, format, "*"))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.jsonl") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(l) != "" {
				out = append(out, []byte(l))
			}
		}
	}
	if len(out) == 0 {
		tb.Fatalf("no sample lines for %s", format)
	}
	return out
}

// checkParseResult fails unless err is nil or a *Error of the parser's format with a known reason.
func checkParseResult(t *testing.T, format string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *Error", err, err)
	}
	if pe.Format != format || pe.Reason != ReasonMalformed && pe.Reason != ReasonUnsupported {
		t.Fatalf("error %+v: want format %s, reason malformed or unsupported", pe, format)
	}
}

// benchmarkParser parses the sample lines of a format in a loop and reports records/s.
func benchmarkParser(b *testing.B, p Parser) {
	lines := textSampleLines(b, p.Name())
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		_, _ = p.Parse(lines[n%len(lines)])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

func TestSyslogPrefix(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in       string
		wantTime time.Time
		wantHost string
	}{
		{"<14>Jan  5 12:51:34 PAN1.example.com ", time.Date(2024, 1, 5, 12, 51, 34, 0, time.UTC), "PAN1.example.com"},
		{"<166>Dec 31 23:59:59 fw1 ", time.Date(2023, 12, 31, 23, 59, 59, 0, time.UTC), "fw1"},
		{"<162>Aug 05 2016 01:02:25: ", time.Date(2016, 8, 5, 1, 2, 25, 0, time.UTC), ""},
		{"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - ", time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC), "mymachine.example.com"},
		{"2016-04-01T09:29:11.356-0400 ", time.Date(2016, 4, 1, 13, 29, 11, 356e6, time.UTC), ""},
		{"Mar 21 14:05:02 HHHPVATN1 ", time.Date(2024, 3, 21, 14, 5, 2, 0, time.UTC).AddDate(-1, 0, 0), "HHHPVATN1"},
		{"<14>", time.Time{}, ""},
		{"", time.Time{}, ""},
	}
	for _, tt := range tests {
		gotTime, gotHost := syslogPrefix([]byte(tt.in), now)
		if !gotTime.Equal(tt.wantTime) || gotHost != tt.wantHost {
			t.Errorf("syslogPrefix(%q) = %v, %q; want %v, %q", tt.in, gotTime, gotHost, tt.wantTime, tt.wantHost)
		}
	}
}

func TestTextFormatExclusive(t *testing.T) {
	t.Parallel()
	parsers := []Parser{NewCEF(), NewFortiGate(), NewPANOS(), NewCiscoASA()}
	for _, format := range []string{nameCEF, nameFortiGate, namePANOS, nameCiscoASA} {
		for _, l := range textSampleLines(t, format) {
			var accepted []string
			for _, p := range parsers {
				if p.Detect(l) {
					accepted = append(accepted, p.Name())
				}
			}
			if len(accepted) != 1 || accepted[0] != format {
				t.Errorf("%s sample %.60q accepted by %v, want only %s", format, l, accepted, format)
			}
		}
	}
	for _, l := range []string{`{"event_type":"alert","src_ip":"1.2.3.4"}`, "", "hello world", "CEF:x|y"} {
		for _, p := range parsers {
			if p.Detect([]byte(l)) {
				t.Errorf("%s accepts %q", p.Name(), l)
			}
		}
	}
}
