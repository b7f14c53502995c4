package state

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/pkg/events"
)

// decayTag is the hash tag of the due sets (see [Review]).
const decayTag = KeyPrefix + "{decay}"

func dueKey(p int32) string { return decayTag + ":due:" + strconv.FormatInt(int64(p), 10) }

func reviewKey(key string) string { return tag(key) + ":r" }

// claimScript leases the due entries of several due sets (KEYS, all tagged
// {decay}). ARGV: now (ms), limit, lease end (ms). Entries with a score at
// or below now are taken, earliest first, until limit, and their score
// becomes the lease end. Reply: key index (1-based), member, score (the due
// time), per entry.
var claimScript = redis.NewScript(`
local out, left = {}, tonumber(ARGV[2])
for i = 1, #KEYS do
  if left <= 0 then break end
  local m = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, left)
  local set = {}
  for j = 1, #m, 2 do
    out[#out + 1] = i
    out[#out + 1] = m[j]
    out[#out + 1] = m[j + 1]
    set[#set + 1] = ARGV[3]
    set[#set + 1] = m[j]
  end
  for j = 1, #set, 1000 do
    redis.call('ZADD', KEYS[i], 'XX', unpack(set, j, math.min(j + 999, #set)))
  end
  left = left - #m / 2
end
return out
`)

// rescheduleScript applies outcomes of claimed entries (KEYS: due sets,
// all tagged {decay}) whose score is still the claimer's lease. ARGV per
// entry: key index, member, lease (ms), next due time (ms; empty removes).
var rescheduleScript = redis.NewScript(`
for i = 1, #ARGV, 4 do
  local k = KEYS[tonumber(ARGV[i])]
  local cur = redis.call('ZSCORE', k, ARGV[i + 1])
  if cur and tonumber(cur) == tonumber(ARGV[i + 2]) then
    if ARGV[i + 3] == '' then
      redis.call('ZREM', k, ARGV[i + 1])
    else
      redis.call('ZADD', k, ARGV[i + 3], ARGV[i + 1])
    end
  end
end
return 0
`)

// addSaveReview queues the writes of a published verdict's review on pipe:
// the stash and the due entry, or the removal of both. ttlFresh leaves the
// stash's TTL as it is.
func (r *Redis) addSaveReview(ctx context.Context, pipe redis.Pipeliner, key string, rv *Review, ttlFresh bool) {
	if rv == nil {
		return
	}
	dk, rk := dueKey(rv.Partition), reviewKey(key)
	if rv.Due.IsZero() {
		pipe.ZRem(ctx, dk, key)
		pipe.Del(ctx, rk)
		return
	}
	pipe.HSet(ctx, rk, "e", rv.Enrichment, "obs", rv.LastObserved.UnixMilli(), "p", int64(rv.Partition))
	if !ttlFresh {
		pipe.PExpire(ctx, rk, r.cfg.StateTTL)
	}
	pipe.ZAdd(ctx, dk, redis.Z{Score: float64(scoreMs(rv.Due)), Member: key})
}

// ClaimDue implements [DecayStore] with one script call over the due sets
// of partitions.
func (r *Redis) ClaimDue(ctx context.Context, partitions []int32, limit int) ([]Due, error) {
	if len(partitions) == 0 || limit <= 0 {
		return nil, nil
	}
	now := r.cfg.Now()
	lease := scoreMs(now.Add(ClaimLease))
	keys := make([]string, len(partitions))
	for i, p := range partitions {
		keys[i] = dueKey(p)
	}
	reply, err := claimScript.Run(ctx, r.client, keys, now.UnixMilli(), limit, lease).Slice()
	if err != nil {
		return nil, fmt.Errorf("claim due reviews: %w", err)
	}
	if len(reply)%3 != 0 {
		return nil, fmt.Errorf("claim due reviews: %w", errBadReply)
	}
	out := make([]Due, 0, len(reply)/3)
	for j := 0; j < len(reply); j += 3 {
		i, _ := reply[j].(int64)
		member, _ := reply[j+1].(string)
		score, _ := reply[j+2].(string)
		at, err := strconv.ParseFloat(score, 64)
		if i < 1 || int(i) > len(partitions) || member == "" || err != nil {
			return nil, fmt.Errorf("claim due reviews: %w", errBadReply)
		}
		out = append(out, Due{Key: member, Partition: partitions[i-1], At: fromMs(int64(at)), Lease: fromMs(lease)})
	}
	return out, nil
}

