//go:build integration

package correlator

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

// replica returns a correlator on its own Redis connection, as another
// process (a second replica, or this one after a restart) would have.
func replica(t *testing.T, clk *clock) *Correlator {
	t.Helper()
	addr := os.Getenv("VIGIL_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:36379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s unreachable: %v", addr, err)
	}
	st, err := state.NewRedis(t.Context(), rdb, state.Config{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(NewPolicyHolder(p), shippedLists(t), nil, st, clk.now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRedisFeedbackReplicasAndRestart: an analyst decision applied by one
// replica suppresses the indicator on another (never re-raised, with the
// analyst's reason), survives a restart, is counted once when the feedback
// record is delivered again, and expires.
func TestRedisFeedbackReplicasAndRestart(t *testing.T) {
	run := time.Now().UnixNano()
	clk := &clock{}
	clk.ns.Store(time.Now().UnixNano())
	a, b := replica(t, clk), replica(t, clk)
	ctx := t.Context()
	ip := fmt.Sprintf("45.155.%d.%d", 1+run%200, 1+(run/200)%250)
	fp := fmt.Sprintf("block-it-%d", run) // a Vigil action unique to this run: exact counts on a shared Redis
	topic := fmt.Sprintf("it-feedback-%d", run)
	e := obs(ip, "10.2.0.17", hostile)
	e.Observation.Producer.Topic = topic + ".raw"

	before, err := a.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := a.Process(ctx, []events.Enrichment{e})
	if err != nil || len(vs) != 1 || vs[0].Action != events.VerdictBlock {
		t.Fatalf("setup = %+v, %v; want a block", vs, err)
	}
	if err := a.Ack(ctx, vs); err != nil {
		t.Fatal(err)
	}
	rec := FeedbackRecord{Feedback: whitelisted(vs[0].Indicator, fp), Topic: topic, Partition: 4, Offset: 17}
	if err := a.ApplyFeedback(ctx, []FeedbackRecord{rec}); err != nil {
		t.Fatal(err)
	}
	// The feedback partition moves to b (rebalance) before a committed: b gets the record again.
	if err := b.ApplyFeedback(ctx, []FeedbackRecord{rec}); err != nil {
		t.Fatal(err)
	}

	critical := hostile
	critical.CVEs = []events.CVE{{ID: "CVE-2026-0001", CVSS: 10}}
	restarted := replica(t, clk)
	for name, c := range map[string]*Correlator{"other replica": b, "restarted": restarted} {
		e := obs(ip, "10.2.0.18", critical)
		e.Observation.Producer.Topic = topic + ".raw"
		vs, err := c.Process(ctx, []events.Enrichment{e})
		if err != nil || len(vs) != 1 || vs[0].Action != events.VerdictSuppress {
			t.Fatalf("%s: %+v, %v; want one suppress", name, vs, err)
		}
		if text, ok := analystEvidence(vs[0]); !ok || !strings.Contains(text, "partner VPN") {
			t.Errorf("%s: analyst evidence %q, %v", name, text, ok)
		}
		st, err := c.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.FalsePositives[fp] != 1 {
			t.Errorf("%s: false positives of %s = %d, want 1 (the record was delivered twice)", name, fp, st.FalsePositives[fp])
		}
		if st.Emitted[events.VerdictBlock] < before.Emitted[events.VerdictBlock]+1 || st.Feedback < before.Feedback+1 {
			t.Errorf("%s: stats %+v, want at least one more block and feedback than %+v", name, st, before)
		}
	}

	clk.ns.Add(int64(a.Policy().Feedback.AllowTTL))
	e = obs(ip, "10.2.0.19", critical)
	e.Observation.Producer.Topic = topic + ".raw"
	vs, err = restarted.Process(ctx, []events.Enrichment{e})
	if err != nil || len(vs) != 1 || vs[0].Action != events.VerdictBlock {
		t.Fatalf("after expiry = %+v, %v; want a block", vs, err)
	}
}
