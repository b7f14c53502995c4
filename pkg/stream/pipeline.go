package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"
)

// offsets maps topic → partition → offset.
type offsets = map[string]map[int32]kgo.EpochOffset

// batch is one handled poll batch whose outputs are being produced.
type batch struct {
	first    offsets // first record per partition: where a failed batch rewinds to
	next     offsets // one past the last record per partition: what the batch commits
	spans    []trace.Span
	start    time.Time
	produced int
	filtered int

	pending atomic.Int64 // outputs not yet acked
	errMu   sync.Mutex
	err     error              // first produce error; read after done is closed
	cancel  context.CancelFunc // the produce context (nil without outputs)
	done    chan struct{}      // closed when every output is acked or failed
	onDone  func()             // called after done is closed
}

func newBatch(recs []*kgo.Record, spans []trace.Span, start time.Time, produced, filtered int) *batch {
	b := &batch{first: offsets{}, next: offsets{}, spans: spans, start: start, produced: produced,
		filtered: filtered, done: make(chan struct{})}
	for _, rec := range recs {
		lowerOffset(b.first, rec.Topic, rec.Partition, kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset})
		raiseOffset(b.next, rec.Topic, rec.Partition, kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset + 1})
	}
	return b
}

// acked is the produce promise of every output of the batch.
func (b *batch) acked(_ *kgo.Record, err error) {
	if err != nil {
		b.errMu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.errMu.Unlock()
	}
	if b.pending.Add(-1) == 0 {
		b.finish()
	}
}

func (b *batch) finish() {
	if b.cancel != nil {
		b.cancel()
	}
	endSpans(b.spans)
	close(b.done)
	if b.onDone != nil {
		b.onDone()
	}
}

func (b *batch) isDone() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

func endSpans(spans []trace.Span) {
	for _, s := range spans {
		if s != nil {
			s.End()
		}
	}
}

func lowerOffset(m offsets, t string, p int32, o kgo.EpochOffset) {
	ps := m[t]
	if ps == nil {
		ps = map[int32]kgo.EpochOffset{}
		m[t] = ps
	}
	if cur, ok := ps[p]; !ok || o.Offset < cur.Offset {
		ps[p] = o
	}
}

func raiseOffset(m offsets, t string, p int32, o kgo.EpochOffset) {
	ps := m[t]
	if ps == nil {
		ps = map[int32]kgo.EpochOffset{}
		m[t] = ps
	}
	if cur, ok := ps[p]; !ok || o.Offset > cur.Offset {
		ps[p] = o
	}
}

// pipeline holds the batches in flight, oldest first. The poll goroutine submits batches and
// handles failures; the committer goroutine moves acked batches, in order, into one coalesced
// commit of the newest offsets per partition.
type pipeline struct {
	wakePoll func() // interrupts the poll in progress (a batch failed)

	mu         sync.Mutex
	q          []*batch // submitted, not yet acked and merged into commit
	commit     offsets  // acked, not yet committed
	committing bool
	failed     error         // a batch failed to produce; the committer stops until takeFailure
	changed    chan struct{} // closed and replaced on every change
}

func newPipeline(wakePoll func()) *pipeline {
	return &pipeline{wakePoll: wakePoll, changed: make(chan struct{})}
}

func (p *pipeline) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// submit queues b; it must be called before any of b's outputs is produced.
func (p *pipeline) submit(b *batch) {
	b.onDone = p.notify // wakes the committer when the batch completes
	p.mu.Lock()
	p.q = append(p.q, b)
	p.broadcastLocked()
	p.mu.Unlock()
}

func (p *pipeline) notify() {
	p.mu.Lock()
	p.broadcastLocked()
	p.mu.Unlock()
}

func (p *pipeline) hasFailed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed != nil
}

func (p *pipeline) idleLocked() bool {
	return len(p.q) == 0 && len(p.commit) == 0 && !p.committing && p.failed == nil
}

