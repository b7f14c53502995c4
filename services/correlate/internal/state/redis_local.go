package state

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/pkg/events"
)

// Owner-side state: the arithmetic of applyScript done in Go.
//
// An indicator's records all reach one correlate replica (its partition's
// owner), so the owner can keep the indicator's state hash in process and
// compute the new counters itself. Redis then only stores: per poll, one
// MULTI/EXEC transaction writes every changed indicator's whole state image
// (HSET of all its fields, HDEL of pruned buckets, PFADD of its assets) and
// reads the distinct-asset counts back (PFCOUNT), so each record costs a
// few native commands instead of a script's interpretation. An indicator
// not in the local cache is read first (HGETALL of its state, HMGET of its
// last verdict): a second round trip, only for the batch's new indicators.
//
// The layout and its meaning are applyScript's (the same fields, marks and
// window caches), so replicas running the script path (Redis Cluster) and
// this path read each other's state. Replay safety is unchanged: a record
// is applied only when its raw offset is above its partition's mark, and
// the mark moves in the same transaction as the counters.
//
// The cache is only valid while this replica owns the indicator's
// partition: [Redis.Forget] drops it, and correlate calls it whenever
// partitions are revoked or lost. Entries also expire after an hour
// without use, and every entry a failed transaction touched is dropped, so
// the next batch reads it again. A state written before the version marker
// (v2) or any other unexpected layout makes the batch take the script path.

// localTTL bounds how long an indicator's state is trusted without use;
// far below the state's Redis TTL (StateTTL >= 8 days).
const localTTL = time.Hour

// lfield is a named counter of the state hash (a:<action>, d:<direction>)
// or a high-water mark (o:<topic>:<partition>).
type lfield struct {
	name string
	v    int64
}

// lbucket is a minute or hour bucket.
type lbucket struct{ k, v int64 }

// lstate is one indicator's state hash as this replica last wrote or read it.
type lstate struct {
	count, first, last, obs, sev int64
	ex                           int64 // minute of the last TTL refresh (0: none)
	as                           int64 // distinct assets (HyperLogLog count)
	asKnown                      bool
	counters                     []lfield // a:<action> and d:<direction>
	marks                        []lfield // o:<topic>:<partition> -> highest raw offset applied
	mins, hours                  []lbucket
	// legacy: loaded with sightings, so a partition without a mark may have
	// seen markers of the layout before the marks.
	legacy     bool
	verdict    LastVerdict
	hasVerdict bool
	// full: the next write stores every field (the state was just read or
	// created here); after that only the fields a batch changed.
	full bool
	// wmLive: the hash holds window caches (wm, w1, w24, w7) a script-path
	// reader would trust; the next write invalidates them (wm = -1), since
	// this path does not keep them up to date.
	wmLive bool
	// asField: the hash holds a distinct-asset count ("as") a script-path
	// reader would trust; cleared when assets are added.
	asField bool
	// known holds hashes of the first assets this replica added to the
	// indicator's HyperLogLog (nKnown of them): a repeat sighting from one
	// of them needs neither PFADD nor PFCOUNT, since adding an element the
	// HyperLogLog already holds changes nothing. Empty after a read from
	// Redis (the first repeat then does one PFADD).
	known  [maxKnownAssets]uint64
	nKnown uint8
	// vex and rex are the minutes this replica last refreshed the TTLs of
	// the indicator's last-verdict hash and review stash (0: never, or the
	// stash was deleted since); refreshed at most hourly, like the state
	// hash's (ex).
	vex, rex int64
}

// maxKnownAssets bounds the assets a cached state remembers (most
// indicators are seen by one or a few internal hosts).
const maxKnownAssets = 4

// assetSeed seeds the hashes of known assets (process-local only).
var assetSeed = maphash.MakeSeed()

// knowsAsset reports whether a is one of the assets st remembers adding,
// and remembers it when there is room. Call it only for an asset about to
// be written in the same transaction.
func (st *lstate) knowsAsset(a string) bool {
	h := maphash.String(assetSeed, a)
	for _, k := range st.known[:st.nKnown] {
		if k == h {
			return true
		}
	}
	if int(st.nKnown) < maxKnownAssets {
		st.known[st.nKnown] = h
		st.nKnown++
	}
	return false
}

