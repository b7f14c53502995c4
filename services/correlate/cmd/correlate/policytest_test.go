package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestPolicyTest(t *testing.T) {
	t.Parallel()
	const (
		strict = "../../testdata/policy.strict.yaml"
		input  = "../../testdata/dryrun.jsonl"
	)
	cases := []struct {
		name     string
		args     []string
		wantErr  string // substring; errUsage when "usage"
		wantOut  []string
		wantNone []string
	}{
		{name: "table", args: []string{"--policy", strict, input}, wantOut: []string{"ipv4:45.155.205.233", "ipv4:8.8.8.8", "3 records, 1 differ (A=2026.05.2-strict, B=2026.05.1)"}},
		{name: "only changed, flags after file", args: []string{"--policy", strict, "--warninglists", "public-dns-v4", input, "--only-changed"}, wantOut: []string{"ipv4:45.155.205.233"}, wantNone: []string{"ipv4:8.8.8.8"}},
		{name: "against itself", args: []string{"--policy", strict, "--warninglists", "public-dns-v4", "--against", strict, input}, wantOut: []string{"3 records, 0 differ"}},
		{name: "no lists", args: []string{"--policy", strict, "--warninglists", "none", input}, wantNone: []string{"public-dns-v4"}, wantOut: []string{"ipv4:8.8.8.8"}},
		{name: "missing policy flag", args: []string{input}, wantErr: "usage"},
		{name: "two inputs", args: []string{"--policy", strict, input, input}, wantErr: "usage"},
		{name: "bad policy", args: []string{"--warninglists", "public-dns-v4", "--policy", "../../testdata/policy.bad.yaml", input}, wantErr: "policy.bad.yaml:4: levels.1.action"},
		{name: "missing input", args: []string{"--warninglists", "public-dns-v4", "--policy", strict, "nope.jsonl"}, wantErr: "open input"},
		{name: "unknown list", args: []string{"--policy", strict, "--warninglists", "nope", input}, wantErr: "warninglist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			err := runPolicyTest(t.Context(), tc.args, strings.NewReader(""), &out, &errb)
			switch {
			case tc.wantErr == "usage":
				if !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want usage", err)
				}
				return
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.wantNone {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestPolicyTestJSON(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	in := strings.NewReader(`{"Observation":{"Indicator":{"Type":"ipv4","Value":"45.155.205.233"},"EventTime":"2026-05-01T10:00:00Z","Sighting":{"AssetIP":"10.2.0.17","Direction":"inbound","Action":"blocked","Severity":3,"Count":1}},"Exposure":{"Malicious":true,"InboundScore":4,"AbuseConfidence":-1}}` + "\n")
	err := runPolicyTest(t.Context(), []string{"--json", "--warninglists", "public-dns-v4", "--policy", "../../testdata/policy.strict.yaml", "-"}, in, &out, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var rep jsonReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if rep.Records != 1 || rep.Changed != 1 || len(rep.Rows) != 1 {
		t.Fatalf("report = %+v", rep)
	}
	r := rep.Rows[0]
	if r.A.Action != "block" || r.B.Action != "alert" || rep.PolicyA != "2026.05.2-strict" || len(r.A.Reasons) == 0 {
		t.Errorf("row = %+v", r)
	}
}
