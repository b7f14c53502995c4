package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrEmptyTopic is returned by readRecord when the topic has nothing at the requested position.
var ErrEmptyTopic = errors.New("no record at that position")

// kafkaClient connects with the configured brokers and security plus extra options.
func (a *app) kafkaClient(extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := a.cfg.Kafka.ClientOpts()
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.RequestTimeoutOverhead(a.cfg.Timeout))
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// idleLimit ends a scan that gets no records for this long although some partitions have not
// reached their end offset (the last offsets can be transaction markers, which are never returned).
const idleLimit = 3 * time.Second

// scanResult says how far a scan got.
type scanResult struct {
	Records    int     // records visited
	Unfinished []int32 // partitions not read to the end offset taken at the start (idle stop)
}

// scanTopic reads every record of topic from its start offsets up to the end offsets listed when
// the scan begins (records appended later are not visited), without a consumer group. visit
// returns false to stop early.
func (a *app) scanTopic(ctx context.Context, topic string, visit func(*kgo.Record) bool) (scanResult, error) {
	var res scanResult
	admCl, err := a.kafkaClient()
	if err != nil {
		return res, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	lctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	starts, err := adm.ListStartOffsets(lctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return res, fmt.Errorf("topic %s does not exist (check --dlq-topic): %w", topic, err)
	}
	if err != nil {
		return res, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(lctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return res, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	remaining := map[int32]int64{}
	assign := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, o.Partition)
		if o.Offset > s.Offset {
			remaining[o.Partition] = o.Offset
			assign[o.Partition] = kgo.NewOffset().At(s.Offset)
		}
	})
	if len(remaining) == 0 {
		return res, nil
	}
	cl, err := a.kafkaClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	for len(remaining) > 0 {
		pctx, pcancel := context.WithTimeout(ctx, idleLimit)
		fetches := cl.PollFetches(pctx)
		pcancel()
		if err := ctx.Err(); err != nil {
			return res, err
		}
		got := 0
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return res, fmt.Errorf("fetch %s: %w", topic, ferr)
		}
		stop := false
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			end, ok := remaining[p.Partition]
			if !ok || stop {
				return
			}
			for _, r := range p.Records {
				if r.Offset >= end {
					break
				}
				got++
				res.Records++
				if !visit(r) {
					stop = true
					return
				}
			}
			if n := len(p.Records); n > 0 && p.Records[n-1].Offset+1 >= end {
				delete(remaining, p.Partition)
			}
		})
		if stop {
			return res, nil
		}
		if got == 0 && fetches.Empty() {
			for p := range remaining {
				res.Unfinished = append(res.Unfinished, p)
			}
			return res, nil
		}
	}
	return res, nil
}

// readRecord returns the record at partition:offset of topic.
func (a *app) readRecord(ctx context.Context, topic string, partition int32, offset int64) (*kgo.Record, error) {
	cl, err := a.kafkaClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {partition: kgo.NewOffset().At(offset)},
	}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	lctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	ends, err := adm.ListEndOffsets(lctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	end, ok := ends.Lookup(topic, partition)
	if !ok {
		return nil, fmt.Errorf("%s has no partition %d: %w", topic, partition, ErrEmptyTopic)
	}
	if offset < 0 || offset >= end.Offset {
		return nil, fmt.Errorf("%s %d:%d (end offset %d): %w", topic, partition, offset, end.Offset, ErrEmptyTopic)
	}
	for {
		fetches := cl.PollFetches(lctx)
		if err := lctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s %d:%d: %w", topic, partition, offset, err)
		}
		if err := fetches.Err0(); err != nil {
			return nil, fmt.Errorf("fetch %s: %w", topic, err)
		}
		for _, r := range fetches.Records() {
			if r.Offset == offset {
				return r, nil
			}
			if r.Offset > offset {
				return nil, fmt.Errorf("%s %d:%d (removed or a transaction marker): %w", topic, partition, offset, ErrEmptyTopic)
			}
		}
	}
}