// ttlFresh says which TTLs of the indicator's verdict keys need no refresh
// for a verdict published at nowMin with review rv, and notes the refreshes
// it leaves to do.
func (st *lstate) ttlFresh(rv *Review, nowMin int64) ttlFresh {
	var f ttlFresh
	if st.hasVerdict && st.vex > 0 && nowMin-st.vex < 60 {
		f.verdict = true
	} else {
		st.vex = nowMin
	}
	switch {
	case rv == nil:
	case rv.Due.IsZero():
		st.rex = 0 // the stash is deleted
	case st.rex > 0 && nowMin-st.rex < 60:
		f.review = true
	default:
		st.rex = nowMin
	}
	return f
}

// fixedFields are the scalar fields, to write only those a batch changed.
type fixedFields struct{ count, first, last, obs, sev, ex int64 }

func (st *lstate) fixed() fixedFields {
	return fixedFields{st.count, st.first, st.last, st.obs, st.sev, st.ex}
}

// touched lists what one batch changed in a state beyond the fixed fields.
type touched struct {
	fields      []string // counters and marks
	mins, hours []int64
}

func (t *touched) reset() {
	t.fields, t.mins, t.hours = t.fields[:0], t.mins[:0], t.hours[:0]
}

func (t *touched) field(name string) {
	if !slices.Contains(t.fields, name) {
		t.fields = append(t.fields, name)
	}
}

func (t *touched) bucket(bs *[]int64, k int64) {
	if !slices.Contains(*bs, k) {
		*bs = append(*bs, k)
	}
}

func findFieldBytes(fs []lfield, name []byte) int {
	for i := range fs {
		if fs[i].name == string(name) {
			return i
		}
	}
	return -1
}

// actionField and directionField name the counter fields, without an
// allocation for the usual values.
func actionField(a string) string {
	switch a {
	case events.ActionAllowed:
		return "a:" + events.ActionAllowed
	case events.ActionBlocked:
		return "a:" + events.ActionBlocked
	case events.ActionAlerted:
		return "a:" + events.ActionAlerted
	}
	return "a:" + a
}

func directionField(d string) string {
	switch d {
	case "", events.DirectionUnknown:
		return "d:" + events.DirectionUnknown
	case events.DirectionInbound:
		return "d:" + events.DirectionInbound
	case events.DirectionOutbound:
		return "d:" + events.DirectionOutbound
	}
	return "d:" + d
}

func findField(fs []lfield, name string) int {
	for i := range fs {
		if fs[i].name == name {
			return i
		}
	}
	return -1
}

func addBucket(bs []lbucket, k, n int64) []lbucket {
	for i := range bs {
		if bs[i].k == k {
			bs[i].v += n
			return bs
		}
	}
	return append(bs, lbucket{k, n})
}

// lockShards is how many locks guard the cached states, by key hash: calls
// whose indicators hash to different shards run in parallel.
const lockShards = 64

// localCache holds the owner-side states; safe for concurrent use. A call
// holds the locks of every shard its keys fall in (in shard order) for as
// long as it reads or changes their states.
type localCache struct {
	locks [lockShards]sync.Mutex
	lru   *expirable.LRU[string, *lstate]
}

func newLocalCache(size int) *localCache {
	return &localCache{lru: expirable.NewLRU[string, *lstate](size, nil, localTTL)}
}

// KeyShard is the lock shard of an indicator key, in [0, 64). A caller that
// splits a batch into n parts run in parallel, n a power of two up to 64, by
// KeyShard(key) % n, gets parts whose store calls never wait for each other.
func KeyShard(key string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % lockShards)
}

// lock takes the locks of the shards of keys and of published's keys and
// returns the function that releases them.
func (c *localCache) lock(keys []string, published []LastVerdict) (unlock func()) {
	var mask uint64
	for _, k := range keys {
		mask |= 1 << KeyShard(k)
	}
	for i := range published {
		mask |= 1 << KeyShard(published[i].Key)
	}
	for i := range lockShards {
		if mask&(1<<i) != 0 {
			c.locks[i].Lock()
		}
	}
	return func() {
		for i := range lockShards {
			if mask&(1<<i) != 0 {
				c.locks[i].Unlock()
			}
		}
	}
}

// Forget drops every indicator state this replica keeps in process (see
// Config.LocalStates). Call it when partitions are revoked or lost: another
// replica may write those indicators from now on.
func (r *Redis) Forget() {
	if r.local != nil {
		r.local.lru.Purge()
	}
}

