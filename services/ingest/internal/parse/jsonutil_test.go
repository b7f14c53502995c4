package parse

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// parseCase is one hand-written record and the golden line its parse must produce.
type parseCase struct {
	name string
	raw  string
	want string // goldenLine form, without the trailing newline
}

func runParseCases(t *testing.T, p Parser, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := p.Parse([]byte(tc.raw))
			got := strings.TrimSpace(string(goldenLine(t, ev, err)))
			if got != tc.want {
				t.Errorf("Parse:\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

// detectCase says whether a parser's Detect must accept a record.
type detectCase struct {
	raw  string
	want bool
}

func runDetectCases(t *testing.T, p Parser, cases []detectCase) {
	t.Helper()
	for _, tc := range cases {
		if got := p.Detect([]byte(tc.raw)); got != tc.want {
			t.Errorf("%s.Detect(%.80s) = %v, want %v", p.Name(), tc.raw, got, tc.want)
		}
	}
}

// TestJSONParsersRejectBadInput feeds every JSON parser broken input: each must answer with
// a *Error of the expected reason carrying its own format name.
func TestJSONParsersRejectBadInput(t *testing.T) {
	cases := []struct {
		name   string
		raw    string
		reason string
	}{
		{"empty", "", ReasonMalformed},
		{"blank", "  \n", ReasonMalformed},
		{"truncated", `{"event_type":"alert","src_ip":"10.0.0.1","ts":1.5,"EventID":3,"class_uid":4001`, ReasonMalformed},
		{"truncated string", `{"a":"abc`, ReasonMalformed},
		{"array", `[{"a":1}]`, ReasonMalformed},
		{"scalar", `42`, ReasonMalformed},
		{"trailing data", `{"a":1} {"b":2}`, ReasonMalformed},
		{"missing colon", `{"a" 1}`, ReasonMalformed},
		{"trailing comma", `{"a":1,}`, ReasonMalformed},
		{"bad literal", `{"a":tru}`, ReasonMalformed},
		{"bad number", `{"a":01}`, ReasonMalformed},
		{"bad escape", `{"a":"\x"}`, ReasonMalformed},
		{"control char", "{\"a\":\"x\ty\"}", ReasonMalformed},
		{"deep nesting", strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100), ReasonMalformed},
		{"invalid utf8", "{\"a\":\"\xff\xfe\"}", ReasonInvalidUTF8},
		{"unknown object", `{"hello":"world"}`, ReasonUnsupported},
	}
	for _, p := range jsonParsers() {
		for _, tc := range cases {
			t.Run(p.Name()+"/"+tc.name, func(t *testing.T) {
				_, err := p.Parse([]byte(tc.raw))
				var perr *Error
				if !errors.As(err, &perr) {
					t.Fatalf("Parse error = %v, want *Error", err)
				}
				if perr.Reason != tc.reason || perr.Format != p.Name() {
					t.Errorf("got %s/%s, want %s/%s (%v)", perr.Format, perr.Reason, p.Name(), tc.reason, err)
				}
			})
		}
	}
}

func TestWalkJSONPathsAndValues(t *testing.T) {
	raw := []byte(`{"a":{"b":"x\u00e9\ud83d\ude00","c":[1,{"d":true}],"e.f":null},"g":-1.5e3,"h\"k":"\/"}`)
	var got []string
	err := walkJSON(raw, func(path []byte, v jsonValue) bool {
		got = append(got, string(path)+"="+string(v.Kind)+":"+v.text())
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"a=o:", "a.b=s:xé😀", "a.c=a:", "a.c=n:1", "a.c=o:", "a.c.d=b:true", "a.c=e:", "a.e.f=z:", "a=e:",
		"g=n:-1.5e3", `h"k=s:/`,
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("walk:\n got %q\nwant %q", got, want)
	}
}

func TestWalkJSONSkipsUndescendedContainers(t *testing.T) {
	var got []string
	err := walkJSON([]byte(`{"skip":{"x":[1,2,{"y":3}]},"keep":1}`), func(path []byte, v jsonValue) bool {
		got = append(got, string(path))
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "skip,keep" {
		t.Errorf("visited %v, want [skip keep]", got)
	}
	if err := walkJSON([]byte(`{"skip":{"x":[1,2,}},"keep":1}`), func([]byte, jsonValue) bool { return false }); err == nil {
		t.Error("a broken skipped container must still fail the walk")
	}
}

func TestParseTimeText(t *testing.T) {
	cases := []struct {
		in   string
		want string // RFC 3339 UTC, "" for the zero time
	}{
		{"2018-07-05T15:01:09.820360-0400", "2018-07-05T19:01:09.82036Z"},
		{"2017-01-30T16:12:26.985026+01:00", "2017-01-30T15:12:26.985026Z"},
		{"2020-06-30T10:09:01.1569718Z", "2020-06-30T10:09:01.1569718Z"},
		{"2020-10-19 07:30:46.251", "2020-10-19T07:30:46.251Z"},
		{"2020-12-23 19:43:35.000 UTC", "2020-12-23T19:43:35Z"},
		{"2024-01-02T03:04:05+05", "2024-01-01T22:04:05Z"},
		{"1547188415.857497", "2019-01-11T06:33:35.857497Z"},
		{"1743508799999", "2025-04-01T11:59:59.999Z"},
		{"1755155954.441", "2025-08-14T07:19:14.441Z"},
		{"2024-13-02T03:04:05Z", ""},
		{"2024-01-02T03:04:05 PST", ""},
		{"yesterday", ""},
		{"2024-01-02", ""},
	}
	for _, tc := range cases {
		got := ""
		if tm := parseTimeText([]byte(tc.in)); !tm.IsZero() {
			got = tm.Format(time.RFC3339Nano)
		}
		if got != tc.want {
			t.Errorf("parseTimeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseEpochUnits(t *testing.T) {
	cases := []struct {
		in   string
		want int64 // Unix nanoseconds
	}{
		{"1", 1e9},
		{"1588205198.89971", 1588205198899710000},
		{"1686845212400", 1686845212400000000},
		{"1686845212400123", 1686845212400123000},
		{"1686845212400123456", 1686845212400123456},
	}
	for _, tc := range cases {
		tm, ok := parseEpoch([]byte(tc.in))
		if !ok || tm.UnixNano() != tc.want {
			t.Errorf("parseEpoch(%q) = %v %v, want %d", tc.in, tm.UnixNano(), ok, tc.want)
		}
	}
	for _, bad := range []string{"", "-1", "1e9", "12a", ".", "50000000000000", "50000000000000000"} {
		if _, ok := parseEpoch([]byte(bad)); ok {
			t.Errorf("parseEpoch(%q) accepted", bad)
		}
	}
}

func TestHasJSONKey(t *testing.T) {
	raw := []byte(`{"uid" : 1, "msg":"has \"ts\": inside", "x":"uid"}`)
	cases := []struct {
		key  string
		want bool
	}{
		{"uid", true}, {"msg", true}, {"ts", false}, {"x", true}, {"u", false}, {"id", false},
	}
	for _, tc := range cases {
		if got := hasJSONKey(raw, tc.key); got != tc.want {
			t.Errorf("hasJSONKey(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestObservablesHelpers(t *testing.T) {
	var o observables
	o.addHash("hash", strings.Repeat("0", 64), "zero")
	o.addHash("hash", "not-a-hash-but-long-enough-to-be-checked-xx", "junk")
	o.addHash("hash", "d41d8cd98f00b204e9800998ecf8427e", "a")
	o.addHash("hash", "d41d8cd98f00b204e9800998ecf8427e", "dup")
	o.addHashList("SHA1=A330EDE32DFA03AE6808EE7FB6916D8DEB8F5DDE,IMPHASH=C1E59519B5E5D84AF07AFA6F5A8625F1", "Hashes")
	o.addHost("192.0.2.1", "h")
	o.addHost("fe80::1%eth0", "h")
	o.addHost("Example.COM.", "h")
	o.addHost("-", "h")
	var b bytes.Buffer
	for _, x := range o {
		b.WriteString(x.Kind + ":" + x.Value + ":" + x.Field + " ")
	}
	want := "md5:d41d8cd98f00b204e9800998ecf8427e:a sha1:A330EDE32DFA03AE6808EE7FB6916D8DEB8F5DDE:Hashes.SHA1 " +
		"ip:192.0.2.1:h ip:fe80::1%eth0:h domain:Example.COM.:h "
	if b.String() != want {
		t.Errorf("observables:\n got %q\nwant %q", b.String(), want)
	}
}

// fuzzParser seeds f with the first records of each sample file of dir and checks that Parse
// never panics and answers with either an Event or a *Error of a known reason.
func fuzzParser(f *testing.F, p Parser, dir string) {
	for _, file := range sampleFiles(f, dir) {
		recs := readSampleRecords(f, file)
		for i := 0; i < len(recs) && i < 4; i++ {
			f.Add(recs[i])
		}
	}
	f.Add([]byte(`{"a":[{"b":"\ud800"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := p.Parse(raw)
		_ = p.Detect(raw)
		if err == nil {
			if ev.Kind == "" {
				t.Errorf("Event without Kind for %q", raw)
			}
			return
		}
		var perr *Error
		if !errors.As(err, &perr) {
			t.Fatalf("error %T is not *Error: %v", err, err)
		}
		switch perr.Reason {
		case ReasonMalformed, ReasonUnsupported, ReasonInvalidUTF8:
		default:
			t.Fatalf("unexpected reason %q", perr.Reason)
		}
		if perr.Format != p.Name() {
			t.Fatalf("error format %q, want %q", perr.Format, p.Name())
		}
	})
}

// benchParser parses the sample records of dir that keep accepts and reports records/s.
func benchParser(b *testing.B, p Parser, dir string, keep func([]byte) bool) {
	var recs [][]byte
	var size int
	for _, file := range sampleFiles(b, dir) {
		for _, r := range readSampleRecords(b, file) {
			if keep == nil || keep(r) {
				recs = append(recs, r)
				size += len(r)
			}
		}
	}
	if len(recs) == 0 {
		b.Fatal("no records")
	}
	b.SetBytes(int64(size / len(recs)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = p.Parse(recs[i%len(recs)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
