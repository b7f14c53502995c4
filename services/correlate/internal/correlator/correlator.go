// Package correlator joins enrichments with internal telemetry, the asset
// inventory, allow-lists and the governance policy into verdicts.
//
// Use per poll:
//
//	verdicts, err := c.Process(ctx, batch) // filtered: only verdicts to publish
//	// produce verdicts, wait for Kafka acks, then
//	err = c.Ack(ctx, verdicts)             // remember them as published
//	// then commit the input offsets
//
// Ack after the produce is acknowledged keeps delivery at-least-once: if the
// process dies between Process and Ack, the replayed records are not counted
// again (state dedupes on source offsets) but their verdicts are emitted
// again, because the last published verdict was not updated.
package correlator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/correlate/internal/assets"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

// Lists finds the allow-lists and warninglists an indicator is on
// (*allowlist.Holder satisfies it). Safe for concurrent use.
type Lists interface {
	MatchAll(ind events.Indicator) []events.ListMatch
}

// Overlay receives the analyst allow-list compiled from feedback
// (*allowlist.Holder satisfies it).
type Overlay interface {
	SetOverlay(s *allowlist.Set)
}

// Assets finds the internal asset of a sighting (*assets.Inventory satisfies it).
type Assets interface {
	Lookup(ip, host string) (assets.Asset, bool)
}

// Store is the correlation state (state.Redis and state.Memory satisfy it).
type Store interface {
	Apply(ctx context.Context, batch []events.Enrichment) ([]state.Summary, error)
	LastVerdicts(ctx context.Context, keys []string) ([]state.LastVerdict, []bool, error)
	SaveVerdicts(ctx context.Context, vs []state.LastVerdict) error
}

// PolicyHolder holds the current policy and swaps it atomically.
type PolicyHolder struct{ p atomic.Pointer[policy.Policy] }

// NewPolicyHolder returns a holder serving p.
func NewPolicyHolder(p *policy.Policy) *PolicyHolder {
	h := &PolicyHolder{}
	h.p.Store(p)
	return h
}

// Load returns the current policy.
func (h *PolicyHolder) Load() *policy.Policy { return h.p.Load() }

// Store swaps in p.
func (h *PolicyHolder) Store(p *policy.Policy) { h.p.Store(p) }

// Stats are counters for the false-positive KPI. Read them with Snapshot.
type Stats struct {
	mu             sync.Mutex
	emitted        map[string]int64 // verdicts published per action
	falsePositives map[string]int64 // analyst allow decisions per preceding Vigil action
	feedback       int64
}

// StatsSnapshot is a copy of the counters.
type StatsSnapshot struct {
	Emitted        map[string]int64
	FalsePositives map[string]int64
	Feedback       int64
}

// FPRate returns false positives / published verdicts for an action (0 when none).
func (s StatsSnapshot) FPRate(action string) float64 {
	if s.Emitted[action] == 0 {
		return 0
	}
	return float64(s.FalsePositives[action]) / float64(s.Emitted[action])
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := StatsSnapshot{Emitted: map[string]int64{}, FalsePositives: map[string]int64{}, Feedback: s.feedback}
	for k, v := range s.emitted {
		out.Emitted[k] = v
	}
	for k, v := range s.falsePositives {
		out.FalsePositives[k] = v
	}
	return out
}

// Correlator turns enrichment batches into verdicts. Process, Ack,
// ApplyFeedback and Reload are safe for concurrent use.
type Correlator struct {
	policy *PolicyHolder
	lists  Lists
	assets Assets
	store  Store
	now    func() time.Time
	log    *slog.Logger
	stats  Stats

	fbMu     sync.Mutex
	fbList   map[string]allowlist.Entry // analyst allow entries by indicator key
	fbTarget Overlay
}

// ErrNilDependency is returned by New when a required dependency is missing.
var ErrNilDependency = errors.New("nil dependency")

// New builds a Correlator. lists and inv may be nil (no lists, no assets);
// when lists also implements Overlay, analyst feedback is installed there.
// now nil means time.Now.
func New(p *PolicyHolder, lists Lists, inv Assets, store Store, now func() time.Time, log *slog.Logger) (*Correlator, error) {
	if p == nil || p.Load() == nil || store == nil || log == nil {
		return nil, fmt.Errorf("new correlator: %w", ErrNilDependency)
	}
	if now == nil {
		now = time.Now
	}
	c := &Correlator{policy: p, lists: lists, assets: inv, store: store, now: now, log: log, fbList: map[string]allowlist.Entry{}}
	if o, ok := lists.(Overlay); ok {
		c.fbTarget = o
	}
	c.stats.emitted = map[string]int64{}
	c.stats.falsePositives = map[string]int64{}
	return c, nil
}