// forgetKeys drops the local states of keys.
func (r *Redis) forgetKeys(keys []string) {
	if r.local == nil {
		return
	}
	for _, k := range keys {
		r.local.lru.Remove(k)
	}
}

// noteVerdicts updates the last verdicts of cached states after they were
// stored in Redis. It takes the cache lock: the decay sweeper acks verdicts
// (SavePublished) while the stream path runs applyLocal.
func (r *Redis) noteVerdicts(vs []LastVerdict) {
	if r.local == nil {
		return
	}
	defer r.local.lock(nil, vs)()
	for _, v := range vs {
		if st, ok := r.local.lru.Peek(v.Key); ok {
			st.verdict, st.hasVerdict = v, true
			if v.Review != nil {
				st.rex = 0 // the stash may have been deleted: refresh its TTL next time
			}
		}
	}
}

// errScriptPath makes applyLocal hand the batch to the script path.
var errScriptPath = fmt.Errorf("state layout needs the script path")

// applyLocal is ApplyBatch on owner-side state (see above). It returns
// errScriptPath, having changed nothing, when the script path must run.
func (r *Redis) applyLocal(ctx context.Context, published []LastVerdict, batch []events.Enrichment, g grouping) (Batch, error) {
	defer r.local.lock(g.keys, published)()
	now := r.cfg.Now()
	states := make([]*lstate, len(g.keys))
	var missing []int
	for k, key := range g.keys {
		if st, ok := r.local.lru.Get(key); ok {
			states[k] = st
		} else {
			missing = append(missing, k)
		}
	}
	// Records whose partition has no mark on a state that may hold seen
	// markers of the previous layout: their markers are read in the first
	// round trip (states read now are checked as if they were such states).
	type legacyCheck struct {
		rec int
		cmd *redis.IntCmd
	}
	var checks []legacyCheck
	legacyDup := map[int]bool{}
	if len(missing) > 0 || r.anyLegacy(states, batch, g) {
		pipe := r.client.Pipeline()
		hashes := make([]*redis.MapStringStringCmd, len(missing))
		verdicts := make([]*redis.SliceCmd, len(missing))
		for j, k := range missing {
			base := tag(g.keys[k])
			hashes[j] = pipe.HGetAll(ctx, base+":h")
			verdicts[j] = pipe.HMGet(ctx, base+":v", "priority", "level", "action", "decided_at", "emitted_at", "sightings", "assets")
		}
		for k, key := range g.keys {
			st := states[k]
			for _, i := range g.order[g.start[k]:g.start[k+1]] {
				o := &batch[i].Observation
				if st != nil && (!st.legacy || findField(st.marks, markName(o)) >= 0) {
					continue
				}
				checks = append(checks, legacyCheck{i, pipe.Exists(ctx, tag(key)+":seen:"+seenID(*o))})
			}
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return Batch{}, err
		}
		for j, k := range missing {
			st, ok := parseState(hashes[j].Val())
			if !ok {
				return Batch{}, errScriptPath
			}
			st.verdict, st.hasVerdict = parseVerdictFields(g.keys[k], verdicts[j].Val())
			states[k] = st
		}
		for _, c := range checks {
			legacyDup[c.rec] = c.cmd.Val() == 1
		}
	}

	w := r.cfg.Windows
	nowMs := now.UnixMilli()
	nowMin, nowHour := nowMs/60000, nowMs/3600000
	shortFrom := nowMin - int64(w.Short/time.Minute) + 1
	medFrom := nowHour - int64(w.Medium/time.Hour) + 1
	longFrom := nowHour - int64(w.Long/time.Hour) + 1

	// Published verdicts first: the priors below include them. A published
	// key's state is the cached one, or the one this batch just read.
	// Their TTLs (last-verdict hash, review stash) are refreshed when created
	// and then at most hourly per indicator (lstate.vex, rex), decided before
	// the verdict is noted.
	var batchStates map[string]*lstate
	fresh := make(map[string]ttlFresh, len(published))
	for _, v := range published {
		st, ok := r.local.lru.Peek(v.Key)
		if !ok {
			if batchStates == nil {
				batchStates = make(map[string]*lstate, len(g.keys))
				for k, key := range g.keys {
					if states[k] != nil {
						batchStates[key] = states[k]
					}
				}
			}
			if st, ok = batchStates[v.Key]; !ok {
				continue
			}
		}
		if _, seen := fresh[v.Key]; !seen {
			fresh[v.Key] = st.ttlFresh(v.Review, nowMin)
		}
		st.verdict, st.hasVerdict = v, true
	}

	pipe := r.client.TxPipeline()
	r.addSaveVerdicts(ctx, pipe, published, true, fresh)
	counts := make([]*redis.IntCmd, len(g.keys))
	var buf []byte
	var tc touched
	for k, key := range g.keys {
		st := states[k]
		created := st.count == 0
		old := st.fixed()
		tc.reset()
		fresh := false
		var assets []any
		for _, i := range g.order[g.start[k]:g.start[k+1]] {
			e := &batch[i]
			o := &e.Observation
			buf = appendMarkName(buf[:0], o)
			mi := findFieldBytes(st.marks, buf)
			var isNew bool
			switch {
			case mi >= 0:
				isNew = o.Producer.Offset > st.marks[mi].v
			default:
				// a partition without a mark: new, unless the state predates
				// the marks and holds this record's seen marker
				isNew = !(st.legacy && legacyDup[i])
			}
			if !isNew {
				continue
			}
			fresh = true
			if mi >= 0 {
				st.marks[mi].v = o.Producer.Offset
				tc.field(st.marks[mi].name)
			} else {
				st.marks = append(st.marks, lfield{string(buf), o.Producer.Offset})
				tc.field(st.marks[len(st.marks)-1].name)
			}
			n := sightingCount(e)
			st.count += n
			if a := o.Sighting.Action; a != "" {
				st.addCounter(actionField(a), n)
				tc.field(actionField(a))
			}
			st.addCounter(directionField(o.Sighting.Direction), n)
			tc.field(directionField(o.Sighting.Direction))
			t := eventTime(e, now).UnixMilli()
			if st.first == 0 || t < st.first {
				st.first = t
			}
			st.last = max(st.last, t)
			rt := receivedTime(e, now).UnixMilli()
			st.obs = max(st.obs, rt)
			st.sev = max(st.sev, int64(o.Sighting.Severity))
			if m := rt / 60000; m >= shortFrom {
				st.mins = addBucket(st.mins, m, n)
				tc.bucket(&tc.mins, m)
			}
			if hr := rt / 3600000; hr >= longFrom {
				st.hours = addBucket(st.hours, hr, n)
				tc.bucket(&tc.hours, hr)
			}
			if a := assetID(o.Sighting); a != "" && !st.knowsAsset(a) {
				assets = append(assets, a)
			}
		}
		var stale []string
		st.mins = slices.DeleteFunc(st.mins, func(b lbucket) bool {
			if b.k < shortFrom {
				stale = append(stale, "m:"+strconv.FormatInt(b.k, 10))
				return true
			}
			return false
		})
		st.hours = slices.DeleteFunc(st.hours, func(b lbucket) bool {
			if b.k < longFrom {
				stale = append(stale, "h:"+strconv.FormatInt(b.k, 10))
				return true
			}
			return false
		})
		if !fresh && len(stale) == 0 {
			if !st.asKnown && st.count > 0 {
				counts[k] = pipe.PFCount(ctx, tag(key)+":hll")
			}
			continue
		}
		base := tag(key)
		refresh := fresh && (created || st.ex == 0 || nowMin-st.ex >= 60)
		if refresh {
			st.ex = nowMin
		}
		if len(stale) > 0 {
			pipe.HDel(ctx, base+":h", stale...)
		}
		if st.count > 0 {
			if args := st.image(base+":h", old, len(assets) > 0, &tc); len(args) > 2 {
				// the command as built: HSet would copy the arguments into a new slice
				_ = pipe.Process(ctx, redis.NewIntCmd(ctx, args...))
			}
		}
		if len(assets) > 0 {
			pipe.PFAdd(ctx, base+":hll", assets...)
			st.asKnown = false
		}
		if refresh {
			pipe.PExpire(ctx, base+":h", r.cfg.StateTTL)
			pipe.PExpire(ctx, base+":hll", r.cfg.StateTTL)
		} else if len(assets) > 0 && st.as == 0 {
			pipe.PExpire(ctx, base+":hll", r.cfg.StateTTL) // the PFADD may have created it
		}
		if !st.asKnown && st.count > 0 {
			counts[k] = pipe.PFCount(ctx, base+":hll")
		}
	}
	allow := pipe.HMGet(ctx, allowKey, g.keys...)
	if _, err := pipe.Exec(ctx); err != nil {
		// Whether the transaction ran is unknown: read these states again next time.
		for _, key := range g.keys {
			r.local.lru.Remove(key)
		}
		for _, v := range published {
			r.local.lru.Remove(v.Key)
		}
		return Batch{}, err
	}

	b := Batch{Keys: g.keys, Last: make([]int, len(g.keys)), Summaries: make([]Summary, len(g.keys)), Priors: make([]Prior, len(g.keys))}
	vals := allow.Val()
	for k, key := range g.keys {
		st := states[k]
		if c := counts[k]; c != nil {
			st.as, st.asKnown = c.Val(), true
		}
		b.Last[k] = g.order[g.start[k+1]-1]
		b.Summaries[k] = st.summary(medFrom, shortFrom, nowMin, nowHour)
		b.Priors[k].Verdict, b.Priors[k].HasVerdict = st.verdict, st.hasVerdict
		if k < len(vals) {
			if s, ok := vals[k].(string); ok {
				if e, err := decodeAllow(s); err == nil && e.Active(now) {
					b.Priors[k].Allow = &e
				}
			}
		}
		if st.count > 0 {
			st.full = false // written (or nothing to write yet)
		}
		r.local.lru.Add(key, st)
	}
	return b, nil
}

