package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
	"github.com/vigilsec/vigil/services/ingest/internal/extract"
	"github.com/vigilsec/vigil/services/ingest/internal/pipeline"
)

// runParse is `ingest parse [--format F] [--internal-nets CIDRs] FILE…`: the same parsers and
// extraction as the service, on files of raw records (one per line), without Kafka.
// Observations go to stdout as JSON lines, rejected records to stderr, and a summary at the end.
func runParse(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("parse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "auto", "parser name or auto")
	nets := fs.String("internal-nets", "default", "internal networks, comma-separated CIDRs (default = RFC 1918 etc.)")
	lists := fs.String("warninglists", "all", "shipped warninglists to tag matches with (names, all, or none)")
	maxBytes := fs.Int("max-record-bytes", 1<<20, "records larger than this are rejected")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ingest parse [--format auto|NAME] [--internal-nets CIDR,…] FILE…")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no input files")
	}
	n, err := indicator.ParseNets(*nets)
	if err != nil {
		return fmt.Errorf("--internal-nets: %w", err)
	}
	var allow extract.Matcher
	if *lists != "none" {
		set, err := allowlist.Load(allowlist.Config{Warninglists: splitComma(*lists)})
		if err != nil {
			return fmt.Errorf("--warninglists: %w", err)
		}
		allow = allowlist.NewHolder(set)
	}
	reg, err := pipeline.DefaultRegistry()
	if err != nil {
		return err
	}
	serde, err := events.NewSerde()
	if err != nil {
		return err
	}
	acct := &countAccounting{m: map[string]int{}}
	h := pipeline.New(pipeline.Config{OutTopic: "stdout", DefaultFormat: *format, MaxRecordBytes: *maxBytes},
		reg, extract.New(extract.Config{Internal: n, Allow: allow}), serde, acct, nil)
	out := json.NewEncoder(stdout)
	errOut := json.NewEncoder(stderr)
	ctx := context.Background()
	records, observations := 0, 0
	for _, path := range fs.Args() {
		if docs, ok := jsonDocuments(path); ok {
			// pretty-printed JSON files (one or more objects, or an array of them)
			for i, raw := range docs {
				records++
				res, err := h.Handle(ctx, []*kgo.Record{{Topic: path, Offset: int64(i), Value: raw}})
				if err != nil {
					return err
				}
				if res[0].Err != nil {
					_ = errOut.Encode(map[string]any{"file": path, "record": i + 1, "error": res[0].Err.Error()})
					continue
				}
				for _, o := range res[0].Outputs {
					obs, err := serde.DecodeObservation(ctx, o.Value)
					if err != nil {
						return err
					}
					observations++
					_ = out.Encode(observationJSON(obs))
				}
			}
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64*1024), *maxBytes+1)
		line := int64(0)
		for sc.Scan() {
			line++
			raw := append([]byte(nil), sc.Bytes()...)
			if len(raw) == 0 {
				continue
			}
			records++
			res, err := h.Handle(ctx, []*kgo.Record{{Topic: path, Offset: line - 1, Value: raw}})
			if err != nil {
				f.Close()
				return err
			}
			if res[0].Err != nil {
				_ = errOut.Encode(map[string]any{"file": path, "line": line, "error": res[0].Err.Error()})
				continue
			}
			for _, o := range res[0].Outputs {
				obs, err := serde.DecodeObservation(ctx, o.Value)
				if err != nil {
					f.Close()
					return err
				}
				observations++
				_ = out.Encode(observationJSON(obs))
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
	keys := make([]string, 0, len(acct.m))
	for k := range acct.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	summary := map[string]any{"records": records, "observations": observations}
	for _, k := range keys {
		summary[k] = acct.m[k]
	}
	return errOut.Encode(map[string]any{"summary": summary})
}

type countAccounting struct{ m map[string]int }

func (c *countAccounting) Record(_ context.Context, outcome, reason string) {
	k := outcome
	if reason != "" {
		k += "." + reason
	}
	c.m[k]++
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func observationJSON(o events.Observation) map[string]any {
	m := map[string]any{
		"key": o.Indicator.Key(), "type": o.Indicator.Type, "value": o.Indicator.Value, "field": o.Field,
		"event_time": o.EventTime.Format(time.RFC3339Nano), "format": o.Producer.Format,
		"vendor": o.Producer.Vendor, "product": o.Producer.Product,
		"direction": o.Sighting.Direction, "action": o.Sighting.Action, "severity": o.Sighting.Severity,
		"asset_ip": o.Sighting.AssetIP, "asset_host": o.Sighting.AssetHost, "user": o.Sighting.User,
		"rule": o.Sighting.Rule, "src_port": o.Sighting.SrcPort, "dst_port": o.Sighting.DstPort,
		"protocol": o.Sighting.Protocol, "count": o.Sighting.Count, "source_offset": o.Producer.Offset,
	}
	if o.Allowlist != nil {
		m["allowlist"] = o.Allowlist.List
	}
	return m
}

// jsonDocuments reads a file that is a multi-line JSON document stream (or a JSON array of
// objects) as compact records. It returns false for line-oriented files.
func jsonDocuments(path string) ([][]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		return nil, false
	}
	first, _, _ := bytes.Cut(trimmed, []byte("\n"))
	if json.Valid(bytes.TrimSpace(first)) && trimmed[0] == '{' {
		return nil, false // JSON lines
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var out [][]byte
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return nil, false
		}
		if raw[0] == '[' {
			var items []json.RawMessage
			if json.Unmarshal(raw, &items) != nil {
				return nil, false
			}
			for _, it := range items {
				out = append(out, compact(it))
			}
			continue
		}
		out = append(out, compact(raw))
	}
	return out, true
}

func compact(raw []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return raw
	}
	return buf.Bytes()
}
