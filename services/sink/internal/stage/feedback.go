package stage

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
)

// Producer produces records synchronously (*kgo.Client implements it).
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// FeedbackEncoder encodes feedback values (*events.Serde implements it).
type FeedbackEncoder interface {
	EncodeFeedback(f *events.Feedback) ([]byte, error)
}

// FeedbackCounter counts published feedback by kind (*Metrics implements it).
type FeedbackCounter interface {
	Feedback(kind string)
}

// FeedbackPublisher returns the publish function of the feedback poller (feedback.Poller.Run):
// it produces every event to topic, keyed by the indicator key, and returns only after Kafka
// acknowledged all of them, so the poller's cursor moves only then. counter may be nil.
func FeedbackPublisher(p Producer, topic string, enc FeedbackEncoder, counter FeedbackCounter) func(context.Context, []events.Feedback) error {
	return func(ctx context.Context, fbs []events.Feedback) error {
		if len(fbs) == 0 {
			return nil
		}
		recs := make([]*kgo.Record, 0, len(fbs))
		for i := range fbs {
			val, err := enc.EncodeFeedback(&fbs[i])
			if err != nil {
				return fmt.Errorf("encode feedback %s: %w", fbs[i].Indicator.Key(), err)
			}
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fbs[i].Indicator.Key()), Value: val})
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("produce feedback: %w", err)
		}
		if counter != nil {
			for _, fb := range fbs {
				counter.Feedback(fb.Kind)
			}
		}
		return nil
	}
}

// FeedbackCounterFunc adapts a function to FeedbackCounter.
type FeedbackCounterFunc func(kind string)

// Feedback calls f.
func (f FeedbackCounterFunc) Feedback(kind string) { f(kind) }
