// Package stage is enrich's stream stage: Avro Observations in, Avro Enrichments out, one per input,
// keyed by the input's key.
//
// A poll batch is enriched with ONE EnrichBatch call, so the cache is looked up in one round trip and an
// indicator seen many times in the batch is fetched at most once. Outcomes:
//
//   - an undecodable record is dead-lettered (stream.Permanent, class "decode");
//   - a provider that fails yields a per-provider status in the Enrichment (partial enrichment), never
//     an error;
//   - a Required provider whose breaker is open makes Handle return an error wrapping stream.ErrPause
//     (and enricher.ErrRequiredProviderDown): the runner rewinds and pauses the batch's partitions;
//   - any other batch error (e.g. ctx ended) is returned; the runner retries the batch, then pauses.
package stage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/enrich/internal/cache"
	"github.com/vigilsec/vigil/services/enrich/internal/enricher"
)

// Error classes of dead-lettered records.
const (
	ClassDecode = "decode"
	ClassEncode = "encode"
)

// Enricher enriches a batch of observations (*enricher.Enricher). It returns one Enrichment per
// observation, in order, or an error and none; sorted, when not nil, holds per enrichment and result the
// result's Fields as events.SortedFields (nil where unknown), which the encoder writes instead of sorting
// the map.
type Enricher interface {
	EnrichBatchSorted(ctx context.Context, obs []events.Observation) (ens []events.Enrichment, sorted [][]events.SortedFields, err error)
}

// Reuser is implemented by an Enricher whose results can be served again to later observations of the same
// indicator (*enricher.Enricher); the Handler then keeps a record cache (Config.RecordCacheSize).
type Reuser interface {
	// ReuseKey is the key results are reused under.
	ReuseKey(ind events.Indicator, allowlisted bool) string
	// ReusableUntil reports until when results may be reused (zero: no answer limits it), or false.
	ReusableUntil(results []events.ProviderResult) (time.Time, bool)
	// Reused counts n provider results of status served from the record cache (as cache hits).
	Reused(provider, status string, n int64)
	// ReusedAge records the age of a reused answer at use.
	ReusedAge(provider string, age time.Duration)
	// ReuseScope identifies the configuration, for records shared between replicas.
	ReuseScope() string
}

// RecordStore is the shared tier of the record cache (*cache.Store on Redis): what one replica enriched,
// another (or this one after a restart) serves without the provider cache, merge and encode.
type RecordStore interface {
	// GetRecords returns the values of keys (nil where none) in one round trip.
	GetRecords(ctx context.Context, keys []string) ([][]byte, error)
	// SetRecords stores values with their TTLs in one round trip.
	SetRecords(ctx context.Context, keys []string, vals [][]byte, ttls []time.Duration) error
}

// Recorder is told about the Enrichments the handler returns, once per batch (*otelmetrics.Metrics counts
// results and coverage gaps). It is called before the runner produces the outputs, so a batch that is later
// re-delivered (failed produce, pause) is counted again. It must not block nor keep what it is given.
type Recorder interface {
	// Enriched counts enrichments the enricher produced.
	Enriched(ctx context.Context, ens []events.Enrichment)
	// EnrichedRepeats counts n results of provider with status in enrichments served from the record
	// cache, whose exposure country is country; called once per distinct triple and batch.
	EnrichedRepeats(ctx context.Context, provider, status, country string, n int64)
}

var (
	_ Enricher = (*enricher.Enricher)(nil)
	_ Reuser   = (*enricher.Enricher)(nil)
)

// Config configures a Handler.
type Config struct {
	OutTopic string // indicators.enriched

	// RecordCacheSize is how many indicators' encoded results (provider results and merged exposure, as
	// Avro) the handler keeps to serve later observations of the same indicator without a cache lookup,
	// merge or encode: the output is the input observation's bytes followed by the stored tail. 0
	// disables it. An entry is served until the earliest of its answers' expiry (the cache's freshness
	// rule) and RecordCacheTTL; errors, throttling and open breakers are never stored.
	RecordCacheSize int
	// RecordCacheTTL bounds an entry's life (default 10m, like the L1 cache), so a purge (vigilctl) or a
	// provider's new answer reaches every replica within it.
	RecordCacheTTL time.Duration
	// Shared, when set, is the record cache's shared tier: entries are also stored there (until their
	// answers expire) and looked up there, in one round trip per batch, for what the in-process tier
	// misses.
	Shared RecordStore
}

