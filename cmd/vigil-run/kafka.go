package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// offsets holds one offset per topic partition.
type offsets map[string]map[int32]int64

func (o offsets) get(t string, p int32) (int64, bool) {
	v, ok := o[t][p]
	return v, ok
}

func (o offsets) set(t string, p int32, v int64) {
	if o[t] == nil {
		o[t] = map[int32]int64{}
	}
	o[t][p] = v
}

// admin is the part of kadm.Client vigil-run uses.
type admin interface {
	ListEndOffsets(ctx context.Context, topics ...string) (kadm.ListedOffsets, error)
	FetchOffsets(ctx context.Context, group string) (kadm.OffsetResponses, error)
}

func endOffsets(ctx context.Context, adm admin, topics ...string) (offsets, error) {
	lo, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	out := offsets{}
	var errs []error
	lo.Each(func(l kadm.ListedOffset) {
		if l.Err != nil {
			errs = append(errs, fmt.Errorf("end offset %s/%d: %w", l.Topic, l.Partition, l.Err))
			return
		}
		out.set(l.Topic, l.Partition, l.Offset)
	})
	return out, errors.Join(errs...)
}

func committedOffsets(ctx context.Context, adm admin, group string) (offsets, error) {
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of %s: %w", group, err)
	}
	out := offsets{}
	resp.Each(func(r kadm.OffsetResponse) {
		if r.Err == nil && r.At >= 0 {
			out.set(r.Topic, r.Partition, r.At)
		}
	})
	return out, nil
}

// stageProgress is how far one consumer group got through its inputs since the run began.
type stageProgress struct {
	Name     string
	Consumed int64 // committed - baseline, over every input partition
	Total    int64 // end - baseline
}

// Lag is what the group still has to commit.
func (s stageProgress) Lag() int64 { return s.Total - s.Consumed }

// progressOf compares a group's committed offsets with the end offsets, both counted from the
// baseline (the end offsets when the run started).
func progressOf(name string, topics []string, base, end, committed offsets) stageProgress {
	sp := stageProgress{Name: name}
	for _, t := range topics {
		for p, e := range end[t] {
			b, _ := base.get(t, p)
			c, ok := committed.get(t, p)
			if !ok || c < b {
				c = b
			}
			if c > e {
				c = e
			}
			sp.Total += e - b
			sp.Consumed += c - b
		}
	}
	return sp
}

// pipelineProgress measures every stage in pipeline order. Each stage commits only after its
// outputs are acknowledged, so when a stage shows lag 0 everything it will ever produce for
// those inputs is already in the next topic, whose end offsets are read after it.
func pipelineProgress(ctx context.Context, adm admin, n names, base offsets) ([]stageProgress, error) {
	out := make([]stageProgress, 0, len(stages))
	for _, st := range stages {
		topics := st.Inputs(n)
		committed, err := committedOffsets(ctx, adm, n.Group(st.Name))
		if err != nil {
			return nil, err
		}
		end, err := endOffsets(ctx, adm, topics...)
		if err != nil {
			return nil, err
		}
		out = append(out, progressOf(st.Name, topics, base, end, committed))
	}
	return out, nil
}

// replay produces every source's records onto its topic. done counts acknowledged records.
func replay(ctx context.Context, cl *kgo.Client, srcs []source, done *atomic.Int64) error {
	var firstErr atomic.Pointer[error]
	for _, s := range srcs {
		for _, v := range s.Records {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			cl.Produce(ctx, &kgo.Record{Topic: s.Topic, Value: v}, func(_ *kgo.Record, err error) {
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				done.Add(1)
			})
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("replay flush: %w", err)
	}
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("replay produce: %w", *p)
	}
	return nil
}

// readTopics calls fn for every record of topics between from and to (end offsets read by the
// caller), then returns. It gives up after timeout.
func readTopics(ctx context.Context, opts []kgo.Opt, from, to offsets, timeout time.Duration, fn func(*kgo.Record)) error {
	parts := map[string]map[int32]kgo.Offset{}
	remaining := 0
	for t, ps := range to {
		for p, end := range ps {
			b, _ := from.get(t, p)
			if end <= b {
				continue
			}
			if parts[t] == nil {
				parts[t] = map[int32]kgo.Offset{}
			}
			parts[t][p] = kgo.NewOffset().At(b)
			remaining++
		}
	}
	if remaining == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...), kgo.ConsumePartitions(parts))...)
	if err != nil {
		return fmt.Errorf("reader client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("read topics: %d partitions not read to the end: %w", remaining, ctx.Err())
		}
		var errs []error
		fs.EachError(func(t string, p int32, err error) { errs = append(errs, fmt.Errorf("fetch %s/%d: %w", t, p, err)) })
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			end, ok := to.get(fp.Topic, fp.Partition)
			if !ok {
				return
			}
			for _, r := range fp.Records {
				if r.Offset < end {
					fn(r)
				}
			}
			if n := len(fp.Records); n > 0 && fp.Records[n-1].Offset+1 >= end {
				if _, open := parts[fp.Topic][fp.Partition]; open {
					delete(parts[fp.Topic], fp.Partition)
					remaining--
				}
			}
		})
	}
	return nil
}
