// Package state keeps per-indicator correlation telemetry: sightings in
// sliding windows, distinct internal assets, allowed/blocked/alerted counts,
// directions, first/last seen, highest severity and the last verdict.
//
// Two implementations share one contract: [Redis] (go-redis v9, shared by
// all replicas, so a consumer-group rebalance moves partition ownership
// without losing state) and [Memory] (embedded default, one process).
//
// # Replay safety
//
// Each record is deduplicated on its source coordinates: the raw topic,
// partition and offset from events.Producer, per indicator (one raw record
// can carry several indicators). The Redis implementation keeps, in the
// indicator's state hash, a high-water mark per source partition
// (o:<topic>:<partition>: the highest raw offset applied) and applies a
// record only when its offset is above the mark, moving the mark in the
// same Lua script that updates the counters, so "seen" and "counted" are one
// atomic step (also on Redis Cluster, where each indicator is one script).
// A replayed record (offset at or below the mark) changes nothing, however
// long after it was first seen.
//
// The mark relies on an indicator's records of one source partition reaching
// the store in offset order, except for replays. The pipeline keeps that
// order: ingest reads a raw partition in order and keys its outputs by
// indicator, so one observed and one enriched partition carry them in order;
// pkg/stream handles the records of a partition in order, produces a
// batch's outputs in input order after its per-record retries, and after a
// failure rewinds and re-delivers (replays) from the batch start; correlate
// fails whole batches, never single enrichments, on a transient error. A
// record that reached the dead-letter topic and is re-driven by hand after
// later offsets of its indicator were applied is counted as a replay.
//
// State written before the marks existed keeps its dedupe markers
// (vigil:corr:{<key>}:seen:<topic>:<partition>:<offset>, SET with a TTL):
// for a partition without a mark on such a state, a record whose marker
// exists is a replay; every other record moves the mark. [Memory] keeps one
// marker per record and indicator (expiring after SeenTTL), which gives the
// same result for records in that order.
//
// # Redis layout and cost
//
// Per indicator: vigil:corr:{<key>}:h (hash: counters, a:<action>,
// d:<direction>, first/last/obs/sev, the buckets m:<unix minute> and
// h:<unix hour>, and caches of the current minute's window sums and the
// distinct-asset count, and the high-water marks), :hll (HyperLogLog of
// assets) and :v (last published verdict). State written by the earlier layout (bucket
// hashes :m and :hr) is folded into :h the first time it is touched. A poll
// costs one round trip ([Redis.ApplyBatch]: the previous batch's published
// verdicts, one script call for the whole batch on standalone or Sentinel
// Redis, and the analyst allow entries); the script costs a few commands
// per indicator (see applyScript).
//
// # Decay re-scoring
//
// A verdict acknowledged with a [Review] also stores what is needed to
// evaluate the indicator again without a new sighting (the enrichment it
// was decided on, its LastObserved) and schedules it in its input
// partition's due set, in the same round trip. The partition's owner claims
// due entries ([DecayStore]); the layout is described at [Review].
//
// # Windows and times
//
// Sightings are summed in buckets, not stored one by one, so memory per
// indicator is bounded: per-minute buckets for the short window (default
// 1 h, at most 6 h) and per-hour buckets for the medium and long windows
// (default 24 h and 7 d, at most 30 d). Medium and long counts therefore
// have hour granularity at the window's old edge. Windows end at the store
// clock's now.
//
// A sighting is new when Vigil receives it, so buckets are keyed by the
// received time: the observation's ingest time, or the store clock's now
// when it is missing or in the future. Count1h/24h/7d therefore count the
// sightings Vigil received in the last hour, day and week, and
// [Summary.LastObserved] (the latest received time) is the reference for the
// policy's decay. Raw event times would make a log replayed today, or a
// device with a wrong clock, look years old (or in the future) and decay to
// nothing. Event times are kept for analysts: FirstSeen and LastSeen are the
// earliest and latest event time (ingest time when the event has none;
// future times count as now).
//
// # Analyst feedback and the false-positive KPI
//
// An analyst's allow decision (for example ThreatQ status Whitelisted) on an
// indicator Vigil acted on becomes an [AllowEntry]: the indicator must not be
// raised again until the entry expires. The entry and the KPI counters live
// in the store, so they survive restarts and every replica sees them:
//
//	vigil:corr:{feedback}:allow            hash: indicator key -> JSON {list, analyst, reason, expires_at}
//	vigil:corr:{feedback}:kpi              hash: feedback, fp:<action>, published:<action>
//	vigil:corr:{feedback}:seen:<t>:<p>:<o> dedupe marker of one feedback record (TTL = SeenTTL)
//
// The keys share the hash tag {feedback}, so one Lua script per feedback
// record can dedupe it on its source topic, partition and offset, count it
// and write the entry as one atomic step, also on Redis Cluster (feedback is
// rare: one slot is plenty). A replayed feedback record therefore changes
// nothing. expires_at is UTC with millisecond precision in a fixed-width
// layout, so the scripts compare expiries as strings; entries expire lazily:
// a reader ignores an expired entry and the feedback path deletes expired
// entries. An empty expires_at never expires.
//
// The published counters are incremented when verdicts are acknowledged by
// Kafka (SavePublished), in the same round trip that stores the last verdicts.
// Priors reads the allow entries of a batch's indicators in the round trip
// that reads their last verdicts, so a decision recorded by one replica is
// in force on every replica from the next batch on. [Memory] keeps the same
// in this process only.
package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// ErrInvalidConfig is returned by the constructors for unusable window settings.
var ErrInvalidConfig = errors.New("invalid state config")