// reuseEntry is one indicator's encoded results in the record cache.
type reuseEntry struct {
	tail    []byte        // events.AppendEnrichmentTail of results and exposure
	until   time.Time     // served while now is before it (zero: until the entry's TTL)
	results []reuseResult // per provider, for the metrics
	country string        // exposure country, for the coverage metric
}

// reuseResult is what the metrics need of one provider result: provider and status (the enricher's and
// events' constant strings) and fetch time.
type reuseResult struct {
	provider, status string
	fetched          int64 // unix nanoseconds; 0 for none
}

// repeatCounts sums a batch's record-cache results per provider, status and country, so the metrics see one
// call per distinct triple rather than one per record (a batch has a few dozen triples).
type repeatCounts []repeatCount

type repeatCount struct {
	provider, status, country string
	n                         int64
}

func (c *repeatCounts) add(e *reuseEntry, n int64) {
	for _, r := range e.results {
		country := ""
		if r.status == events.StatusNotFound {
			country = e.country // only coverage gaps are counted by country
		}
		found := false
		for i := range *c {
			if x := &(*c)[i]; x.provider == r.provider && x.status == r.status && x.country == country {
				x.n += n
				found = true
				break
			}
		}
		if !found {
			*c = append(*c, repeatCount{r.provider, r.status, country, n})
		}
	}
}

// Handler implements stream.BatchHandler. Handle is called from one goroutine at a time.
type Handler struct {
	cfg    Config
	enr    Enricher
	reuser Reuser
	reuse  *expirable.LRU[string, *reuseEntry] // nil: no record cache
	serde  *events.Serde
	rec    Recorder
	log    *slog.Logger
	now    func() time.Time

	scratch []byte // tail encoding buffer (Handle runs on one goroutine at a time)
	scope   string // Reuser.ReuseScope, for shared keys

	// this batch's entries for the shared tier
	putKeys []string
	putVals [][]byte
	putTTLs []time.Duration
}

var _ stream.BatchHandler = (*Handler)(nil)

// New returns a Handler. rec and log may be nil. The record cache is used when cfg.RecordCacheSize > 0 and
// enr implements Reuser.
func New(cfg Config, enr Enricher, serde *events.Serde, rec Recorder, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.RecordCacheTTL <= 0 {
		cfg.RecordCacheTTL = 10 * time.Minute
	}
	h := &Handler{cfg: cfg, enr: enr, serde: serde, rec: rec, log: log, now: time.Now}
	if ru, ok := enr.(Reuser); ok && cfg.RecordCacheSize > 0 {
		h.reuser = ru
		h.reuse = expirable.NewLRU[string, *reuseEntry](cfg.RecordCacheSize, nil, cfg.RecordCacheTTL)
		h.scope = ru.ReuseScope()
	}
	return h
}

// pending is a decoded observation that goes through the enricher.
type pending struct {
	rec  int    // index in the batch
	body []byte // the observation's Avro body when it can be spliced, else nil
	key  string // ReuseKey, when the record cache is on
	ind  events.Indicator
	allw bool // allow-listed at ingest
}

