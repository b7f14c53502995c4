package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
)

// topicSet names one run's topics and groups.
type topicSet struct {
	Suffix                                           string
	Raw, Observed, Enriched, Verdicts, Feedback, DLQ string
}

func newTopicSet(suffix string) topicSet {
	return topicSet{Suffix: suffix, Raw: "raw.suricata." + suffix, Observed: "indicators.observed." + suffix,
		Enriched: "indicators.enriched." + suffix, Verdicts: "indicators.verdicts." + suffix,
		Feedback: "indicators.feedback." + suffix, DLQ: "vigil.dlq." + suffix}
}

func (t topicSet) all() []string {
	return []string{t.Raw, t.Observed, t.Enriched, t.Verdicts, t.Feedback, t.DLQ}
}

// group is the consumer group of a service in this run.
func (t topicSet) group(svc string) string { return "vigil-chaos-" + svc + "." + t.Suffix }

// inputs are the topics a service consumes.
func (t topicSet) inputs(svc string) []string {
	switch svc {
	case "ingest":
		return []string{t.Raw}
	case "enrich":
		return []string{t.Observed}
	case "correlate":
		return []string{t.Enriched, t.Feedback}
	default:
		return []string{t.Verdicts}
	}
}

var services = []string{"ingest", "enrich", "correlate", "sink"}

// groupPosition is how far a group got: committed and end offsets summed over its inputs.
type groupPosition struct {
	Committed int64
	End       int64
}

// Lag is what the group still has to commit.
func (g groupPosition) Lag() int64 { return g.End - g.Committed }

// position reads a group's committed offsets and its inputs' end offsets.
func position(ctx context.Context, adm *kadm.Client, group string, topics []string) (groupPosition, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return groupPosition{}, fmt.Errorf("end offsets: %w", err)
	}
	com, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return groupPosition{}, fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	var gp groupPosition
	var errs []error
	ends.Each(func(l kadm.ListedOffset) {
		if l.Err != nil {
			errs = append(errs, l.Err)
			return
		}
		gp.End += l.Offset
		if c, ok := com.Lookup(l.Topic, l.Partition); ok && c.Err == nil && c.At > 0 {
			gp.Committed += min(c.At, l.Offset)
		}
	})
	return gp, errors.Join(errs...)
}

// collect reads every record of the run's pipeline topics into a view. Positions must already
// hold the raw positions the run produced.
func collect(ctx context.Context, opts []kgo.Opt, adm *kadm.Client, serde *events.Serde, t topicSet, v *pipelineView) error {
	v.ObsPos, v.ObsValues, v.EnrValues = map[rawPos]bool{}, map[string]bool{}, map[string]bool{}
	v.Verdicts, v.DLQ, v.DLQOther = map[string]verdictLite{}, map[rawPos]string{}, map[string]int{}
	topics := []string{t.Observed, t.Enriched, t.Verdicts, t.DLQ}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("end offsets: %w", err)
	}
	parts := map[string]map[int32]kgo.Offset{}
	want := map[string]map[int32]int64{}
	remaining := 0
	ends.Each(func(l kadm.ListedOffset) {
		if l.Err != nil || l.Offset <= 0 {
			return
		}
		if parts[l.Topic] == nil {
			parts[l.Topic], want[l.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
		}
		parts[l.Topic][l.Partition] = kgo.NewOffset().At(0)
		want[l.Topic][l.Partition] = l.Offset
		remaining++
	})
	if remaining == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...), kgo.ConsumePartitions(parts), kgo.FetchMaxBytes(64<<20))...)
	if err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var decodeErrs int
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("read topics: %d partitions unread: %w", remaining, ctx.Err())
		}
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			end := want[fp.Topic][fp.Partition]
			for _, r := range fp.Records {
				if r.Offset >= end {
					continue
				}
				if !v.add(ctx, serde, t, r) {
					decodeErrs++
				}
			}
			if n := len(fp.Records); n > 0 && fp.Records[n-1].Offset+1 >= end {
				if _, open := want[fp.Topic][fp.Partition]; open {
					delete(want[fp.Topic], fp.Partition)
					remaining--
				}
			}
		})
	}
	if decodeErrs > 0 {
		return fmt.Errorf("%d records on the pipeline topics do not decode", decodeErrs)
	}
	return nil
}

// add folds one record into the view; false when it does not decode.
func (v *pipelineView) add(ctx context.Context, serde *events.Serde, t topicSet, r *kgo.Record) bool {
	switch r.Topic {
	case t.Observed:
		o, err := serde.DecodeObservation(ctx, r.Value)
		if err != nil {
			return false
		}
		v.Observations++
		v.ObsValues[o.Indicator.Value] = true
		pos := rawPos{o.Producer.Partition, o.Producer.Offset}
		if _, ok := v.Positions[pos]; !ok || o.Producer.Topic != t.Raw {
			v.UnknownObs++
			return true
		}
		v.ObsPos[pos] = true
	case t.Enriched:
		e, err := serde.DecodeEnrichment(ctx, r.Value)
		if err != nil {
			return false
		}
		v.EnrValues[e.Observation.Indicator.Value] = true
	case t.Verdicts:
		d, err := serde.DecodeVerdict(ctx, r.Value)
		if err != nil {
			return false
		}
		v.VerdictCount++
		v.Verdicts[d.Indicator.Value] = verdictLite{Action: d.Action, Level: d.Level, Priority: d.Priority}
	case t.DLQ:
		d, err := serde.DecodeDeadLetter(ctx, r.Value)
		if err != nil {
			return false
		}
		if d.Stage != "ingest" || d.SourceTopic != t.Raw {
			v.DLQOther[d.Stage+"/"+d.ErrorClass]++
			return true
		}
		v.DLQRecords++
		v.DLQ[rawPos{d.SourcePartition, d.SourceOffset}] = d.ErrorClass
	}
	return true
}
