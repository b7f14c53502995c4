package cache

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// TestGroupedWritesJoinTheOpenGroup holds the flush lock (a write in flight) while several fills finish:
// they must all join one group, and every fill must return only after its entry is stored.
func TestGroupedWritesJoinTheOpenGroup(t *testing.T) {
	s := New(Config{}, nil, nil)
	s.writes.flush.Lock() // a previous group is being written
	const n = 6
	keys := make([]string, n)
	for i := range keys {
		keys[i] = uniqueKey(t)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	returned := make(chan int, n)
	for i, k := range keys {
		wg.Go(func() {
			_, errs[i] = s.FillHeld(t.Context(), k, func(context.Context) (Entry, error) {
				return sampleEntry(events.StatusOK, time.Minute), nil
			})
			returned <- i
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.writes.mu.Lock()
		joined := 0
		if s.writes.pending != nil {
			joined = len(s.writes.pending.keys)
		}
		s.writes.mu.Unlock()
		if joined == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d fills joined the open group", joined, n)
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case i := <-returned:
		t.Fatalf("fill %d returned before its group was written", i)
	default:
	}
	for _, k := range keys {
		if _, ok := s.l1.Get(k); ok {
			t.Fatalf("key %s stored before the group was written", k)
		}
	}
	s.writes.flush.Unlock()
	wg.Wait()
	for i, k := range keys {
		if errs[i] != nil {
			t.Fatalf("fill %d: %v", i, errs[i])
		}
		if e, ok, err := s.Get(t.Context(), k); err != nil || !ok || e.Status != events.StatusOK {
			t.Fatalf("key %d not stored after its fill returned: %+v %v %v", i, e, ok, err)
		}
	}
	if s.writes.pending != nil {
		t.Fatal("a written group is still open")
	}
}

// TestGroupedWriteFollowerGivesUp: a follower whose ctx ends stops waiting with the ctx error; the group is
// still written for the others.
func TestGroupedWriteFollowerGivesUp(t *testing.T) {
	s := New(Config{}, nil, nil)
	s.writes.flush.Lock()
	leaderDone := make(chan error, 1)
	k1, k2 := uniqueKey(t), uniqueKey(t)
	go func() {
		leaderDone <- s.setGrouped(context.Background(), k1, sampleEntry(events.StatusOK, time.Minute))
	}()
	for {
		s.writes.mu.Lock()
		open := s.writes.pending != nil
		s.writes.mu.Unlock()
		if open {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.setGrouped(ctx, k2, sampleEntry(events.StatusOK, time.Minute)); err == nil {
		t.Fatal("follower with an ended ctx returned nil")
	}
	s.writes.flush.Unlock()
	if err := <-leaderDone; err != nil {
		t.Fatalf("leader: %v", err)
	}
	for _, k := range []string{k1, k2} {
		if _, ok := s.l1.Get(k); !ok {
			t.Fatalf("key %s of the group not stored", k)
		}
	}
}