// Handle implements stream.BatchHandler: one Result per record, one Enrichment output per decoded record.
//
// With the record cache, an observation whose indicator's results are stored (and fresh) is answered
// without the enricher: its output is its own bytes spliced with the stored tail. The rest go to the
// enricher in one call, and their results are stored for the next observations.
func (h *Handler) Handle(ctx context.Context, recs []*kgo.Record) ([]stream.Result, error) {
	res := make([]stream.Result, len(recs))
	obs := make([]events.Observation, 0, len(recs))
	todo := make([]pending, 0, len(recs)) // todo[j] is obs[j]
	now := h.now()
	var used map[*reuseEntry]int64 // entries served in this batch and how often
	for i, r := range recs {
		if h.reuse != nil {
			// A repeat is served from the record cache after reading only its indicator.
			if pk, ok := h.serde.PeekObservation(r.Value); ok {
				key := h.reuser.ReuseKey(pk.Indicator, pk.Allowlisted)
				if e, ok := h.reuse.Get(key); ok && (e.until.IsZero() || now.Before(e.until)) {
					h.emit(res, recs, i, h.serde.EncodeEnrichmentSpliced(pk.Body, e.tail, now), pk.Indicator)
					if used == nil {
						used = make(map[*reuseEntry]int64)
					}
					used[e]++
					continue
				}
			}
		}
		o, body, err := h.serde.DecodeObservationBody(ctx, r.Value)
		if err != nil {
			var de *events.DecodeError
			if errors.As(err, &de) {
				res[i].Err = stream.Permanent(ClassDecode, err)
			} else {
				res[i].Err = fmt.Errorf("decode observation: %w", err) // e.g. registry unreachable: retried
			}
			continue
		}
		p := pending{rec: i, body: body, ind: o.Indicator, allw: o.Allowlist != nil}
		if h.reuse != nil {
			p.key = h.reuser.ReuseKey(o.Indicator, o.Allowlist != nil)
		}
		obs = append(obs, o)
		todo = append(todo, p)
	}
	if h.cfg.Shared != nil && h.reuse != nil && len(todo) > 0 {
		obs, todo, used = h.fromShared(ctx, res, recs, obs, todo, used, now)
	}
	var counts repeatCounts
	for e, n := range used {
		counts.add(e, n)
	}
	for _, c := range counts {
		h.reuser.Reused(c.provider, c.status, c.n)
		if h.rec != nil {
			h.rec.EnrichedRepeats(ctx, c.provider, c.status, c.country, c.n)
		}
	}
	// Age at use: per provider and batch, the oldest answer served from the record cache (one
	// observation, not one per record: the histogram tracks how stale what is served gets).
	var oldest []reuseResult
	for e := range used {
		for _, r := range e.results {
			if r.fetched == 0 {
				continue
			}
			i := slices.IndexFunc(oldest, func(o reuseResult) bool { return o.provider == r.provider })
			switch {
			case i < 0:
				oldest = append(oldest, r)
			case r.fetched < oldest[i].fetched:
				oldest[i] = r
			}
		}
	}
	for _, r := range oldest {
		h.reuser.ReusedAge(r.provider, now.Sub(time.Unix(0, r.fetched)))
	}
	if len(obs) == 0 {
		return res, nil
	}
	ens, sorted, err := h.enr.EnrichBatchSorted(ctx, obs)
	switch {
	case errors.Is(err, enricher.ErrRequiredProviderDown):
		return nil, fmt.Errorf("enrich: %w: %w", stream.ErrPause, err)
	case err != nil:
		return nil, fmt.Errorf("enrich: %w", err)
	case len(ens) != len(obs):
		return nil, fmt.Errorf("enrich: %d enrichments for %d observations", len(ens), len(obs))
	}
	// emitted collects the encoded enrichments only once one failed to encode (rare); until then all are.
	var emitted []events.Enrichment
	encErr := false
	var tails map[string][]byte // this batch's tails, one per reuse key
	for j := range ens {
		p := todo[j]
		var fields []events.SortedFields
		if j < len(sorted) {
			fields = sorted[j]
		}
		var val []byte
		if h.reuse != nil && p.body != nil {
			tail, ok := tails[p.key]
			if !ok {
				tail = h.store(p.key, p.ind, p.allw, &ens[j], fields)
				if tails == nil {
					tails = make(map[string][]byte)
				}
				tails[p.key] = tail
			}
			val = h.serde.EncodeEnrichmentSpliced(p.body, tail, ens[j].EnrichedAt)
		} else {
			val, err = h.serde.EncodeEnrichmentSorted(&ens[j], fields)
			if err != nil {
				res[p.rec].Err = stream.Permanent(ClassEncode, err)
				if !encErr {
					encErr = true
					emitted = append(emitted, ens[:j]...)
				}
				continue
			}
		}
		h.emit(res, recs, p.rec, val, ens[j].Observation.Indicator)
		if encErr {
			emitted = append(emitted, ens[j])
		}
	}
	h.flushShared(ctx)
	if h.rec != nil {
		if !encErr {
			emitted = ens
		}
		h.rec.Enriched(ctx, emitted)
	}
	return res, nil
}

