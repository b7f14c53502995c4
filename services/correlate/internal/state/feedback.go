package state

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// ExpiryLayout is the layout of AllowEntry expiries in Redis: fixed width,
// so that string order is time order.
const ExpiryLayout = "2006-01-02T15:04:05.000Z"

// AllowEntry is an analyst's allow decision on one indicator.
type AllowEntry struct {
	List      string    // allow-list name the policy maps to a mode (policy feedback.allow_list)
	Analyst   string    // who decided
	Reason    string    // the analyst's reason
	ExpiresAt time.Time // zero: never expires
}

// Active reports whether e is in force at now.
func (e AllowEntry) Active(now time.Time) bool {
	return e.ExpiresAt.IsZero() || now.Before(e.ExpiresAt)
}

type allowJSON struct {
	List      string `json:"list"`
	Analyst   string `json:"analyst"`
	Reason    string `json:"reason"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

func encodeAllow(e AllowEntry) (string, error) {
	j := allowJSON{List: e.List, Analyst: e.Analyst, Reason: e.Reason}
	if !e.ExpiresAt.IsZero() {
		j.ExpiresAt = e.ExpiresAt.UTC().Format(ExpiryLayout)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return "", fmt.Errorf("encode allow entry: %w", err)
	}
	return string(b), nil
}

func decodeAllow(s string) (AllowEntry, error) {
	var j allowJSON
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return AllowEntry{}, fmt.Errorf("decode allow entry: %w", err)
	}
	e := AllowEntry{List: j.List, Analyst: j.Analyst, Reason: j.Reason}
	if j.ExpiresAt != "" {
		t, err := time.Parse(ExpiryLayout, j.ExpiresAt)
		if err != nil {
			return AllowEntry{}, fmt.Errorf("decode allow entry: %w", err)
		}
		e.ExpiresAt = t
	}
	return e, nil
}

// FeedbackRecord is one analyst decision as the store records it.
type FeedbackRecord struct {
	// Source identifies the Kafka record the decision came from
	// ("topic:partition:offset", see [FeedbackSource]); a record whose
	// Source was recorded before is ignored. Empty: never deduplicated.
	Source string
	// Key is the indicator key (events.Indicator.Key).
	Key string
	// FalsePositive is the Vigil action the decision marks as a false
	// positive; empty when it marks none.
	FalsePositive string
	// Allow, when set, stores (replaces) the indicator's allow entry.
	Allow *AllowEntry
	// Revoke removes the indicator's allow entry (the analyst took the allow
	// decision back). Ignored when Allow is set.
	Revoke bool
}

// FeedbackSource returns the Source of a feedback record read from topic,
// partition and offset.
func FeedbackSource(topic string, partition int32, offset int64) string {
	return fmt.Sprintf("%s:%d:%d", topic, partition, offset)
}

// KPI are the false-positive counters, shared by every replica on Redis.
type KPI struct {
	Published      map[string]int64 // verdicts acknowledged by Kafka, per action
	FalsePositives map[string]int64 // analyst allow decisions, per preceding Vigil action
	Feedback       int64            // feedback records recorded (each once)
}

// Prior is what the store holds about an indicator before a batch is
// evaluated.
type Prior struct {
	Verdict    LastVerdict
	HasVerdict bool
	// Allow is the analyst allow entry in force, nil when there is none or
	// it expired.
	Allow *AllowEntry
}

// FeedbackStore is the feedback part of the contract both stores satisfy.
// All methods are safe for concurrent use.
type FeedbackStore interface {
	// Priors returns, per key, the last verdict and the analyst allow entry
	// in force (one Redis round trip).
	Priors(ctx context.Context, keys []string) ([]Prior, error)
	// SavePublished stores the last verdict of each indicator (the last one
	// of vs wins) and counts every element of vs as a published verdict of
	// its action (one Redis round trip).
	SavePublished(ctx context.Context, vs []LastVerdict) error
	// RecordFeedback records each decision at most once (see
	// FeedbackRecord.Source) and returns how many were new.
	RecordFeedback(ctx context.Context, recs []FeedbackRecord) (int, error)
	// KPI returns the counters.
	KPI(ctx context.Context) (KPI, error)
}

func newKPI() KPI {
	return KPI{Published: map[string]int64{}, FalsePositives: map[string]int64{}}
}