// Windows are the sliding windows reported as Count1h, Count24h and Count7d.
type Windows struct {
	Short  time.Duration // default 1h, minute buckets, <= 6h
	Medium time.Duration // default 24h, hour buckets
	Long   time.Duration // default 7d, hour buckets, <= 30d
}

// Config tunes a store.
type Config struct {
	Windows Windows
	// SeenTTL is how long a record's source coordinates are remembered for
	// deduplication by [Memory] and of feedback records (Redis keeps an
	// indicator's high-water marks as long as its state); default and
	// minimum is Long + 1 day.
	SeenTTL time.Duration
	// StateTTL expires the state of an indicator not seen for this long;
	// default Long + 7 days.
	StateTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LocalStates is how many indicator states the Redis store keeps in
	// process to apply sightings without a script (redis_local.go; not on
	// Redis Cluster). 0 keeps every update in the script.
	LocalStates int
}

// Validate reports whether the windows are usable (after defaults), without
// changing c. Errors wrap [ErrInvalidConfig].
func (c Config) Validate() error { return c.setDefaults() }

func (c *Config) setDefaults() error {
	if c.Windows.Short == 0 {
		c.Windows.Short = time.Hour
	}
	if c.Windows.Medium == 0 {
		c.Windows.Medium = 24 * time.Hour
	}
	if c.Windows.Long == 0 {
		c.Windows.Long = 7 * 24 * time.Hour
	}
	w := c.Windows
	if w.Short < time.Minute || w.Short > 6*time.Hour || w.Medium < time.Hour || w.Long < w.Medium || w.Long > 30*24*time.Hour || w.Medium < w.Short {
		return fmt.Errorf("windows %v/%v/%v: %w", w.Short, w.Medium, w.Long, ErrInvalidConfig)
	}
	if minTTL := w.Long + 24*time.Hour; c.SeenTTL < minTTL {
		c.SeenTTL = minTTL
	}
	if c.StateTTL == 0 {
		c.StateTTL = w.Long + 7*24*time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// LastVerdict is the previous decision for an indicator, used for the
// previous priority and the re-emit decision.
type LastVerdict struct {
	Key       string // indicator key
	Priority  int32
	Level     string
	Action    string
	DecidedAt time.Time
	EmittedAt time.Time // when a verdict was last published
	// Sightings and DistinctAssets are the published summary's Count and
	// DistinctAssets, for the sightings-growth re-emit rule.
	Sightings      int64
	DistinctAssets int64
	// Review, when set on a verdict given to SavePublished or ApplyBatch,
	// schedules (or, with a zero Due, unschedules) the indicator's decay
	// re-scoring; see [DecayStore]. Only those writes read it: ignore it on
	// verdicts the store returns.
	Review *Review
}

// Summary is what Apply reports for a record: the sightings summary that
// goes into the verdict, and when Vigil last received a sighting of the
// indicator.
type Summary struct {
	events.SightingSummary
	// LastObserved is the latest received time (ingest time) of the
	// indicator's sightings: the reference for decay.
	LastObserved time.Time
}

// Batch is what ApplyBatch reports, per distinct indicator of a batch in
// order of first appearance.
type Batch struct {
	Keys      []string  // indicator keys (events.Indicator.Key)
	Last      []int     // index in the batch of the indicator's last record
	Summaries []Summary // the indicator's summary after its last record
	Priors    []Prior   // its last published verdict and allow entry in force
}

// Store is the contract both implementations satisfy. All methods are safe
// for concurrent use; ctx bounds the call only.
type Store interface {
	// Apply records the sightings of a batch (each record at most once, see
	// the package doc) and returns, per input in order, the summary after
	// that record was applied. A replayed record changes nothing and gets the
	// current summary.
	Apply(ctx context.Context, batch []events.Enrichment) ([]Summary, error)
	// ApplyBatch first stores published like SavePublished (the verdicts
	// Kafka acknowledged since the last call; may be empty), then records
	// the sightings of batch like Apply and returns, per distinct
	// indicator, its summary after its last record and its prior (last
	// published verdict, published included, and analyst allow entry, as
	// Priors reads them): what a poll needs, in one Redis round trip.
	ApplyBatch(ctx context.Context, published []LastVerdict, batch []events.Enrichment) (Batch, error)
	// LastVerdicts returns the stored last verdict per key; ok is false for
	// keys without one.
	LastVerdicts(ctx context.Context, keys []string) ([]LastVerdict, []bool, error)
	// SaveVerdicts stores the last verdict of each indicator.
	SaveVerdicts(ctx context.Context, vs []LastVerdict) error
	FeedbackStore
}

func sightingCount(e *events.Enrichment) int64 {
	if c := e.Observation.Sighting.Count; c > 0 {
		return int64(c)
	}
	return 1
}

func assetID(s events.Sighting) string {
	if s.AssetIP != "" {
		return s.AssetIP
	}
	return s.AssetHost
}

func eventTime(e *events.Enrichment, now time.Time) time.Time {
	t := e.Observation.EventTime
	if t.IsZero() {
		t = e.Observation.IngestTime
	}
	if t.IsZero() || t.After(now) {
		t = now // future times (clock skew) count as now
	}
	return t
}

// receivedTime is when Vigil received the sighting: the ingest time, or now
// when it is missing or in the future (clock skew between hosts).
func receivedTime(e *events.Enrichment, now time.Time) time.Time {
	t := e.Observation.IngestTime
	if t.IsZero() || t.After(now) {
		return now
	}
	return t
}

func seenID(o events.Observation) string {
	return string(appendSeenID(nil, &o))
}

// appendSeenID appends the source coordinates "topic:partition:offset" of o.
func appendSeenID(b []byte, o *events.Observation) []byte {
	b = append(b, o.Producer.Topic...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(o.Producer.Partition), 10)
	b = append(b, ':')
	return strconv.AppendInt(b, o.Producer.Offset, 10)
}

func blockedShare(s *events.SightingSummary) {
	if s.Count > 0 {
		s.BlockedShare = float64(s.Blocked) / float64(s.Count)
	}
}
