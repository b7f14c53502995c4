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
// The stream stage uses Correlate, which acks the previous batches'
// verdicts in the batch's store round trip, and acks each verdict with the
// enrichment it was decided on (Published), so that Rescore can evaluate
// the indicator again when decay or the refresh interval may change its
// verdict without a new sighting.
//
// Ack after the produce is acknowledged keeps delivery at-least-once: if the
// process dies between Process and Ack, the replayed records are not counted
// again (state dedupes on source offsets) but their verdicts are emitted
// again, because the last published verdict was not updated.
//
// Analyst decisions (ApplyFeedback) are kept in the Store with the
// false-positive counters (Stats): on Redis every replica applies them and
// they survive restarts; each feedback record counts once.
package correlator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

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

// Assets finds the internal asset of a sighting (*assets.Inventory satisfies it).
type Assets interface {
	Lookup(ip, host string) (assets.Asset, bool)
}

// Store is the correlation state, the analyst allow entries and the
// false-positive counters (state.Redis and state.Memory satisfy it).
type Store interface {
	Apply(ctx context.Context, batch []events.Enrichment) ([]state.Summary, error)
	ApplyBatch(ctx context.Context, published []state.LastVerdict, batch []events.Enrichment) (state.Batch, error)
	Priors(ctx context.Context, keys []string) ([]state.Prior, error)
	SavePublished(ctx context.Context, vs []state.LastVerdict) error
	RecordFeedback(ctx context.Context, recs []state.FeedbackRecord) (int, error)
	KPI(ctx context.Context) (state.KPI, error)
	// the decay schedule (see Rescore and state.DecayStore)
	ClaimDue(ctx context.Context, partitions []int32, limit int) ([]state.Due, error)
	LoadDue(ctx context.Context, due []state.Due) ([]state.Pending, error)
	Reschedule(ctx context.Context, rs []state.Rescheduled) error
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

// StatsSnapshot are the false-positive KPI counters, read from the store
// (shared by every replica on Redis, and kept across restarts).
type StatsSnapshot struct {
	Emitted        map[string]int64 // verdicts published (acknowledged by Kafka), per action
	FalsePositives map[string]int64 // analyst allow decisions, per preceding Vigil action
	Feedback       int64            // feedback records applied (each once)
}

// FPRate returns false positives / published verdicts for an action (0 when none).
func (s StatsSnapshot) FPRate(action string) float64 {
	if s.Emitted[action] == 0 {
		return 0
	}
	return float64(s.FalsePositives[action]) / float64(s.Emitted[action])
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
}

// ErrNilDependency is returned by New when a required dependency is missing.
var ErrNilDependency = errors.New("nil dependency")

// New builds a Correlator. lists and inv may be nil (no lists, no assets).
// now nil means time.Now.
func New(p *PolicyHolder, lists Lists, inv Assets, store Store, now func() time.Time, log *slog.Logger) (*Correlator, error) {
	if p == nil || p.Load() == nil || store == nil || log == nil {
		return nil, fmt.Errorf("new correlator: %w", ErrNilDependency)
	}
	if now == nil {
		now = time.Now
	}
	return &Correlator{policy: p, lists: lists, assets: inv, store: store, now: now, log: log}, nil
}

// Policy returns the policy in force.
func (c *Correlator) Policy() *policy.Policy { return c.policy.Load() }

// Stats returns the false-positive counters from the store.
func (c *Correlator) Stats(ctx context.Context) (StatsSnapshot, error) {
	k, err := c.store.KPI(ctx)
	if err != nil {
		return StatsSnapshot{}, fmt.Errorf("stats: %w", err)
	}
	return StatsSnapshot{Emitted: k.Published, FalsePositives: k.FalsePositives, Feedback: k.Feedback}, nil
}

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
// changed enough to publish. See Correlate, which it wraps.
func (c *Correlator) Process(ctx context.Context, batch []events.Enrichment) ([]events.Verdict, error) {
	outs, err := c.Correlate(ctx, nil, batch)
	if err != nil || len(outs) == 0 {
		return nil, err
	}
	vs := make([]events.Verdict, len(outs))
	for i := range outs {
		vs[i] = outs[i].Verdict
	}
	return vs, nil
}

// Output is a verdict to publish and the index, in the batch given to
// Correlate, of the record it was decided on (its indicator's last record).
type Output struct {
	Verdict events.Verdict
	Record  int
	// LastObserved is when Vigil last received a sighting of the indicator,
	// as the verdict was decided (for Published).
	LastObserved time.Time
}

// Published is a verdict Kafka acknowledged, as it is acked to the
// correlator: the verdict and, to evaluate the indicator again without a
// new sighting (Rescore), what it was decided on.
type Published struct {
	Verdict events.Verdict
	// Enrichment is the encoded enrichment (pkg/events Serde) the verdict
	// was decided on, as consumed: the input record's value. Nil leaves the
	// indicator's decay schedule as it was.
	Enrichment []byte
	// Partition is the input partition of that record.
	Partition int32
	// LastObserved is Output.LastObserved.
	LastObserved time.Time
}

// Correlate acks acked (as Ack does: verdicts Kafka acknowledged since the
// last call, may be empty), records the sightings of batch and returns the
// verdicts to publish, at most one per indicator, ordered by the index of
// the record each was decided on. It costs one Redis round trip per batch
// (state.Store.ApplyBatch: published verdicts, sightings, summaries, last
// verdicts and analyst allow entries). On error nothing is known to be
// acked: call it again with acked.
//
// An indicator with an analyst allow entry in force (see ApplyFeedback) is
// matched on the entry's allow list (the policy's feedback.allow_list),
// whatever its enrichment says, and the analyst's decision is added to the
// verdict's reasons (code policy.CodeAnalystAllow). The entries are read
// from the store with the last verdicts, so every replica applies a decision
// from its next batch on.
//
// An indicator's verdict is evaluated once per batch, on its last record:
// that record's summary already includes every earlier record of the
// indicator in the batch, and its enrichment is the freshest. The emit rules
// compare it with the verdict published before the batch. Evaluating each
// record and publishing the first would publish the summary of the first
// sighting only, and the re-emit rules would then hold back the later ones.
func (c *Correlator) Correlate(ctx context.Context, acked []Published, batch []events.Enrichment) ([]Output, error) {
	if len(batch) == 0 {
		return nil, c.AckPublished(ctx, acked)
	}
	lvs := c.lastVerdicts(acked)
	b, err := c.store.ApplyBatch(ctx, lvs, batch)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	releaseEnrichments(lvs)
	if len(b.Keys) != len(b.Last) || len(b.Keys) != len(b.Summaries) || len(b.Keys) != len(b.Priors) {
		return nil, fmt.Errorf("process: %w", errStoreReply)
	}
	p := c.policy.Load()
	now := c.now()
	var out []Output
	for k := range b.Keys {
		var prev *policy.Previous
		if b.Priors[k].HasVerdict {
			pv := previous(b.Priors[k].Verdict)
			prev = &pv
		}
		i := b.Last[k]
		v, in := decide(p, c.lists, c.assets, &batch[i], b.Summaries[k], prev, b.Priors[k].Allow, now)
		if p.ShouldEmit(v, prev) {
			explain(p, in, &v, b.Priors[k].Allow)
			out = append(out, Output{Verdict: v, Record: i, LastObserved: b.Summaries[k].LastObserved})
		}
	}
	slices.SortFunc(out, func(a, b Output) int { return a.Record - b.Record })
	return out, nil
}

var errStoreReply = errors.New("store returned a batch of the wrong shape")

func previous(l state.LastVerdict) policy.Previous {
	return policy.Previous{Priority: l.Priority, Level: l.Level, Action: l.Action, EmittedAt: l.EmittedAt,
		Sightings: l.Sightings, DistinctAssets: l.DistinctAssets}
}

// evaluate is decide and explain: the verdict as published.
func evaluate(p *policy.Policy, lists Lists, inv Assets, e *events.Enrichment, sum state.Summary, prev *policy.Previous, allow *state.AllowEntry, now time.Time) events.Verdict {
	v, in := decide(p, lists, inv, e, sum, prev, allow, now)
	explain(p, in, &v, allow)
	return v
}

// decide gathers the policy input of one indicator (lists, analyst entry,
// asset) and decides its verdict (policy.Decide): enough for the emit rules
// and the decay schedule, without what only a published verdict carries.
func decide(p *policy.Policy, lists Lists, inv Assets, e *events.Enrichment, sum state.Summary, prev *policy.Previous, allow *state.AllowEntry, now time.Time) (events.Verdict, policy.Input) {
	in := policy.Input{Enrichment: e, Summary: sum.SightingSummary, LastObserved: sum.LastObserved, Previous: prev, Now: now}
	if allow != nil {
		in.Lists = append(in.Lists, events.ListMatch{List: allowList(p, allow), Reason: analystText(allow) + " (" + e.Observation.Indicator.Value + ")"})
	}
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
	return p.Decide(in), in
}

// explain completes a decided verdict for publication (policy.Explain) and
// adds the analyst's decision in force to its reasons. The analyst reason
// weighs nothing, so a verdict that is only decided scores and schedules the
// same without it.
func explain(p *policy.Policy, in policy.Input, v *events.Verdict, allow *state.AllowEntry) {
	p.Explain(in, v)
	if allow != nil {
		v.Reasons = append(v.Reasons, events.Reason{Code: policy.CodeAnalystAllow, Text: policy.CodeAnalystAllow + "=" + analystText(allow)})
	}
}

// allowList is the list an analyst entry matches on: the one it was recorded
// with, else the policy's feedback allow list.
func allowList(p *policy.Policy, a *state.AllowEntry) string {
	if a.List != "" {
		return a.List
	}
	return p.Feedback.AllowList
}

// analystText renders an analyst decision as evidence.
func analystText(a *state.AllowEntry) string {
	who := a.Analyst
	if who == "" {
		who = "(unknown)"
	}
	text := "analyst " + who + ": " + a.Reason
	if !a.ExpiresAt.IsZero() {
		text += " (until " + a.ExpiresAt.UTC().Format(time.RFC3339) + ")"
	}
	return text
}

// Ack records verdicts as published (call it after Kafka acknowledged
// them): their priority becomes the previous priority and their level the
// reference for re-emits, and each counts as a published verdict of its
// action (the false-positive rate's denominator). One Redis round trip.
// It leaves the indicators' decay schedules alone (see AckPublished).
func (c *Correlator) Ack(ctx context.Context, verdicts []events.Verdict) error {
	if len(verdicts) == 0 {
		return nil
	}
	ps := make([]Published, len(verdicts))
	for i := range verdicts {
		ps[i].Verdict = verdicts[i]
	}
	return c.AckPublished(ctx, ps)
}

// AckPublished is Ack for verdicts acked with what they were decided on:
// each one with an Enrichment also (re)schedules its indicator's decay
// re-scoring at the policy's NextReview, or unschedules it when nothing can
// change without a new sighting. One Redis round trip.
func (c *Correlator) AckPublished(ctx context.Context, published []Published) error {
	if len(published) == 0 {
		return nil
	}
	lvs := c.lastVerdicts(published)
	if err := c.store.SavePublished(ctx, lvs); err != nil {
		return fmt.Errorf("ack verdicts: %w", err)
	}
	releaseEnrichments(lvs)
	return nil
}

// lastVerdicts turns published verdicts into what the store keeps of them,
// with the review of those acked with their enrichment.
func (c *Correlator) lastVerdicts(published []Published) []state.LastVerdict {
	if len(published) == 0 {
		return nil
	}
	p := c.policy.Load()
	now := c.now()
	vs := make([]state.LastVerdict, 0, len(published))
	for i := range published {
		pub := &published[i]
		v := &pub.Verdict
		lv := state.LastVerdict{Key: v.Indicator.Key(), Priority: v.Priority, Level: v.Level, Action: v.Action, DecidedAt: v.DecidedAt, EmittedAt: v.DecidedAt,
			Sightings: v.Sightings.Count, DistinctAssets: v.Sightings.DistinctAssets}
		if pub.Enrichment != nil {
			due, _ := p.NextReview(policy.Review{Score: p.ReviewScore(v), Priority: v.Priority, LastObserved: pub.LastObserved, EmittedAt: v.DecidedAt, Now: now})
			lv.Review = &state.Review{Enrichment: pub.Enrichment, LastObserved: pub.LastObserved, Partition: pub.Partition, Due: due}
		}
		vs = append(vs, lv)
	}
	return vs
}

// releaseEnrichments drops the reviews' references to the enrichment bytes
// once the store has written them, so that a store keeping LastVerdicts in
// process (the Redis store's owner-side cache) does not keep them alive.
func releaseEnrichments(lvs []state.LastVerdict) {
	for i := range lvs {
		if rv := lvs[i].Review; rv != nil {
			rv.Enrichment = nil
		}
	}
}

// FeedbackRecord is an analyst decision and the Kafka record it was read
// from (the coordinates make a replayed record count once).
type FeedbackRecord struct {
	Feedback  events.Feedback
	Topic     string
	Partition int32
	Offset    int64
}

// feedbackStatusChanged is the events.Feedback kind of a status change.
const feedbackStatusChanged = "status_changed"

// ApplyFeedback records analyst decisions in the store, each source record
// at most once (a replayed or redelivered record changes nothing):
//
//   - a status change to one of the policy's feedback.allow_statuses becomes
//     the indicator's allow entry (list feedback.allow_list, expiring after
//     feedback.allow_ttl, with the analyst and reason as evidence) and counts
//     as a false positive of the Vigil action that preceded it;
//   - a status change from an allow status to another status removes the
//     entry (the analyst took the decision back);
//   - every record counts as feedback.
//
// On Redis the entries and counters are shared by every replica and survive
// restarts. Records whose indicator cannot be matched (empty value, an IP
// that does not parse) are skipped and reported in a *FeedbackError; the
// others are applied. Retrying those cannot succeed.
func (c *Correlator) ApplyFeedback(ctx context.Context, fbs []FeedbackRecord) error {
	if len(fbs) == 0 {
		return nil
	}
	p := c.policy.Load()
	now := c.now()
	var invalid FeedbackError
	recs := make([]state.FeedbackRecord, 0, len(fbs))
	for i := range fbs {
		fb := &fbs[i].Feedback
		if err := validIndicator(fb.Indicator); err != nil {
			invalid.Indexes = append(invalid.Indexes, i)
			invalid.Errs = append(invalid.Errs, err)
			continue
		}
		r := state.FeedbackRecord{Source: state.FeedbackSource(fbs[i].Topic, fbs[i].Partition, fbs[i].Offset), Key: canonical(fb.Indicator).Key()}
		if fb.Kind == feedbackStatusChanged {
			switch {
			case p.IsAllowStatus(fb.NewStatus):
				r.FalsePositive = fb.VigilAction
				r.Allow = &state.AllowEntry{List: p.Feedback.AllowList, Analyst: fb.Analyst, Reason: fb.Reason, ExpiresAt: now.Add(p.Feedback.AllowTTL)}
			case p.IsAllowStatus(fb.PreviousStatus):
				r.Revoke = true
			}
		}
		recs = append(recs, r)
	}
	if len(recs) > 0 {
		n, err := c.store.RecordFeedback(ctx, recs)
		if err != nil {
			return fmt.Errorf("apply feedback: %w", err)
		}
		if n < len(recs) {
			c.log.DebugContext(ctx, "feedback replayed", "records", len(recs), "new", n)
		}
	}
	return invalid.orNil()
}

// canonical returns ind in the canonical form the other stages key
// indicators by (ThreatQ may spell an address or a domain differently).
// ind must have passed validIndicator.
func canonical(ind events.Indicator) events.Indicator {
	switch ind.Type {
	case events.TypeIPv4, events.TypeIPv6:
		a, _ := netip.ParseAddr(ind.Value)
		a = a.WithZone("").Unmap()
		ind.Value = a.String()
		if ind.Type = events.TypeIPv6; a.Is4() {
			ind.Type = events.TypeIPv4
		}
	case events.TypeDomain:
		ind.Value = strings.TrimSuffix(strings.ToLower(ind.Value), ".")
	}
	return ind
}

// ErrBadIndicator is the error of a feedback record whose indicator cannot be matched.
var ErrBadIndicator = errors.New("unusable feedback indicator")

// validIndicator reports whether an analyst decision names an indicator a
// verdict can match.
func validIndicator(ind events.Indicator) error {
	if ind.Value == "" {
		return fmt.Errorf("indicator %q: %w", ind.Key(), ErrBadIndicator)
	}
	if ind.Type == events.TypeIPv4 || ind.Type == events.TypeIPv6 {
		if _, err := netip.ParseAddr(ind.Value); err != nil {
			return fmt.Errorf("indicator %q: %w", ind.Key(), errors.Join(ErrBadIndicator, err))
		}
	}
	return nil
}

// FeedbackError lists the feedback records ApplyFeedback could not apply
// because their indicator cannot be matched (empty value, an IP that does not
// parse; each error wraps ErrBadIndicator); every other record was applied.
// Retrying the invalid ones cannot succeed.
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
