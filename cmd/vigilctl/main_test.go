package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/envconf"
)

// runCmd runs vigilctl in-process with env and args and returns stdout, stderr and the error.
func runCmd(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, envconf.FromMap(env), streams{in: strings.NewReader(""), out: &out, err: &errOut})
	return out.String(), errOut.String(), err
}

func TestLoadEnvAndFlags(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		args        []string
		wantBrokers string
		wantOps     string
		wantRedis   string
		wantDLQ     string
	}{
		{name: "defaults", wantBrokers: "127.0.0.1:19092",
			wantOps:   "ingest=http://127.0.0.1:9401 enrich=http://127.0.0.1:9402 correlate=http://127.0.0.1:9403 sink=http://127.0.0.1:9404",
			wantRedis: "127.0.0.1:6379", wantDLQ: "vigil.dlq"},
		{name: "env", env: map[string]string{"VIGIL_KAFKA_BROKERS": "k1:9092,k2:9092", "VIGIL_CTL_OPS": "http://h:9402/,x=https://y:1",
			"VIGIL_REDIS_ADDR": "r:6379", "VIGIL_TOPIC_DLQ": "dead"},
			wantBrokers: "k1:9092,k2:9092", wantOps: "enrich=http://h:9402 x=https://y:1", wantRedis: "r:6379", wantDLQ: "dead"},
		{name: "flags override env", env: map[string]string{"VIGIL_KAFKA_BROKERS": "k1:9092"},
			args:        []string{"--brokers", "a:1, b:2", "--ops", "http://10.0.0.1:8080", "--redis", "q:1", "--dlq-topic", "d2"},
			wantBrokers: "a:1,b:2", wantOps: "10.0.0.1:8080=http://10.0.0.1:8080", wantRedis: "q:1", wantDLQ: "d2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadEnv(envconf.FromMap(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			bindGlobal(fs, &cfg)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			var ops []string
			for _, o := range cfg.Ops {
				ops = append(ops, o.Name+"="+o.URL)
			}
			got := []string{strings.Join(cfg.Kafka.Brokers, ","), strings.Join(ops, " "), cfg.Redis.Addr, cfg.Kafka.DLQTopic}
			want := []string{tt.wantBrokers, tt.wantOps, tt.wantRedis, tt.wantDLQ}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("field %d = %q, want %q", i, got[i], want[i])
				}
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	tests := []struct {
		env     map[string]string
		wantErr string
	}{
		{map[string]string{"VIGIL_CTL_OPS": "ftp://x"}, "VIGIL_CTL_OPS"},
		{map[string]string{"VIGIL_CTL_TIMEOUT": "soon"}, "VIGIL_CTL_TIMEOUT"},
		{map[string]string{"VIGIL_CTL_TIMEOUT": "0s"}, "VIGIL_CTL_TIMEOUT"},
		{map[string]string{"VIGIL_KAFKA_SASL_MECHANISM": "PLAIN"}, "VIGIL_KAFKA_SASL_MECHANISM"},
		{map[string]string{"VIGIL_REDIS_DB": "one"}, "VIGIL_REDIS_DB"},
	}
	for _, tt := range tests {
		_, err := loadEnv(envconf.FromMap(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("env %v: err = %v, want it to name %s", tt.env, err, tt.wantErr)
		}
	}
}

func TestCommandLineErrors(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string // in stderr
	}{
		{nil, 2, "no command"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"--nope"}, 2, "flag provided but not defined"},
		{[]string{"dlq"}, 2, "dlq needs a subcommand"},
		{[]string{"dlq", "show"}, 2, "wrong number of arguments"},
		{[]string{"dlq", "show", "x"}, 2, "not PARTITION:OFFSET"},
		{[]string{"dlq", "list", "extra"}, 2, "wrong number of arguments"},
		{[]string{"dlq", "replay", "--max-attempts", "0"}, 2, "--max-attempts"},
		{[]string{"cache", "show", "not a domain!"}, 2, "indicator"},
		{[]string{"cache"}, 2, "cache needs a subcommand"},
		{[]string{"policy", "run"}, 2, "unknown policy subcommand"},
		{[]string{"kpi", "--range", "10s"}, 2, "--range"},
		{[]string{"kpi", "--prometheus", "localhost:9090"}, 2, "--prometheus"},
		{[]string{"--brokers", ""}, 2, "empty broker list"},
		{[]string{"status", "--help"}, 0, "Usage:\n  vigilctl status"},
		{[]string{"help", "dlq", "replay"}, 0, "--max-attempts int"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			_, errOut, err := runCmd(t, nil, tt.args...)
			code := exitCode(err, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d (err %v), want %d", code, err, tt.wantCode)
			}
			if all := errOut + stderr.String(); !strings.Contains(all, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", all, tt.wantErr)
			}
		})
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	out, _, err := runCmd(t, nil, "help")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"status", "dlq list", "dlq show", "dlq replay", "cache show", "cache purge", "kpi", "policy test", "parse", "--brokers", "--json"} {
		if !strings.Contains(out, c) {
			t.Errorf("help does not mention %q", c)
		}
	}
}

