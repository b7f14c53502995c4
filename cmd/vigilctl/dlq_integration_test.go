//go:build integration

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
)

// TestDLQReplayRealKafka lists and replays dead letters on the real broker, with unique topics.
func TestDLQReplayRealKafka(t *testing.T) {
	brokers := envconf.New(os.LookupEnv).List("VIGIL_TEST_KAFKA_BROKERS", []string{"127.0.0.1:39092"})
	sfx := make([]byte, 4)
	_, _ = rand.Read(sfx)
	dlqTopic := "vigilctl.dlq." + hex.EncodeToString(sfx)
	srcTopic := "vigilctl.src." + hex.EncodeToString(sfx)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	if err := stream.EnsureTopics(ctx, cl, 2, 1, dlqTopic, srcTopic); err != nil {
		t.Fatalf("kafka %v unreachable or topics not created: %v", brokers, err)
	}
	serde, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	for i, attempts := range []int32{1, 3} {
		dl := events.DeadLetter{Key: []byte("domain:example.org"), Value: []byte("v" + string(rune('0'+i))), SourceTopic: srcTopic,
			Stage: "enrich", ErrorClass: "validation", Message: "m", Attempts: attempts, Time: time.Now().UTC()}
		v, err := serde.EncodeDeadLetter(&dl)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: dlqTopic, Partition: int32(i), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	b := []string{"--brokers", strings.Join(brokers, ","), "--dlq-topic", dlqTopic}
	out, _, err := runCmd(t, nil, append(b, "dlq", "list", "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var entries []dlqEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 2 {
		t.Fatalf("list = %s (%v)", out, err)
	}
	out, _, err = runCmd(t, nil, append(b, "dlq", "replay", "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var rep replayReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Replayed) != 1 || len(rep.Refused) != 1 {
		t.Fatalf("replay = %s (%v)", out, err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(srcTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	recs := cons.PollFetches(ctx).Records()
	if len(recs) != 1 || string(recs[0].Value) != "v0" || header(recs[0], stream.HeaderAttempts) != "1" {
		t.Fatalf("source topic records = %+v", recs)
	}
}
