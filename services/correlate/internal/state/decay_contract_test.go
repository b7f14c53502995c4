package state

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// decayStore is a store with the decay schedule.
type decayStore interface {
	Store
	DecayStore
}

// nextPartition hands out input partitions no other test of this run (or
// an earlier run, on a shared Redis) uses: each due set is a partition's.
var nextPartition = struct {
	sync.Mutex
	n int32
}{n: 1_000_000 + int32(uint32(runID)%1_000_000)*100}

func testPartitions(t *testing.T, n int, used *[]int32) []int32 {
	t.Helper()
	nextPartition.Lock()
	defer nextPartition.Unlock()
	out := make([]int32, n)
	for i := range out {
		out[i] = nextPartition.n
		nextPartition.n++
	}
	*used = append(*used, out...)
	return out
}

// published is a verdict acknowledged with a review due at due on
// partition p.
func published(key string, p int32, due, observed time.Time, enc string) LastVerdict {
	return LastVerdict{Key: key, Priority: 9, Level: "critical", Action: "block", DecidedAt: observed, EmittedAt: observed, Sightings: 1,
		Review: &Review{Enrichment: []byte(enc), LastObserved: observed, Partition: p, Due: due}}
}

func dueKeys(ds []Due) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Key
	}
	return out
}

// runDecayContract checks the DecayStore contract. cleanup receives the
// partitions the test used (their due sets are shared keys on Redis).
func runDecayContract(t *testing.T, newStore func(t *testing.T, now func() time.Time) Store, cleanup func(t *testing.T, partitions []int32)) {
	var used []int32
	t.Cleanup(func() { cleanup(t, used) })
	t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	open := func(t *testing.T) (decayStore, *fakeClock) {
		clk := &fakeClock{}
		clk.Set(t0)
		s, ok := newStore(t, clk.Now).(decayStore)
		if !ok {
			t.Fatal("store does not implement DecayStore")
		}
		return s, clk
	}

	t.Run("schedule, claim in due order, lease", func(t *testing.T) {
		s, clk := open(t)
		ctx := t.Context()
		p := testPartitions(t, 1, &used)[0]
		a, b, c, off := "ipv4:"+uniq(20101), "ipv4:"+uniq(20102), "ipv4:"+uniq(20103), "ipv4:"+uniq(20104)
		err := s.SavePublished(ctx, []LastVerdict{
			published(c, p, t0.Add(3*time.Hour), t0, "c"),
			published(b, p, t0.Add(2*time.Hour), t0, "b"),
			published(a, p, t0.Add(time.Hour), t0, "a"),
			published(off, p, time.Time{}, t0, "off"), // nothing can change: not scheduled
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.ClaimDue(ctx, []int32{p}, 10); err != nil || len(got) != 0 {
			t.Fatalf("claim before anything is due = %v, %v; want none", dueKeys(got), err)
		}
		clk.Set(t0.Add(150 * time.Minute))
		got, err := s.ClaimDue(ctx, []int32{p}, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []Due{
			{Key: a, Partition: p, At: t0.Add(time.Hour), Lease: clk.Now().Add(ClaimLease)},
			{Key: b, Partition: p, At: t0.Add(2 * time.Hour), Lease: clk.Now().Add(ClaimLease)},
		}
		if !slices.EqualFunc(got, want, func(x, y Due) bool {
			return x.Key == y.Key && x.Partition == y.Partition && x.At.Equal(y.At) && x.Lease.Equal(y.Lease)
		}) {
			t.Fatalf("claimed %+v, want %+v", got, want)
		}
		if again, err := s.ClaimDue(ctx, []int32{p}, 10); err != nil || len(again) != 0 {
			t.Fatalf("second claim = %v, %v; want none (leased)", dueKeys(again), err)
		}
		// a claimer that never came back: its entries are due again when the lease ends
		clk.Set(t0.Add(150*time.Minute + ClaimLease))
		got, err = s.ClaimDue(ctx, []int32{p}, 10)
		if err != nil || !slices.Equal(dueKeys(got), []string{a, b}) {
			t.Fatalf("after the lease: %v, %v; want %s %s again", dueKeys(got), err, a, b)
		}
	})

	t.Run("limit across partitions", func(t *testing.T) {
		s, clk := open(t)
		ctx := t.Context()
		ps := testPartitions(t, 3, &used)
		var vs []LastVerdict
		for i, p := range ps {
			for j := range 2 {
				vs = append(vs, published(fmt.Sprintf("ipv4:%s", uniq(20200+10*i+j)), p, t0.Add(time.Duration(j+1)*time.Minute), t0, "x"))
			}
		}
		if err := s.SavePublished(ctx, vs); err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(time.Hour))
		got, err := s.ClaimDue(ctx, ps[:2], 3)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{vs[0].Key, vs[1].Key, vs[2].Key}; !slices.Equal(dueKeys(got), want) {
			t.Fatalf("claimed %v, want %v (first partition, then the second, 3 in all)", dueKeys(got), want)
		}
		if got[2].Partition != ps[1] {
			t.Errorf("third claim from partition %d, want %d", got[2].Partition, ps[1])
		}
		rest, err := s.ClaimDue(ctx, ps, 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{vs[3].Key, vs[4].Key, vs[5].Key}; !slices.Equal(dueKeys(rest), want) {
			t.Fatalf("then claimed %v, want %v", dueKeys(rest), want)
		}
	})

	t.Run("load", func(t *testing.T) {
		s, clk := open(t)
		ctx := t.Context()
		p := testPartitions(t, 1, &used)[0]
		ip, bare := uniq(20301), uniq(20302)
		key, bareKey := "ipv4:"+ip, "ipv4:"+bare
		seen := t0.Add(-90 * time.Minute)
		batch := []events.Enrichment{rec(ip, 1, seen, events.ActionBlocked, "10.0.0.1", 3), rec(ip, 2, t0.Add(-30*time.Minute), events.ActionAllowed, "10.0.0.2", 1)}
		for i := range batch {
			batch[i].Observation.Producer.Topic = fmt.Sprintf("raw.decay.%d", runID)
		}
		if _, err := s.Apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordFeedback(ctx, []FeedbackRecord{{Key: key, Allow: &AllowEntry{List: "analyst-feedback", Analyst: "ann", Reason: "lab", ExpiresAt: t0.Add(48 * time.Hour)}}}); err != nil {
			t.Fatal(err)
		}
		enc := string([]byte{0xc3, 0x01, 0, 1, 2, 0xff})
		if err := s.SavePublished(ctx, []LastVerdict{
			published(key, p, t0.Add(time.Hour), t0.Add(-30*time.Minute), enc),
			published(bareKey, p, t0.Add(time.Hour), t0, "bare"), // a review without sightings state
		}); err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(2 * time.Hour))
		due, err := s.ClaimDue(ctx, []int32{p}, 10)
		if err != nil || len(due) != 2 {
			t.Fatalf("claimed %v, %v", dueKeys(due), err)
		}
		pend, err := s.LoadDue(ctx, due)
		if err != nil || len(pend) != 2 {
			t.Fatalf("LoadDue = %d, %v", len(pend), err)
		}
		byKey := map[string]Pending{pend[0].Key: pend[0], pend[1].Key: pend[1]}
		got := byKey[key]
		if !got.HasReview || !bytes.Equal(got.Review.Enrichment, []byte(enc)) || !got.Review.LastObserved.Equal(t0.Add(-30*time.Minute)) || got.Review.Partition != p {
			t.Errorf("stash = %+v (has %v)", got.Review, got.HasReview)
		}
		if !got.Prior.HasVerdict || got.Prior.Verdict.Level != "critical" || got.Prior.Verdict.Review != nil {
			t.Errorf("prior verdict = %+v (has %v)", got.Prior.Verdict, got.Prior.HasVerdict)
		}
		if got.Prior.Allow == nil || got.Prior.Allow.Analyst != "ann" {
			t.Errorf("allow entry = %+v", got.Prior.Allow)
		}
		// the summary at now: the last hour's window is empty by now, the day's is not
		sum := got.Summary
		if !got.HasState || sum.Count != 2 || sum.Count1h != 0 || sum.Count24h != 2 || sum.Count7d != 2 || sum.Blocked != 1 || sum.Allowed != 1 ||
			sum.DistinctAssets != 2 || sum.MaxSeverity != 3 || !sum.LastObserved.Equal(t0.Add(-30*time.Minute)) || sum.BlockedShare != 0.5 {
			t.Errorf("summary = %+v (has %v)", sum, got.HasState)
		}
		if b := byKey[bareKey]; !b.HasReview || b.HasState || b.Prior.Allow != nil {
			t.Errorf("indicator without state: %+v", b)
		}
	})

	t.Run("reschedule holds only with the lease", func(t *testing.T) {
		s, clk := open(t)
		ctx := t.Context()
		p := testPartitions(t, 1, &used)[0]
		won, later, gone, back := "ipv4:"+uniq(20401), "ipv4:"+uniq(20402), "ipv4:"+uniq(20403), "ipv4:"+uniq(20404)
		var vs []LastVerdict
		for _, k := range []string{won, later, gone, back} {
			vs = append(vs, published(k, p, t0.Add(time.Minute), t0, k))
		}
		if err := s.SavePublished(ctx, vs); err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(time.Hour))
		due, err := s.ClaimDue(ctx, []int32{p}, 10)
		if err != nil || len(due) != 4 {
			t.Fatalf("claimed %v, %v", dueKeys(due), err)
		}
		byKey := map[string]Due{}
		for _, d := range due {
			byKey[d.Key] = d
		}
		// the stream path published a verdict for won while it was claimed
		if err := s.SavePublished(ctx, []LastVerdict{published(won, p, t0.Add(5*time.Hour), t0.Add(50*time.Minute), "fresh")}); err != nil {
			t.Fatal(err)
		}
		moved := t0.Add(55 * time.Minute)
		err = s.Reschedule(ctx, []Rescheduled{
			{Due: byKey[won], Next: t0.Add(2 * time.Hour)},                        // lost the race: the publication's schedule stays
			{Due: byKey[later], Next: t0.Add(3 * time.Hour), LastObserved: moved}, // sighted since
			{Due: byKey[gone]},                       // removed
			{Due: byKey[back], Next: byKey[back].At}, // put back
		})
		if err != nil {
			t.Fatal(err)
		}
		now, err := s.ClaimDue(ctx, []int32{p}, 10)
		if err != nil || !slices.Equal(dueKeys(now), []string{back}) {
			t.Fatalf("claim right after = %v, %v; want only the put-back %s", dueKeys(now), err, back)
		}
		if err := s.Reschedule(ctx, []Rescheduled{{Due: now[0]}}); err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(3 * time.Hour))
		at3, err := s.ClaimDue(ctx, []int32{p}, 10)
		if err != nil || !slices.Equal(dueKeys(at3), []string{later}) {
			t.Fatalf("claim at 3h = %v, %v; want %s", dueKeys(at3), err, later)
		}
		pend, err := s.LoadDue(ctx, at3)
		if err != nil || !pend[0].HasReview || !pend[0].Review.LastObserved.Equal(moved) {
			t.Fatalf("stash after the move: %+v, %v", pend, err)
		}
		if err := s.Reschedule(ctx, []Rescheduled{{Due: at3[0]}}); err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(5 * time.Hour))
		at5, err := s.ClaimDue(ctx, []int32{p}, 10)
		if err != nil || !slices.Equal(dueKeys(at5), []string{won}) {
			t.Fatalf("claim at 5h = %v, %v; want %s on the publication's schedule (and %s never again)", dueKeys(at5), err, won, gone)
		}
		pend, err = s.LoadDue(ctx, at5)
		if err != nil || string(pend[0].Review.Enrichment) != "fresh" {
			t.Fatalf("stash of %s = %+v, %v; want the publication's", won, pend, err)
		}
	})

	t.Run("unschedule", func(t *testing.T) {
		s, clk := open(t)
		ctx := t.Context()
		p := testPartitions(t, 1, &used)[0]
		k := "ipv4:" + uniq(20501)
		if err := s.SavePublished(ctx, []LastVerdict{published(k, p, t0.Add(time.Minute), t0, "x")}); err != nil {
			t.Fatal(err)
		}
		if err := s.SavePublished(ctx, []LastVerdict{published(k, p, time.Time{}, t0, "x")}); err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(time.Hour))
		if got, err := s.ClaimDue(ctx, []int32{p}, 10); err != nil || len(got) != 0 {
			t.Fatalf("claimed %v, %v after a publication that scheduled nothing", dueKeys(got), err)
		}
	})

	t.Run("concurrent claimers", func(t *testing.T) {
		s, clk := open(t)
		ctx := t.Context()
		ps := testPartitions(t, 2, &used)
		const n = 200
		var vs []LastVerdict
		for i := range n {
			vs = append(vs, published("ipv4:"+uniq(21000+i), ps[i%2], t0.Add(time.Duration(i)*time.Second), t0, "x"))
		}
		if err := s.SavePublished(ctx, vs); err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(time.Hour))
		var (
			mu  sync.Mutex
			got = map[string]int{}
			wg  sync.WaitGroup
		)
		errs := make(chan error, 2)
		for range 2 {
			wg.Go(func() {
				for {
					ds, err := s.ClaimDue(ctx, ps, 7)
					if err != nil {
						errs <- err
						return
					}
					if len(ds) == 0 {
						return
					}
					mu.Lock()
					for _, d := range ds {
						got[d.Key]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Errorf("%d distinct indicators claimed, want %d", len(got), n)
		}
		for k, c := range got {
			if c != 1 {
				t.Errorf("%s claimed %d times", k, c)
			}
		}
	})
}