// anyLegacy reports whether a cached state that may hold previous-layout
// seen markers gets a record of a partition it has no mark for.
func (r *Redis) anyLegacy(states []*lstate, batch []events.Enrichment, g grouping) bool {
	for k, st := range states {
		if st == nil || !st.legacy {
			continue
		}
		for _, i := range g.order[g.start[k]:g.start[k+1]] {
			if findField(st.marks, markName(&batch[i].Observation)) < 0 {
				return true
			}
		}
	}
	return false
}

func markName(o *events.Observation) string { return string(appendMarkName(nil, o)) }

func appendMarkName(b []byte, o *events.Observation) []byte {
	b = append(b, "o:"...)
	b = append(b, o.Producer.Topic...)
	b = append(b, ':')
	return strconv.AppendInt(b, int64(o.Producer.Partition), 10)
}

func (st *lstate) addCounter(name string, n int64) {
	if i := findField(st.counters, name); i >= 0 {
		st.counters[i].v += n
		return
	}
	st.counters = append(st.counters, lfield{name, n})
}

func (st *lstate) counter(name string) int64 {
	if i := findField(st.counters, name); i >= 0 {
		return st.counters[i].v
	}
	return 0
}

// windows sums the buckets.
func (st *lstate) windows(medFrom, shortFrom, nowMin, nowHour int64) (w1, w24, w7 int64) {
	for _, b := range st.mins {
		if b.k >= shortFrom && b.k <= nowMin {
			w1 += b.v
		}
	}
	for _, b := range st.hours {
		if b.k <= nowHour {
			w7 += b.v
			if b.k >= medFrom {
				w24 += b.v
			}
		}
	}
	return w1, w24, w7
}

