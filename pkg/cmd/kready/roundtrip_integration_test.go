//go:build integration

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// brokersFromEnv reads the test broker list; the default matches scripts/kafka/kafka.sh.
func brokersFromEnv() []string {
	s := os.Getenv("VIGIL_TEST_KAFKA_BROKERS")
	if s == "" {
		s = "127.0.0.1:39092"
	}
	return splitBrokers(s)
}

// TestRoundTrip checks the broker started by scripts/kafka/kafka.sh end to
// end: create a 3-partition topic, produce 10 keyed records, read them back
// directly and through a classic and a KIP-848 consumer group.
func TestRoundTrip(t *testing.T) {
	brokers := brokersFromEnv()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(admCl.Close) // runs after the topic delete registered below
	adm := kadm.NewClient(admCl)
	if _, err := waitReady(ctx, adm, 250*time.Millisecond, 3*time.Second); err != nil {
		t.Fatalf("kafka at %v unreachable (start it with scripts/kafka/kafka.sh start): %v", brokers, err)
	}

	topic := fmt.Sprintf("vigil-kready-roundtrip-%d", time.Now().UnixNano())
	created, err := adm.CreateTopic(ctx, 3, 1, nil, topic)
	if err != nil || created.Err != nil {
		t.Fatalf("create topic %s: %v / %v", topic, err, created.Err)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer dcancel()
		if _, err := adm.DeleteTopic(dctx, topic); err != nil {
			t.Errorf("delete topic %s: %v", topic, err)
		}
	})
	// The broker's metadata reaches the topic shortly after CreateTopic returns (KRaft propagates
	// it asynchronously): look until it does, or give up after 10 s with what was seen.
	got := 0
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			t.Fatalf("list topics: %v", err)
		}
		if got = len(td[topic].Partitions); got == 3 || time.Now().After(deadline) {
			break
		}
	}
	if got != 3 {
		t.Fatalf("topic %s has %d partitions, want 3", topic, got)
	}

	const n = 10
	want := make(map[string]string, n)
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatalf("new producer: %v", err)
	}
	defer prod.Close()
	var recs []*kgo.Record
	for i := range n {
		k, v := fmt.Sprintf("ipv4:203.0.113.%d", i), fmt.Sprintf("value-%d", i)
		want[k] = v
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte(v)})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	partitions := make(map[int32]bool)
	for _, r := range recs {
		partitions[r.Partition] = true
	}
	if len(partitions) < 2 {
		t.Fatalf("10 distinct keys landed on %d partition(s), want them spread", len(partitions))
	}

	tests := []struct {
		name      string
		opts      []kgo.Opt
		group     string
		groupType string
	}{
		{name: "direct"},
		{name: "classic group", group: topic + "-classic", groupType: "classic"},
		{name: "consumer group KIP-848", group: topic + "-848", groupType: "consumer",
			opts: []kgo.Opt{kgo.ServerSideBalancer()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []kgo.Opt{
				kgo.SeedBrokers(brokers...),
				kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			}
			if tt.group != "" {
				opts = append(opts, kgo.ConsumerGroup(tt.group))
			}
			cl, err := kgo.NewClient(append(opts, tt.opts...)...)
			if err != nil {
				t.Fatalf("new consumer: %v", err)
			}
			defer cl.Close()

			got := consumeN(ctx, t, cl, n)
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("key %s: got %q, want %q (got %d records)", k, got[k], v, len(got))
				}
			}
			if tt.group == "" {
				return
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
			listed, err := adm.ListGroups(ctx)
			if err != nil {
				t.Fatalf("list groups: %v", err)
			}
			g, ok := listed[tt.group]
			if !ok {
				t.Fatalf("group %s not listed", tt.group)
			}
			if g.GroupType != tt.groupType {
				t.Fatalf("group %s type = %q, want %q", tt.group, g.GroupType, tt.groupType)
			}
		})
	}
}

// consumeN polls cl until it has n records or ctx ends.
func consumeN(ctx context.Context, t *testing.T, cl *kgo.Client, n int) map[string]string {
	t.Helper()
	got := make(map[string]string, n)
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records before deadline: %v", len(got), n, err)
		}
		var errs []string
		fs.EachError(func(topic string, p int32, err error) {
			errs = append(errs, fmt.Sprintf("%s/%d: %v", topic, p, err))
		})
		if len(errs) > 0 {
			t.Fatalf("fetch: %s", strings.Join(errs, "; "))
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = string(r.Value) })
	}
	return got
}