// emit sets record i's output: val keyed by the input's key (or the indicator's when it has none).
func (h *Handler) emit(res []stream.Result, recs []*kgo.Record, i int, val []byte, ind events.Indicator) {
	key := recs[i].Key
	if len(key) == 0 {
		key = []byte(ind.Key())
	}
	res[i].Outputs = []*kgo.Record{{Topic: h.cfg.OutTopic, Key: key, Value: val}}
}

// store encodes an enrichment's tail and keeps it in the record cache when its results may be reused. It
// returns the tail either way.
func (h *Handler) store(key string, ind events.Indicator, allowlisted bool, en *events.Enrichment, sorted []events.SortedFields) []byte {
	h.scratch = events.AppendEnrichmentTail(h.scratch[:0], en.Results, sorted, &en.Exposure)
	tail := bytes.Clone(h.scratch) // exact size: the entry lives long
	until, ok := h.reuser.ReusableUntil(en.Results)
	if !ok || (!until.IsZero() && !en.EnrichedAt.Before(until)) {
		h.reuse.Remove(key)
		return tail
	}
	// Own copies of strings only: a decoded cache entry's strings may share one buffer with all of its
	// fields, which the entry would otherwise keep alive.
	rs := make([]reuseResult, len(en.Results))
	for i, r := range en.Results {
		rs[i] = reuseResult{provider: r.Provider, status: statusString(r.Status)}
		if !r.FetchedAt.IsZero() {
			rs[i].fetched = r.FetchedAt.UnixNano()
		}
	}
	e := &reuseEntry{tail: tail, until: until, results: rs, country: strings.Clone(en.Exposure.Country)}
	h.reuse.Add(key, e)
	if h.cfg.Shared != nil {
		ttl := h.cfg.RecordCacheTTL
		if !until.IsZero() {
			ttl = until.Sub(en.EnrichedAt)
		}
		h.putKeys = append(h.putKeys, cache.RecordKey(h.scope, allowlisted, ind))
		h.putVals = append(h.putVals, e.marshal())
		h.putTTLs = append(h.putTTLs, ttl)
	}
	return tail
}

// statusString returns the constant for a result status (no reference to the decoded record's memory).
func statusString(s string) string {
	for _, c := range [...]string{events.StatusOK, events.StatusNotFound, events.StatusSkipped} {
		if s == c {
			return c
		}
	}
	return strings.Clone(s)
}