// LoadDue implements [DecayStore] in one pipelined round trip: per entry
// its stash, state hash, distinct-asset count and last verdict, then the
// analyst allow entries.
func (r *Redis) LoadDue(ctx context.Context, due []Due) ([]Pending, error) {
	if len(due) == 0 {
		return nil, nil
	}
	now := r.cfg.Now()
	pipe := r.client.Pipeline()
	stash := make([]*redis.SliceCmd, len(due))
	hashes := make([]*redis.MapStringStringCmd, len(due))
	assets := make([]*redis.IntCmd, len(due))
	verdicts := make([]*redis.SliceCmd, len(due))
	keys := make([]string, len(due))
	for i, d := range due {
		base := tag(d.Key)
		keys[i] = d.Key
		stash[i] = pipe.HMGet(ctx, reviewKey(d.Key), "e", "obs", "p")
		hashes[i] = pipe.HGetAll(ctx, base+":h")
		assets[i] = pipe.PFCount(ctx, base+":hll")
		verdicts[i] = pipe.HMGet(ctx, base+":v", "priority", "level", "action", "decided_at", "emitted_at", "sightings", "assets")
	}
	allow := pipe.HMGet(ctx, allowKey, keys...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("load due reviews: %w", err)
	}
	allowVals := allow.Val()
	if len(allowVals) != len(due) {
		return nil, fmt.Errorf("load due reviews: %d allow entries for %d keys: %w", len(allowVals), len(due), errBadReply)
	}
	out := make([]Pending, len(due))
	for i, d := range due {
		p := &out[i]
		p.Due = d
		p.Review, p.HasReview = parseStash(stash[i].Val())
		p.Summary, p.HasState = r.summaryAt(hashes[i].Val(), assets[i].Val(), now)
		p.Prior.Verdict, p.Prior.HasVerdict = parseVerdictFields(d.Key, verdicts[i].Val())
		if s, ok := allowVals[i].(string); ok {
			if e, err := decodeAllow(s); err == nil && e.Active(now) {
				p.Prior.Allow = &e
			}
		}
	}
	return out, nil
}

// parseStash reads the HMGET of a stash's e, obs and p; ok is false when
// there is no enrichment.
func parseStash(f []any) (Review, bool) {
	if len(f) != 3 {
		return Review{}, false
	}
	e, _ := f[0].(string)
	if e == "" {
		return Review{}, false
	}
	obsS, _ := f[1].(string)
	pS, _ := f[2].(string)
	obs, _ := strconv.ParseInt(obsS, 10, 64)
	p, _ := strconv.ParseInt(pS, 10, 32)
	rv := Review{Enrichment: []byte(e), Partition: int32(p)}
	if obs > 0 {
		rv.LastObserved = fromMs(obs)
	}
	return rv, true
}

// summaryAt computes an indicator's summary at now from its state hash (the
// layout of applyScript: counters and minute/hour buckets; the window
// caches are not used) and its distinct-asset count; ok is false when the
// state is gone.
func (r *Redis) summaryAt(h map[string]string, assets int64, now time.Time) (Summary, bool) {
	num := func(f string) int64 { n, _ := strconv.ParseInt(h[f], 10, 64); return n }
	count := num("count")
	if count <= 0 {
		return Summary{}, false
	}
	w := r.cfg.Windows
	nowMin, nowHour := now.UnixMilli()/60000, now.UnixMilli()/3600000
	shortFrom := nowMin - int64(w.Short/time.Minute) + 1
	medFrom := nowHour - int64(w.Medium/time.Hour) + 1
	longFrom := nowHour - int64(w.Long/time.Hour) + 1
	s := events.SightingSummary{Count: count, DistinctAssets: assets, Allowed: num("a:allowed"), Blocked: num("a:blocked"),
		Alerted: num("a:alerted"), MaxSeverity: int32(num("sev"))}
	for f, v := range h {
		if len(f) < 3 || f[1] != ':' || (f[0] != 'm' && f[0] != 'h') {
			continue
		}
		b, err := strconv.ParseInt(f[2:], 10, 64)
		n, err2 := strconv.ParseInt(v, 10, 64)
		if err != nil || err2 != nil {
			continue
		}
		switch {
		case f[0] == 'm' && b >= shortFrom && b <= nowMin:
			s.Count1h += n
		case f[0] == 'h' && b >= longFrom && b <= nowHour:
			s.Count7d += n
			if b >= medFrom {
				s.Count24h += n
			}
		}
	}
	if t := num("first"); t > 0 {
		s.FirstSeen = fromMs(t)
	}
	if t := num("last"); t > 0 {
		s.LastSeen = fromMs(t)
	}
	blockedShare(&s)
	out := Summary{SightingSummary: s}
	if t := num("obs"); t > 0 {
		out.LastObserved = fromMs(t)
	}
	return out, true
}

// Reschedule implements [DecayStore] in one pipelined round trip: one
// script over the due sets, and the moved LastObserved of the stashes.
func (r *Redis) Reschedule(ctx context.Context, rs []Rescheduled) error {
	if len(rs) == 0 {
		return nil
	}
	idx := map[int32]int{}
	var keys []string
	args := make([]any, 0, 4*len(rs))
	pipe := r.client.Pipeline()
	for _, x := range rs {
		i, ok := idx[x.Partition]
		if !ok {
			keys = append(keys, dueKey(x.Partition))
			i = len(keys)
			idx[x.Partition] = i
		}
		next := ""
		if !x.Next.IsZero() {
			next = strconv.FormatInt(scoreMs(x.Next), 10)
		}
		args = append(args, i, x.Key, scoreMs(x.Lease), next)
		if !x.Next.IsZero() && !x.LastObserved.IsZero() {
			rk := reviewKey(x.Key)
			pipe.HSet(ctx, rk, "obs", x.LastObserved.UnixMilli())
			pipe.PExpire(ctx, rk, r.cfg.StateTTL) // a stash that just expired must not stay without a TTL
		}
	}
	// the script's source, not its SHA: one call per sweep, and a Redis
	// that lost its scripts needs no second round trip
	rescheduleScript.Eval(ctx, pipe, keys, args...)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("reschedule reviews: %w", err)
	}
	return nil
}