// Policy returns the policy in force.
func (c *Correlator) Policy() *policy.Policy { return c.policy.Load() }

// Stats returns the false-positive counters.
func (c *Correlator) Stats() StatsSnapshot { return c.stats.Snapshot() }

// Reload validates the policy file at path and swaps it in. On error the
// policy in force stays and the error names file, line and field.
func (c *Correlator) Reload(path string) error {
	p, err := policy.Load(path)
	if err != nil {
		return fmt.Errorf("reload policy: %w", err)
	}
	old := c.policy.Load()
	c.policy.Store(p)
	c.log.Info("policy reloaded", "file", path, "version", p.Version, "previous_version", old.Version)
	return nil
}

// Process records the sightings of batch and returns the verdicts to
// publish, at most one per indicator, in the input order of each
// indicator's last record. An empty result with a nil error means nothing
// changed enough to publish. It costs two Redis round trips (Apply and
// LastVerdicts) per batch.
//
// An indicator's verdict is evaluated once per batch, on its last record:
// that record's summary already includes every earlier record of the
// indicator in the batch, and its enrichment is the freshest. The emit rules
// compare it with the verdict published before the batch. Evaluating each
// record and publishing the first would publish the summary of the first
// sighting only, and the re-emit rules would then hold back the later ones.
func (c *Correlator) Process(ctx context.Context, batch []events.Enrichment) ([]events.Verdict, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	sums, err := c.store.Apply(ctx, batch)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	keys := make([]string, 0, len(batch))
	last := make(map[string]int, len(batch)) // indicator key -> index of its last record
	for i := range batch {
		k := batch[i].Observation.Indicator.Key()
		if _, ok := last[k]; !ok {
			keys = append(keys, k)
		}
		last[k] = i
	}
	lasts, found, err := c.store.LastVerdicts(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	prevs := make(map[string]*policy.Previous, len(keys))
	for i, k := range keys {
		if found[i] {
			prevs[k] = previous(lasts[i])
		}
	}
	p := c.policy.Load()
	now := c.now()
	var out []events.Verdict
	for i := range batch {
		e := &batch[i]
		k := e.Observation.Indicator.Key()
		if last[k] != i {
			continue
		}
		v := evaluate(p, c.lists, c.assets, e, sums[i], prevs[k], now)
		if p.ShouldEmit(v, prevs[k]) {
			out = append(out, v)
		}
	}
	return out, nil
}

func previous(l state.LastVerdict) *policy.Previous {
	return &policy.Previous{Priority: l.Priority, Level: l.Level, Action: l.Action, EmittedAt: l.EmittedAt,
		Sightings: l.Sightings, DistinctAssets: l.DistinctAssets}
}

func evaluate(p *policy.Policy, lists Lists, inv Assets, e *events.Enrichment, sum state.Summary, prev *policy.Previous, now time.Time) events.Verdict {
	in := policy.Input{Enrichment: e, Summary: sum.SightingSummary, LastObserved: sum.LastObserved, Previous: prev, Now: now}
	if e.Observation.Allowlist != nil {
		in.Lists = append(in.Lists, *e.Observation.Allowlist)
	}
	if lists != nil {
		for _, m := range lists.MatchAll(e.Observation.Indicator) {
			if e.Observation.Allowlist == nil || m.List != e.Observation.Allowlist.List {
				in.Lists = append(in.Lists, m)
			}
		}
	}
	if inv != nil {
		s := e.Observation.Sighting
		if a, ok := inv.Lookup(s.AssetIP, s.AssetHost); ok {
			in.Asset = &policy.Asset{Name: a.Name, Criticality: a.Criticality, Owner: a.Owner}
		}
	}
	return p.Evaluate(in)
}

// Ack records verdicts as published (call it after Kafka acknowledged
// them): their priority becomes the previous priority and their level the
// reference for re-emits. One Redis round trip.
func (c *Correlator) Ack(ctx context.Context, verdicts []events.Verdict) error {
	if len(verdicts) == 0 {
		return nil
	}
	last := make(map[string]int, len(verdicts))
	vs := make([]state.LastVerdict, 0, len(verdicts))
	for _, v := range verdicts {
		lv := state.LastVerdict{Key: v.Indicator.Key(), Priority: v.Priority, Level: v.Level, Action: v.Action, DecidedAt: v.DecidedAt, EmittedAt: v.DecidedAt,
			Sightings: v.Sightings.Count, DistinctAssets: v.Sightings.DistinctAssets}
		if i, ok := last[lv.Key]; ok {
			vs[i] = lv
			continue
		}
		last[lv.Key] = len(vs)
		vs = append(vs, lv)
	}
	if err := c.store.SaveVerdicts(ctx, vs); err != nil {
		return fmt.Errorf("ack verdicts: %w", err)
	}
	c.stats.mu.Lock()
	for _, v := range verdicts {
		c.stats.emitted[v.Action]++
	}
	c.stats.mu.Unlock()
	return nil
}

// ApplyFeedback turns analyst decisions into allow-list entries (statuses
// listed in the policy's feedback.allow_statuses, with the policy's TTL and
// the analyst's reason) and counts each as a false positive of the Vigil
// action that preceded it. The entries are installed as the allow-list
// overlay when the Lists given to New implement Overlay. They live in memory
// only. Records whose value cannot become an entry are skipped and reported
// in a *FeedbackError; the others are applied.
func (c *Correlator) ApplyFeedback(ctx context.Context, fbs []events.Feedback) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := c.policy.Load()
	changed := false
	c.fbMu.Lock()
	defer c.fbMu.Unlock()
	now := c.now()
	var invalid FeedbackError
	for i, fb := range fbs {
		c.stats.mu.Lock()
		c.stats.feedback++
		c.stats.mu.Unlock()
		if fb.Kind != "status_changed" || !p.IsAllowStatus(fb.NewStatus) {
			continue
		}
		if fb.VigilAction != "" {
			c.stats.mu.Lock()
			c.stats.falsePositives[fb.VigilAction]++
			c.stats.mu.Unlock()
		}
		typ := allowlist.TypeString
		if fb.Indicator.Type == events.TypeIPv4 || fb.Indicator.Type == events.TypeIPv6 {
			typ = allowlist.TypeCIDR
		}
		reason := fmt.Sprintf("analyst %s: %s", fb.Analyst, fb.Reason)
		entry := allowlist.Entry{Value: fb.Indicator.Value, Type: typ, Reason: reason, Expires: now.Add(p.Feedback.AllowTTL)}
		// An entry that does not compile would make every later overlay fail: refuse it alone.
		if _, err := allowlist.Compile([]allowlist.List{{Name: p.Feedback.AllowList, Entries: []allowlist.Entry{entry}}}, allowlist.Options{}); err != nil {
			invalid.Indexes = append(invalid.Indexes, i)
			invalid.Errs = append(invalid.Errs, err)
			continue
		}
		c.fbList[fb.Indicator.Key()] = entry
		changed = true
	}
	if !changed || c.fbTarget == nil {
		return invalid.orNil()
	}
	l := allowlist.List{Name: p.Feedback.AllowList, Description: "analyst feedback", Local: true}
	for k, e := range c.fbList {
		if !e.Expires.IsZero() && !now.Before(e.Expires) {
			delete(c.fbList, k)
			continue
		}
		l.Entries = append(l.Entries, e)
	}
	set, err := allowlist.Compile([]allowlist.List{l}, allowlist.Options{Now: c.now})
	if err != nil {
		return fmt.Errorf("apply feedback: %w", err)
	}
	c.fbTarget.SetOverlay(set)
	return invalid.orNil()
}

// FeedbackError lists the feedback records ApplyFeedback could not turn into
// allow-list entries (their values do not parse); every other record was
// applied. Retrying the invalid ones cannot succeed.
type FeedbackError struct {
	Indexes []int   // positions in the slice given to ApplyFeedback
	Errs    []error // one per index
}

func (e *FeedbackError) Error() string {
	return fmt.Sprintf("%d invalid feedback records: %v", len(e.Indexes), errors.Join(e.Errs...))
}

func (e *FeedbackError) orNil() error {
	if len(e.Indexes) == 0 {
		return nil
	}
	return e
}
