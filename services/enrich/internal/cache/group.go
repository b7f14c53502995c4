package cache

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// groupWriteTimeout bounds one grouped pipeline write.
const groupWriteTimeout = 5 * time.Second

// groupWriter batches the cache writes of concurrent fills into shared pipelines (group commit). The
// first writer to find no open group opens one and becomes its leader: it waits until the previous
// group's pipeline has been sent, closes its group to newcomers and writes every entry that joined it in
// one round trip. Writers that join an open group wait for the leader's result. Each writer returns only
// once its entry is stored, so a fill lock released after the write still guarantees that the replicas
// waiting on it find the answer.
type groupWriter struct {
	mu      sync.Mutex
	pending *writeGroup
	flush   sync.Mutex // held by the leader whose group is being written
}

// writeGroup is the entries that one pipeline writes.
type writeGroup struct {
	keys    []string
	entries []Entry
	done    chan struct{} // closed when err is set
	err     error
}

// setGrouped stores one cacheable entry in L1 and Redis together with the entries of other concurrent callers.
func (s *Store) setGrouped(ctx context.Context, key string, e Entry) error {
	g := &s.writes
	g.mu.Lock()
	w := g.pending
	leader := w == nil
	if leader {
		w = &writeGroup{done: make(chan struct{})}
		g.pending = w
	}
	w.keys = append(w.keys, key)
	w.entries = append(w.entries, e)
	g.mu.Unlock()

	if !leader {
		select {
		case <-w.done:
			return w.err
		case <-ctx.Done():
			return fmt.Errorf("wait for grouped cache write: %w", ctx.Err())
		}
	}
	g.flush.Lock()
	g.mu.Lock()
	g.pending = nil // later writers open the next group
	g.mu.Unlock()
	// The group carries other callers' entries: one caller giving up must not drop them.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupWriteTimeout)
	w.err = s.setEntries(wctx, w.keys, w.entries)
	cancel()
	g.flush.Unlock()
	close(w.done)
	return w.err
}