// image is the HSET command of a write ("hset", key, then field/value
// pairs): every field when st.full (the state was just read or created),
// else the scalars that changed since old and the fields t lists. Window
// caches are not kept by this path: a hash that holds live ones gets wm = -1
// (a script-path reader then sums the buckets), and a stored asset count is
// cleared when assets are added (it then counts the HyperLogLog). Without
// anything to write it returns just the command and key.
func (st *lstate) image(key string, old fixedFields, assetsChanged bool, t *touched) []any {
	n := len(t.fields) + len(t.mins) + len(t.hours)
	if st.full {
		n = len(st.counters) + len(st.marks) + len(st.mins) + len(st.hours)
	}
	out := make([]any, 2, 2+2*(9+n))
	out[0], out[1] = "hset", key
	scalar := func(name string, v, was int64) {
		if st.full || v != was {
			out = append(out, name, v)
		}
	}
	scalar("count", st.count, old.count)
	scalar("first", st.first, old.first)
	scalar("last", st.last, old.last)
	scalar("obs", st.obs, old.obs)
	scalar("sev", st.sev, old.sev)
	scalar("ex", st.ex, old.ex)
	if st.full {
		out = append(out, "v2", "1")
	}
	if st.full || st.wmLive {
		out = append(out, "wm", -1)
		st.wmLive = false
	}
	if st.asField && assetsChanged {
		out = append(out, "as", "")
		st.asField = false
	}
	if !st.full {
		for _, name := range t.fields {
			if i := findField(st.counters, name); i >= 0 {
				out = append(out, name, st.counters[i].v)
			} else if i := findField(st.marks, name); i >= 0 {
				out = append(out, name, st.marks[i].v)
			}
		}
		for _, b := range st.mins {
			if slices.Contains(t.mins, b.k) {
				out = append(out, "m:"+strconv.FormatInt(b.k, 10), b.v)
			}
		}
		for _, b := range st.hours {
			if slices.Contains(t.hours, b.k) {
				out = append(out, "h:"+strconv.FormatInt(b.k, 10), b.v)
			}
		}
		return out
	}
	for _, f := range st.counters {
		out = append(out, f.name, f.v)
	}
	for _, f := range st.marks {
		out = append(out, f.name, f.v)
	}
	for _, b := range st.mins {
		out = append(out, "m:"+strconv.FormatInt(b.k, 10), b.v)
	}
	for _, b := range st.hours {
		out = append(out, "h:"+strconv.FormatInt(b.k, 10), b.v)
	}
	return out
}