func TestParsePosition(t *testing.T) {
	tests := []struct {
		in      string
		p       int32
		o       int64
		wantErr bool
	}{
		{"3:17", 3, 17, false},
		{"0:0", 0, 0, false},
		{"3", 0, 0, true},
		{"-1:2", 0, 0, true},
		{"1:-2", 0, 0, true},
		{"a:b", 0, 0, true},
	}
	for _, tt := range tests {
		p, o, err := parsePosition(tt.in)
		if (err != nil) != tt.wantErr || p != tt.p || o != tt.o {
			t.Errorf("parsePosition(%q) = %d, %d, %v", tt.in, p, o, err)
		}
	}
}

func TestParseIndicatorArg(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"ipv4:203.0.113.7", "ipv4:203.0.113.7"},
		{"203.0.113.7", "ipv4:203.0.113.7"},
		{"::ffff:203.0.113.7", "ipv4:203.0.113.7"},
		{"2001:DB8::1", "ipv6:2001:db8::1"},
		{"Example.ORG.", "domain:example.org"},
		{"domain:example[.]org", "domain:example.org"},
		{"hxxps://Example.org:443/a", "url:https://example.org/a"},
		{"url:https://example.org/x?y=1", "url:https://example.org/x?y=1"},
		{"D41D8CD98F00B204E9800998ECF8427E", "md5:d41d8cd98f00b204e9800998ecf8427e"},
		{"sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		got, err := parseIndicatorArg(tt.in)
		if err != nil {
			t.Errorf("parseIndicatorArg(%q): %v", tt.in, err)
			continue
		}
		if got.Key() != tt.want {
			t.Errorf("parseIndicatorArg(%q) = %q, want %q", tt.in, got.Key(), tt.want)
		}
	}
	for _, bad := range []string{"ipv4:2001:db8::1", "md5:abc", "exa mple.org"} {
		if _, err := parseIndicatorArg(bad); err == nil {
			t.Errorf("parseIndicatorArg(%q) accepted", bad)
		}
	}
}

func TestGlobEscape(t *testing.T) {
	if got := globEscape(`url:https://a.b/x?q=[1]*`); got != `url:https://a.b/x\?q=\[1\]\*` {
		t.Errorf("globEscape = %q", got)
	}
}

func TestTruncateAndTable(t *testing.T) {
	if got := truncate("ab\ncd", 10); got != "ab cd" {
		t.Errorf("truncate = %q", got)
	}
	if got := truncate("héllo world", 5); got != "héll…" {
		t.Errorf("truncate = %q", got)
	}
	var b bytes.Buffer
	if err := writeTable(&b, []string{"A", "LONGER"}, [][]string{{"xxxx", "1"}, {"y", "22"}}); err != nil {
		t.Fatal(err)
	}
	want := "A     LONGER\nxxxx  1\ny     22\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestProgressBar(t *testing.T) {
	if got := bar(1, 4, 8); got != "[##......]" {
		t.Errorf("bar = %q", got)
	}
	var b bytes.Buffer
	p := newProgress(&b, true, "replay", 2)
	p.Add(1)
	p.Add(1)
	p.Done()
	if !strings.Contains(b.String(), "\rreplay [##############################] 2/2\n") {
		t.Errorf("tty progress = %q", b.String())
	}
	b.Reset()
	p = newProgress(&b, false, "replay", 3)
	p.Add(3)
	p.Done()
	if b.String() != "replay: 3/3\n" {
		t.Errorf("plain progress = %q", b.String())
	}
}

func TestQuantile(t *testing.T) {
	bs := []bucket{{1, 0}, {2, 50}, {4, 100}, {math.Inf(1), 100}}
	tests := []struct {
		q, want float64
	}{{0.5, 2}, {0.95, 3.8}, {0.25, 1.5}}
	for _, tt := range tests {
		if got := quantile(tt.q, bs); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := quantile(0.99, []bucket{{1, 1}, {math.Inf(1), 10}}); got != 1 {
		t.Errorf("quantile in +Inf bucket = %v, want highest finite bound 1", got)
	}
	if !math.IsNaN(quantile(0.5, []bucket{{math.Inf(1), 0}})) {
		t.Error("quantile without observations should be NaN")
	}
}

func TestPassThrough(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"args: $*\"\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, "correlate"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VIGIL_CTL_BIN_DIR": dir}
	out, _, err := runCmd(t, env, "policy", "test", "--policy", "a.yaml", "--only-changed", "e.jsonl")
	if got := exitCode(err, &bytes.Buffer{}); got != 3 {
		t.Errorf("exit code = %d (%v), want 3 from the binary", got, err)
	}
	if out != "args: policy-test --policy a.yaml --only-changed e.jsonl\n" {
		t.Errorf("stdout = %q", out)
	}

	t.Setenv("PATH", t.TempDir())
	_, _, err = runCmd(t, env, "parse", "x.log")
	if !errors.Is(err, ErrBinaryNotFound) || !strings.Contains(err.Error(), "ingest") || !strings.Contains(err.Error(), "make build") {
		t.Errorf("missing ingest: err = %v", err)
	}
}
