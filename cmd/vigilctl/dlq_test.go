package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
)

// dlqCluster is a kfake cluster with a DLQ holding the given dead letters (in order, partition 0)
// plus one undecodable record.
func dlqCluster(t *testing.T, dls []events.DeadLetter) *kfake.Cluster {
	t.Helper()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "vigil.dlq", "raw.fw", "indicators.observed"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	serde, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(fake.ListenAddrs()...), kgo.DefaultProduceTopic("vigil.dlq"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, dl := range dls {
		v, err := serde.EncodeDeadLetter(&dl)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Partition: 0, Key: dl.Key, Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	junk := &kgo.Record{Partition: 1, Value: []byte("not avro"), Headers: []kgo.RecordHeader{
		{Key: stream.HeaderStage, Value: []byte("sink")}, {Key: stream.HeaderErrorClass, Value: []byte("threatq_4xx")},
		{Key: stream.HeaderSourceTopic, Value: []byte("indicators.verdicts")}, {Key: stream.HeaderAttempts, Value: []byte("1")},
	}}
	if err := cl.ProduceSync(t.Context(), junk).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return fake
}

var dlqNow = time.Now().UTC()

func sampleDLs(t *testing.T) []events.DeadLetter {
	serde, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	obs := events.Observation{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "203.0.113.7"}}
	obsVal, err := serde.EncodeObservation(&obs)
	if err != nil {
		t.Fatal(err)
	}
	return []events.DeadLetter{
		{Key: nil, Value: []byte(`{"src":"10.0.0.1"}` + "\n"), SourceTopic: "raw.fw", SourcePartition: 1, SourceOffset: 41,
			Stage: "ingest", ErrorClass: "unknown_format", Message: "no parser matched", Attempts: 1, Time: dlqNow.Add(-2 * time.Hour),
			Headers: []events.Header{{Key: "origin", Value: []byte("fw-1")}}},
		{Key: []byte("ipv4:203.0.113.7"), Value: obsVal, SourceTopic: "indicators.observed", SourcePartition: 0, SourceOffset: 7,
			Stage: "enrich", ErrorClass: "validation", Message: "bad indicator", Attempts: 2, Time: dlqNow.Add(-30 * time.Minute),
			Headers: []events.Header{{Key: stream.HeaderAttempts, Value: []byte("1")}, {Key: "traceparent", Value: []byte("00-abc-def-01")}}},
		{Key: []byte("ipv4:198.51.100.1"), Value: []byte{0xc3, 0x01, 0xff, 0x00}, SourceTopic: "indicators.observed", SourcePartition: 0, SourceOffset: 9,
			Stage: "enrich", ErrorClass: "validation", Message: "again", Attempts: 3, Time: dlqNow.Add(-10 * time.Minute)},
	}
}

func TestDLQList(t *testing.T) {
	fake := dlqCluster(t, sampleDLs(t))
	b := []string{"--brokers", strings.Join(fake.ListenAddrs(), ",")}
	tests := []struct {
		name    string
		args    []string
		wantIDs []string
	}{
		{"all", nil, []string{"0:0", "0:1", "0:2", "1:0"}}, // the undecodable record has its produce time: newest
		{"stage", []string{"--stage", "ENRICH"}, []string{"0:1", "0:2"}},
		{"reason", []string{"--reason", "unknown_format"}, []string{"0:0"}},
		{"source", []string{"--source", "indicators.observed", "--since", "20m"}, []string{"0:2"}},
		{"limit keeps newest", []string{"--stage", "enrich", "--limit", "1"}, []string{"0:2"}},
		{"headers of undecodable", []string{"--reason", "threatq_4xx"}, []string{"1:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCmd(t, nil, append(append(b, "dlq", "list", "--json"), tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var got []dlqEntry
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range got {
				ids = append(ids, e.ID())
			}
			if strings.Join(ids, " ") != strings.Join(tt.wantIDs, " ") {
				t.Errorf("ids = %v, want %v", ids, tt.wantIDs)
			}
		})
	}

	out, _, err := runCmd(t, nil, append(b, "dlq", "list", "--stage", "enrich")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ID   TIME", "0:1  ", "enrich  validation  indicators.observed[0]@7  2         bad indicator"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := runCmd(t, nil, append(b, "--dlq-topic", "nope", "dlq", "list")...); err == nil || !strings.Contains(err.Error(), "topic nope does not exist") {
		t.Errorf("missing topic: err = %v", err)
	}
	out, _, err = runCmd(t, nil, append(b, "dlq", "list", "--stage", "nobody")...)
	if err != nil || out != "no dead letters match\n" {
		t.Errorf("empty list: %q, %v", out, err)
	}
}

func TestDLQShow(t *testing.T) {
	fake := dlqCluster(t, sampleDLs(t))
	b := []string{"--brokers", strings.Join(fake.ListenAddrs(), ",")}

	out, _, err := runCmd(t, nil, append(b, "dlq", "show", "0:0", "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var d dlqDetail
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.Value.Text != `{"src":"10.0.0.1"}`+"\n" || d.Headers["origin"] != "fw-1" || d.SourceOffset != 41 || d.Key.Len != 0 {
		t.Errorf("detail = %+v", d)
	}

	out, _, err = runCmd(t, nil, append(b, "dlq", "show", "0:1")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DLQ record     vigil.dlq 0:1", "Key            ipv4:203.0.113.7", "Decoded as     Observation", "203.0.113.7", "traceparent=00-abc-def-01"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	out, _, err = runCmd(t, nil, append(b, "dlq", "show", "0:2")...)
	if err != nil || !strings.Contains(out, "c3 01 ff 00") {
		t.Errorf("binary value not hex-dumped (%v):\n%s", err, out)
	}
	out, _, err = runCmd(t, nil, append(b, "dlq", "show", "0:2", "--json")...)
	if err != nil || !strings.Contains(out, `"base64": "wwH/AA=="`) {
		t.Errorf("binary value not base64 in JSON (%v):\n%s", err, out)
	}

	if _, _, err := runCmd(t, nil, append(b, "dlq", "show", "0:99")...); err == nil || !strings.Contains(err.Error(), "end offset 3") {
		t.Errorf("missing offset: err = %v", err)
	}
}

// consumeAll reads every record of topic on the fake cluster; it waits a second for more than want.
func consumeAll(t *testing.T, fake *kfake.Cluster, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(fake.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	for len(recs) < want+1 {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		recs = append(recs, f.Records()...)
	}
	return recs
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func TestDLQReplay(t *testing.T) {
	fake := dlqCluster(t, sampleDLs(t))
	b := []string{"--brokers", strings.Join(fake.ListenAddrs(), ",")}

	// dry run: plan only
	out, _, err := runCmd(t, nil, append(b, "dlq", "replay", "--dry-run", "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var rep replayReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.DryRun || len(rep.Replayed) != 2 || len(rep.Refused) != 2 {
		t.Fatalf("dry run = %+v", rep)
	}
	if recs := consumeAll(t, fake, "indicators.observed", 0); len(recs) != 0 {
		t.Fatalf("dry run produced %d records", len(recs))
	}

	// real replay of the enrich stage: 0:1 goes back, 0:2 (attempts 3) is refused
	var errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	err = run(ctx, append(b, "dlq", "replay", "--stage", "enrich", "--max-attempts", "3"), func(string) (string, bool) { return "", false },
		streams{out: &stdout, err: &errOut, errTTY: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "replay [##############################] 1/1") {
		t.Errorf("no progress bar on stderr: %q", errOut.String())
	}
	for _, want := range []string{"replayed 1, refused 1, failed 0", "0:2  refused", "attempts 3 >= max 3"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("replay output lacks %q:\n%s", want, stdout.String())
		}
	}
	recs := consumeAll(t, fake, "indicators.observed", 1)
	if len(recs) != 1 {
		t.Fatalf("source topic has %d records, want 1", len(recs))
	}
	r := recs[0]
	dls := sampleDLs(t)
	if string(r.Key) != "ipv4:203.0.113.7" || !bytes.Equal(r.Value, dls[1].Value) {
		t.Errorf("replayed record key %q value %x", r.Key, r.Value)
	}
	if got := header(r, stream.HeaderAttempts); got != "2" {
		t.Errorf("vigil-attempts = %q, want 2", got)
	}
	if got := header(r, "traceparent"); got != "00-abc-def-01" {
		t.Errorf("traceparent = %q, want the original header kept", got)
	}
	n := 0
	for _, h := range r.Headers {
		if h.Key == stream.HeaderAttempts {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d vigil-attempts headers, want exactly 1", n)
	}

	// a lower cap refuses everything: nothing more is produced
	out, _, err = runCmd(t, nil, append(b, "dlq", "replay", "--stage", "enrich", "--max-attempts", "2", "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	rep = replayReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Replayed) != 0 || len(rep.Refused) != 2 {
		t.Errorf("max-attempts 2: %+v", rep)
	}
	if recs := consumeAll(t, fake, "indicators.observed", 1); len(recs) != 1 {
		t.Errorf("source topic has %d records after refused replay, want still 1", len(recs))
	}
}

func TestReplayHeaders(t *testing.T) {
	tests := []struct {
		name     string
		attempts int32
		prior    string
		want     string
	}{
		{"first failure", 1, "", "1"},
		{"counted on", 3, "2", "3"},
		{"never goes down", 0, "4", "5"},
	}
	for _, tt := range tests {
		dl := events.DeadLetter{Attempts: tt.attempts}
		if tt.prior != "" {
			dl.Headers = []events.Header{{Key: stream.HeaderAttempts, Value: []byte(tt.prior)}}
		}
		hs := replayHeaders(dl)
		if len(hs) != 1 || hs[0].Key != stream.HeaderAttempts || string(hs[0].Value) != tt.want {
			t.Errorf("%s: headers = %v, want attempts %s", tt.name, hs, tt.want)
		}
	}
}
