package state

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Keys of the analyst feedback and the KPI (see the package doc). They share
// one hash tag so a script may touch them together on Redis Cluster.
const (
	feedbackTag  = KeyPrefix + "{feedback}"
	allowKey     = feedbackTag + ":allow"
	kpiKey       = feedbackTag + ":kpi"
	kpiFeedback  = "feedback"
	kpiFP        = "fp:"
	kpiPublished = "published:"
)

func feedbackSeenKey(source string) string { return feedbackTag + ":seen:" + source }

// feedbackScript records one feedback record once. Keys: seen marker, KPI
// hash, allow hash. ARGV: seen TTL (ms), "1" to dedupe on the marker,
// indicator key, false-positive action ("" none), operation ("allow",
// "revoke" or ""), allow entry JSON. Returns 1 when recorded, 0 for a
// replay.
var feedbackScript = redis.NewScript(`
if ARGV[2] == '1' and not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
redis.call('HINCRBY', KEYS[2], 'feedback', 1)
if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[2], 'fp:' .. ARGV[4], 1) end
if ARGV[5] == 'allow' then
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[6])
elseif ARGV[5] == 'revoke' then
  redis.call('HDEL', KEYS[3], ARGV[3])
end
return 1
`)

// pruneAllowScript deletes the expired entries of the allow hash (KEYS[1]);
// ARGV[1] is now in ExpiryLayout. Unreadable entries are left alone.
// Returns how many were deleted.
var pruneAllowScript = redis.NewScript(`
local all = redis.call('HGETALL', KEYS[1])
local stale = {}
for i = 1, #all, 2 do
  local ok, e = pcall(cjson.decode, all[i + 1])
  if ok and type(e) == 'table' and type(e.expires_at) == 'string' and e.expires_at ~= '' and e.expires_at <= ARGV[1] then
    stale[#stale + 1] = all[i]
  end
end
for i = 1, #stale, 1000 do
  redis.call('HDEL', KEYS[1], unpack(stale, i, math.min(i + 999, #stale)))
end
return #stale
`)

var _ FeedbackStore = (*Redis)(nil)

// Priors implements [FeedbackStore] in one pipelined round trip: the last
// verdict hash of each key and one HMGET on the allow hash. An allow entry
// that does not decode (edited by hand) is ignored.
func (r *Redis) Priors(ctx context.Context, keys []string) ([]Prior, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	now := r.cfg.Now()
	pipe := r.client.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, tag(k)+":v")
	}
	allow := pipe.HMGet(ctx, allowKey, keys...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("get priors: %w", err)
	}
	vals := allow.Val()
	if len(vals) != len(keys) {
		return nil, fmt.Errorf("get priors: %d allow entries for %d keys: %w", len(vals), len(keys), errBadReply)
	}
	out := make([]Prior, len(keys))
	for i, c := range cmds {
		out[i].Verdict, out[i].HasVerdict = parseVerdict(keys[i], c.Val())
		s, ok := vals[i].(string)
		if !ok {
			continue
		}
		if e, err := decodeAllow(s); err == nil && e.Active(now) {
			out[i].Allow = &e
		}
	}
	return out, nil
}

// SavePublished implements [FeedbackStore] in one pipelined round trip.
func (r *Redis) SavePublished(ctx context.Context, vs []LastVerdict) error {
	return r.saveVerdicts(ctx, vs, true)
}

// RecordFeedback implements [FeedbackStore] in one pipelined round trip
// (one script per record, then one pass that deletes expired allow
// entries). If Redis lost the scripts, they are loaded again and the batch
// is re-sent once; records already recorded are deduplicated.
func (r *Redis) RecordFeedback(ctx context.Context, recs []FeedbackRecord) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	n, err := r.recordFeedback(ctx, recs)
	if err != nil && isNoScript(err) {
		if lerr := loadScripts(ctx, r.client); lerr != nil {
			return 0, lerr
		}
		n, err = r.recordFeedback(ctx, recs)
	}
	return n, err
}

func (r *Redis) recordFeedback(ctx context.Context, recs []FeedbackRecord) (int, error) {
	ttl := strconv.FormatInt(r.cfg.SeenTTL.Milliseconds(), 10)
	pipe := r.client.Pipeline()
	cmds := make([]*redis.Cmd, len(recs))
	for i, rec := range recs {
		dedupe, op, entry := "0", "", ""
		if rec.Source != "" {
			dedupe = "1"
		}
		switch {
		case rec.Allow != nil:
			var err error
			if entry, err = encodeAllow(*rec.Allow); err != nil {
				return 0, err
			}
			op = "allow"
		case rec.Revoke:
			op = "revoke"
		}
		keys := []string{feedbackSeenKey(rec.Source), kpiKey, allowKey}
		cmds[i] = feedbackScript.EvalSha(ctx, pipe, keys, ttl, dedupe, rec.Key, rec.FalsePositive, op, entry)
	}
	pruneAllowScript.EvalSha(ctx, pipe, []string{allowKey}, r.cfg.Now().UTC().Format(ExpiryLayout))
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("record feedback: %w", err)
	}
	n := 0
	for _, c := range cmds {
		v, err := c.Int64()
		if err != nil {
			return 0, fmt.Errorf("record feedback: %w", err)
		}
		n += int(v)
	}
	return n, nil
}

// KPI implements [FeedbackStore] in one round trip.
func (r *Redis) KPI(ctx context.Context) (KPI, error) {
	m, err := r.client.HGetAll(ctx, kpiKey).Result()
	if err != nil {
		return KPI{}, fmt.Errorf("get kpi: %w", err)
	}
	out := newKPI()
	for f, s := range m {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			continue // not a counter of ours
		}
		switch {
		case f == kpiFeedback:
			out.Feedback = v
		case strings.HasPrefix(f, kpiFP):
			out.FalsePositives[strings.TrimPrefix(f, kpiFP)] = v
		case strings.HasPrefix(f, kpiPublished):
			out.Published[strings.TrimPrefix(f, kpiPublished)] = v
		}
	}
	return out, nil
}
