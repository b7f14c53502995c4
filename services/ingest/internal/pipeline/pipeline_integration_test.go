//go:build integration

package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/stream"
)

// TestIntegrationAccountingBalances runs the ingest stage on the real broker over real sample
// logs plus junk: records in = records with observations + records with none + dead-lettered,
// and the DLQ topic holds exactly the dead-lettered ones.
func TestIntegrationAccountingBalances(t *testing.T) {
	t.Parallel()
	brokers := os.Getenv("VIGIL_TEST_KAFKA_BROKERS")
	if brokers == "" {
		brokers = "127.0.0.1:39092"
	}
	sfx := fmt.Sprint(rand.Int64())
	in, out, dlq := "raw.it-"+sfx, "observed.it-"+sfx, "dlq.it-"+sfx
	kc := stream.KafkaConfig{Brokers: strings.Split(brokers, ","), Partitions: 3, ReplicationFactor: 1, ResetOffset: "earliest", DLQTopic: dlq, GroupProtocol: "classic"}
	base, _ := kc.ClientOpts()
	cl, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("real Kafka broker at %s unreachable: %v", brokers, err)
	}
	if err := stream.EnsureTopics(ctx, cl, 3, 1, in, out, dlq); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for _, f := range []string{"../../testdata/json/suricata_eve/surevego_eve.json", "../../testdata/text/fortigate/cribl_fortigate_traffic_utm.log", "../../testdata/text/cef/metron_palo.cef"} {
		for _, l := range readLines(t, f) {
			recs = append(recs, &kgo.Record{Topic: in, Value: l})
		}
	}
	junk := []string{"not a log at all", "{\"truncated\":", "\xff\xfe bad utf8"}
	for _, j := range junk {
		recs = append(recs, &kgo.Record{Topic: in, Value: []byte(j)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	h, acct, _ := newHandler(t, true)
	h.cfg.OutTopic = out
	serde := h.serde
	r, err := stream.NewRunner(stream.Config{Stage: "ingest", Group: "g-" + sfx, Topics: []string{in}, Kafka: kc}, h, serde, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(rctx)
	g.Go(func() error { return r.Run(gctx) })
	for acct.total() < len(recs) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	rcancel()
	_ = g.Wait()
	_ = r.Close(context.Background())
	if acct.total() != len(recs) {
		t.Fatalf("accounting saw %d of %d records", acct.total(), len(recs))
	}
	dead := 0
	for k, v := range acct.m {
		if strings.HasPrefix(k, OutcomeDeadLettered) {
			dead += v
		}
	}
	if dead != len(junk) {
		t.Fatalf("dead-lettered %d, want %d (the junk records): %v", dead, len(junk), acct.m)
	}
	// the DLQ topic holds exactly those, each with its reason
	rd, _ := kgo.NewClient(append(base, kgo.ConsumeTopics(dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	defer rd.Close()
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < len(junk) && time.Now().Before(deadline) {
		pctx, pc := context.WithTimeout(ctx, time.Second)
		rd.PollFetches(pctx).EachRecord(func(rec *kgo.Record) {
			d, err := serde.DecodeDeadLetter(ctx, rec.Value)
			if err != nil {
				t.Errorf("decode dead letter: %v", err)
				return
			}
			got = append(got, d.ErrorClass)
		})
		pc()
	}
	if len(got) != len(junk) {
		t.Fatalf("DLQ holds %d records, want %d", len(got), len(junk))
	}
	for _, c := range got {
		if c != "unknown_format" && c != "malformed" && c != "invalid_utf8" {
			t.Fatalf("unexpected DLQ class %q", c)
		}
	}
}