// fromShared serves the pending observations whose indicator the shared tier has (one round trip for the
// batch's distinct keys), adds those entries to the in-process tier and returns what is left for the
// enricher. A shared-tier error only costs the lookup: the records go to the enricher.
func (h *Handler) fromShared(ctx context.Context, res []stream.Result, recs []*kgo.Record, obs []events.Observation, todo []pending,
	used map[*reuseEntry]int64, now time.Time) ([]events.Observation, []pending, map[*reuseEntry]int64) {
	idx := map[string]int{} // reuse key -> index in keys
	var keys, rkeys []string
	for _, p := range todo {
		if p.body == nil {
			continue
		}
		if _, ok := idx[p.key]; !ok {
			idx[p.key] = len(keys)
			keys = append(keys, p.key)
			rkeys = append(rkeys, cache.RecordKey(h.scope, p.allw, p.ind))
		}
	}
	if len(keys) == 0 {
		return obs, todo, used
	}
	vals, err := h.cfg.Shared.GetRecords(ctx, rkeys)
	if err != nil {
		h.log.WarnContext(ctx, "shared record cache lookup", "keys", len(rkeys), "err", err)
	}
	found := make([]*reuseEntry, len(keys))
	n := 0
	for i, v := range vals {
		if v == nil {
			continue
		}
		e, ok := unmarshalEntry(v)
		if !ok || (!e.until.IsZero() && !now.Before(e.until)) {
			continue
		}
		found[i] = e
		h.reuse.Add(keys[i], e)
		n++
	}
	if n == 0 {
		return obs, todo, used
	}
	keptObs, keptTodo := obs[:0], todo[:0]
	for j, p := range todo {
		var e *reuseEntry
		if p.body != nil {
			e = found[idx[p.key]]
		}
		if e == nil {
			keptObs, keptTodo = append(keptObs, obs[j]), append(keptTodo, p)
			continue
		}
		h.emit(res, recs, p.rec, h.serde.EncodeEnrichmentSpliced(p.body, e.tail, now), p.ind)
		if used == nil {
			used = make(map[*reuseEntry]int64)
		}
		used[e]++
	}
	return keptObs, keptTodo, used
}

// flushShared writes the batch's new entries to the shared tier in one round trip (best effort).
func (h *Handler) flushShared(ctx context.Context) {
	if len(h.putKeys) == 0 {
		return
	}
	if err := h.cfg.Shared.SetRecords(ctx, h.putKeys, h.putVals, h.putTTLs); err != nil {
		h.log.WarnContext(ctx, "shared record cache write", "keys", len(h.putKeys), "err", err)
	}
	clear(h.putVals)
	h.putKeys, h.putVals, h.putTTLs = h.putKeys[:0], h.putVals[:0], h.putTTLs[:0]
}

// Status codes of a marshalled entry.
var entryStatuses = [...]string{events.StatusOK, events.StatusNotFound, events.StatusSkipped}

// marshal encodes e for the shared tier: a version byte, until (unix ms, 0 none), the results (provider,
// status, fetch time), the country, then the tail.
func (e *reuseEntry) marshal() []byte {
	b := make([]byte, 0, len(e.tail)+16+24*len(e.results)+len(e.country))
	b = append(b, 1)
	var until int64
	if !e.until.IsZero() {
		until = e.until.UnixMilli()
	}
	b = binary.AppendVarint(b, until)
	b = binary.AppendUvarint(b, uint64(len(e.results)))
	for _, r := range e.results {
		b = binary.AppendUvarint(b, uint64(len(r.provider)))
		b = append(b, r.provider...)
		b = append(b, byte(slices.Index(entryStatuses[:], r.status)))
		b = binary.AppendVarint(b, r.fetched)
	}
	b = binary.AppendUvarint(b, uint64(len(e.country)))
	b = append(b, e.country...)
	return append(b, e.tail...)
}

// unmarshalEntry decodes marshal's output; false for anything else.
func unmarshalEntry(b []byte) (*reuseEntry, bool) {
	if len(b) == 0 || b[0] != 1 {
		return nil, false
	}
	b = b[1:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	until, k := binary.Varint(b)
	if k <= 0 {
		return nil, false
	}
	b = b[k:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > 64 {
		return nil, false
	}
	b = b[k:]
	e := &reuseEntry{results: make([]reuseResult, n)}
	if until != 0 {
		e.until = time.UnixMilli(until)
	}
	for i := range e.results {
		p, ok := str()
		if !ok || len(b) == 0 || int(b[0]) >= len(entryStatuses) {
			return nil, false
		}
		st := entryStatuses[b[0]]
		b = b[1:]
		f, k := binary.Varint(b)
		if k <= 0 {
			return nil, false
		}
		b = b[k:]
		e.results[i] = reuseResult{provider: p, status: st, fetched: f}
	}
	c, ok := str()
	if !ok {
		return nil, false
	}
	e.country = c
	e.tail = bytes.Clone(b)
	return e, true
}