func (p *pipeline) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.idleLocked()
}

func (p *pipeline) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.q)
}

// waitSpace waits until fewer than max batches are in flight. It returns false when ctx ended
// or a batch failed.
func (p *pipeline) waitSpace(ctx context.Context, max int) bool {
	for {
		p.mu.Lock()
		ok, failed, ch := len(p.q) < max, p.failed != nil, p.changed
		p.mu.Unlock()
		switch {
		case failed:
			return false
		case ok:
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

// waitIdle waits until every batch is acked and committed. It returns false when ctx ended or
// a batch failed.
func (p *pipeline) waitIdle(ctx context.Context) bool {
	for {
		p.mu.Lock()
		idle, failed, ch := p.idleLocked(), p.failed != nil, p.changed
		p.mu.Unlock()
		switch {
		case failed:
			return false
		case idle:
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

// takeFailure returns, after a batch failed to produce, the first offset per partition of it and
// of every later batch (their commits are discarded; outputs they already produced become
// duplicates when the records are processed again), and clears the pipeline.
func (p *pipeline) takeFailure() (offsets, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed == nil {
		return nil, nil
	}
	first := offsets{}
	for _, b := range p.q {
		for t, ps := range b.first {
			for part, o := range ps {
				lowerOffset(first, t, part, o)
			}
		}
	}
	err := p.failed
	p.q, p.failed = nil, nil
	p.broadcastLocked()
	return first, err
}

// commitLoop commits acked batches in order until ctx ends.
func (r *Runner) commitLoop(ctx context.Context) {
	r.pipe.run(ctx, r.commitOffsets, func(ctx context.Context, b *batch) {
		r.pauseStreak.Store(0)
		r.metrics.done(ctx, b.produced, b.filtered, time.Since(b.start))
	})
}

// run is the committer: it moves acked batches, oldest first, into the pending commit (calling
// acked for each) and commits the newest offsets per partition with commit, coalescing whatever
// was acked while the previous commit was in flight, until ctx ends. A failed batch stops it
// until takeFailure.
func (p *pipeline) run(ctx context.Context, commit func(context.Context, offsets), acked func(context.Context, *batch)) {
	for {
		p.mu.Lock()
		for p.failed == nil && len(p.q) > 0 && p.q[0].isDone() {
			b := p.q[0]
			if b.err != nil {
				p.failed = fmt.Errorf("produce: %w", b.err)
				p.broadcastLocked()
				p.wakePoll()
				break
			}
			if p.commit == nil {
				p.commit = offsets{}
			}
			for t, ps := range b.next {
				for part, o := range ps {
					raiseOffset(p.commit, t, part, o)
				}
			}
			p.q[0] = nil
			p.q = p.q[1:]
			p.broadcastLocked()
			acked(ctx, b)
		}
		toCommit := p.commit
		if len(toCommit) > 0 {
			p.commit, p.committing = nil, true
		}
		ch := p.changed
		p.mu.Unlock()

		if len(toCommit) > 0 {
			commit(ctx, toCommit)
			p.mu.Lock()
			p.committing = false
			p.broadcastLocked()
			p.mu.Unlock()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// commitOffsets commits synchronously. A failed commit only means the records may be processed
// again (duplicates are harmless by design), never skipped.
func (r *Runner) commitOffsets(ctx context.Context, offs offsets) {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.ProduceTimeout)
	defer cancel()
	var cerr error
	r.cl.CommitOffsetsSync(cctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		var errs []error
		for _, t := range resp.Topics {
			for _, pt := range t.Partitions {
				if e := kerr.ErrorForCode(pt.ErrorCode); e != nil {
					errs = append(errs, fmt.Errorf("%s/%d: %w", t.Topic, pt.Partition, e))
				}
			}
		}
		cerr = errors.Join(errs...)
	})
	if cerr != nil {
		r.log.WarnContext(ctx, "commit failed; records may be re-processed", "err", cerr)
	}
}
