package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// broker wraps the bench's own producer/admin client.
type broker struct {
	cl         *kgo.Client
	adm        *kadm.Client
	partitions int
	created    []string
}

func newBroker(brokers []string, partitions int) (*broker, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("vigil-bench"),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(200_000),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &broker{cl: cl, adm: kadm.NewClient(cl), partitions: partitions}, nil
}

func (b *broker) close() { b.cl.Close() }

// ping checks that the broker answers.
func (b *broker) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := b.adm.BrokerMetadata(ctx); err != nil {
		return fmt.Errorf("kafka metadata: %w", err)
	}
	return nil
}

// createTopics creates the topics (remembering them for deleteCreated).
func (b *broker) createTopics(ctx context.Context, topics ...string) error {
	resp, err := b.adm.CreateTopics(ctx, int32(b.partitions), 1, nil, topics...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	b.created = append(b.created, topics...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		md, err := b.adm.Metadata(ctx, topics...)
		ok := err == nil
		if ok {
			for _, t := range topics {
				if td, found := md.Topics[t]; !found || td.Err != nil || len(td.Partitions) != b.partitions {
					ok = false
				}
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics %v not visible after create", topics)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deleteCreated removes every topic the bench created.
func (b *broker) deleteCreated(ctx context.Context) error {
	if len(b.created) == 0 {
		return nil
	}
	_, err := b.adm.DeleteTopics(ctx, b.created...)
	if err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	b.created = nil
	return nil
}

// deleteGroups removes consumer groups (best effort).
func (b *broker) deleteGroups(ctx context.Context, groups ...string) {
	_, _ = b.adm.DeleteGroups(ctx, groups...)
}

// fill produces n records made by gen(i) to topic and waits for every ack.
func (b *broker) fill(ctx context.Context, topic string, n int, gen func(i int) (key, value []byte, err error)) error {
	var failed atomic.Pointer[error]
	for i := range n {
		k, v, err := gen(i)
		if err != nil {
			return fmt.Errorf("make record %d: %w", i, err)
		}
		b.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: k, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
		if p := failed.Load(); p != nil {
			return fmt.Errorf("produce to %s: %w", topic, *p)
		}
	}
	if err := b.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if p := failed.Load(); p != nil {
		return fmt.Errorf("produce to %s: %w", topic, *p)
	}
	return nil
}

// endOffsets sums the end offsets of a topic.
func (b *broker) endOffsets(ctx context.Context, topic string) (int64, error) {
	lo, err := b.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("list end offsets: %w", err)
	}
	var sum int64
	var ferr error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			ferr = o.Err
			return
		}
		sum += o.Offset
	})
	if ferr != nil {
		return 0, fmt.Errorf("end offsets of %s: %w", topic, ferr)
	}
	return sum, nil
}

// committed sums a group's committed offsets on topic (partitions without a commit count 0).
// A retriable error (a fresh broker still creating __consumer_offsets answers
// COORDINATOR_NOT_AVAILABLE) counts as nothing committed yet: every caller polls.
func (b *broker) committed(ctx context.Context, group, topic string) (int64, error) {
	resp, err := b.adm.FetchOffsets(ctx, group)
	if err != nil {
		if kerr.IsRetriable(err) && ctx.Err() == nil {
			return 0, nil
		}
		return 0, fmt.Errorf("fetch offsets of %s: %w", group, err)
	}
	var sum int64
	for _, o := range resp[topic] {
		if o.Err == nil && o.At > 0 {
			sum += o.At
		}
	}
	return sum, nil
}

// stageWatch is one consumer group reading one topic.
type stageWatch struct {
	group, topic string
}

// drainOpts tune waitDrained.
type drainOpts struct {
	timeout time.Duration
	alive   func() error                           // checked every sample; an error ends the wait
	every   time.Duration                          // period of sample (0: never)
	sample  func(now time.Time, committed []int64) // called every period
}

// waitDrained polls the groups until each has committed its topic's end offset, in order: a
// downstream stage counts as drained only when every upstream stage was drained at the same
// sample. The first watch defines the timed window (see drainRate). On error (timeout, dead
// service) the partial drainRate is returned too.
func (b *broker) waitDrained(ctx context.Context, watches []stageWatch, o drainOpts) (drainRate, error) {
	d := drainRate{Committed: make([]int64, len(watches)), LastProgress: make([]time.Time, len(watches))}
	deadline := time.Now().Add(o.timeout)
	tick := 50 * time.Millisecond
	var lastSample time.Time
	for {
		now := time.Now()
		done := true
		for i, w := range watches {
			c, err := b.committed(ctx, w.group, w.topic)
			if err != nil {
				return d, err
			}
			e, err := b.endOffsets(ctx, w.topic)
			if err != nil {
				return d, err
			}
			if c > d.Committed[i] {
				d.LastProgress[i] = now
			}
			d.Committed[i] = c
			if i == 0 {
				d.Total = e
			}
			if c < e || (i == 0 && e == 0) {
				done = false
			}
		}
		if d.FirstAt.IsZero() && d.Committed[0] > 0 {
			d.FirstAt, d.FirstCommitted = now, d.Committed[0]
		}
		if o.sample != nil && o.every > 0 && now.Sub(lastSample) >= o.every {
			o.sample(now, append([]int64(nil), d.Committed...))
			lastSample = now
		}
		if done {
			d.DoneAt = now
			if d.FirstAt.IsZero() {
				d.FirstAt, d.FirstCommitted = now, d.Total
			}
			return d, nil
		}
		if o.alive != nil {
			if err := o.alive(); err != nil {
				return d, err
			}
		}
		if time.Now().After(deadline) {
			d.DoneAt = now
			return d, fmt.Errorf("%w within %s", errNotDrained, o.timeout)
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(tick):
		}
	}
}

// errNotDrained is returned by waitDrained on timeout.
var errNotDrained = errors.New("not drained")

// waitGroupStable waits until the group has members and is Stable (joined and assigned).
func (b *broker) waitGroupStable(ctx context.Context, group string, timeout time.Duration, alive func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		dg, err := b.adm.DescribeGroups(ctx, group)
		if err == nil {
			if g, ok := dg[group]; ok && g.Err == nil && g.State == "Stable" && len(g.Members) > 0 {
				return nil
			}
		}
		if alive != nil {
			if err := alive(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("group %s not stable after %s", group, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