// summary is the state's sightings summary at now.
func (st *lstate) summary(medFrom, shortFrom, nowMin, nowHour int64) Summary {
	w1, w24, w7 := st.windows(medFrom, shortFrom, nowMin, nowHour)
	s := events.SightingSummary{
		Count: st.count, Count1h: w1, Count24h: w24, Count7d: w7, DistinctAssets: st.as,
		Allowed: st.counter("a:" + events.ActionAllowed), Blocked: st.counter("a:" + events.ActionBlocked),
		Alerted: st.counter("a:" + events.ActionAlerted), MaxSeverity: int32(st.sev),
	}
	if st.first > 0 {
		s.FirstSeen = time.UnixMilli(st.first).UTC()
	}
	if st.last > 0 {
		s.LastSeen = time.UnixMilli(st.last).UTC()
	}
	blockedShare(&s)
	out := Summary{SightingSummary: s}
	if st.obs > 0 {
		out.LastObserved = time.UnixMilli(st.obs).UTC()
	}
	return out
}

// parseState reads a state hash (HGETALL); ok is false for a layout the
// script must handle (state without the v2 marker) or a field that does
// not parse.
func parseState(h map[string]string) (*lstate, bool) {
	st := &lstate{full: true}
	if len(h) == 0 {
		return st, true
	}
	if h["v2"] == "" && h["count"] != "" {
		return nil, false
	}
	num := func(s string) (int64, bool) {
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil
	}
	for name, val := range h {
		var ok bool
		switch {
		case name == "count":
			st.count, ok = num(val)
		case name == "first":
			st.first, ok = num(val)
		case name == "last":
			st.last, ok = num(val)
		case name == "obs":
			st.obs, ok = num(val)
		case name == "sev":
			st.sev, ok = num(val)
		case name == "ex":
			st.ex, ok = num(val)
		case name == "as":
			if val == "" {
				ok = true
			} else {
				st.as, ok = num(val)
				st.asKnown, st.asField = ok, ok
			}
		case name == "wm":
			st.wmLive, ok = val != "" && val != "-1", true
		case name == "v2", name == "w1", name == "w24", name == "w7":
			ok = true // window caches are recomputed from the buckets
		case strings.HasPrefix(name, "a:"), strings.HasPrefix(name, "d:"):
			var v int64
			v, ok = num(val)
			st.counters = append(st.counters, lfield{name, v})
		case strings.HasPrefix(name, "o:"):
			var v int64
			v, ok = num(val)
			st.marks = append(st.marks, lfield{name, v})
		case strings.HasPrefix(name, "m:"), strings.HasPrefix(name, "h:"):
			k, kok := num(name[2:])
			v, vok := num(val)
			ok = kok && vok
			if name[0] == 'm' {
				st.mins = append(st.mins, lbucket{k, v})
			} else {
				st.hours = append(st.hours, lbucket{k, v})
			}
		default:
			ok = true // a field of a later version: kept by HSET of ours, ignored here
		}
		if !ok {
			return nil, false
		}
	}
	st.legacy = st.count > 0
	st.full = true
	return st, true
}
