package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/pkg/events"
)

// KeyPrefix prefixes every key the Redis store writes.
const KeyPrefix = "vigil:corr:"

// applyScript dedupes one record and updates the indicator's counters, then
// returns its summary. Keys: seen, counters hash, minute buckets, hour
// buckets, asset HyperLogLog. ARGV: seen TTL (ms), count, received time
// (ms, the bucket time), event time (ms, first/last), action, direction,
// severity, asset, now (ms), short window (minutes), medium and long
// windows (hours), state TTL (ms). The reply is the summary fields in the
// order Redis.apply reads them.
var applyScript = redis.NewScript(`
local n = tonumber(ARGV[2])
local rt = tonumber(ARGV[3])
local t = tonumber(ARGV[4])
local now = tonumber(ARGV[9])
local shortMin, medHours, longHours = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local nowMin, nowHour = math.floor(now / 60000), math.floor(now / 3600000)
local shortFrom, medFrom, longFrom = nowMin - shortMin + 1, nowHour - medHours + 1, nowHour - longHours + 1
local function d(x) return string.format('%d', x) end
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  local h = KEYS[2]
  redis.call('HINCRBY', h, 'count', n)
  if ARGV[5] ~= '' then redis.call('HINCRBY', h, 'a:' .. ARGV[5], n) end
  redis.call('HINCRBY', h, 'd:' .. ARGV[6], n)
  local first = tonumber(redis.call('HGET', h, 'first') or '0')
  if first == 0 or t < first then redis.call('HSET', h, 'first', d(t)) end
  local last = tonumber(redis.call('HGET', h, 'last') or '0')
  if t > last then redis.call('HSET', h, 'last', d(t)) end
  local obs = tonumber(redis.call('HGET', h, 'obs') or '0')
  if rt > obs then redis.call('HSET', h, 'obs', d(rt)) end
  local sev = tonumber(redis.call('HGET', h, 'sev') or '0')
  if tonumber(ARGV[7]) > sev then redis.call('HSET', h, 'sev', ARGV[7]) end
  local m, hr = math.floor(rt / 60000), math.floor(rt / 3600000)
  if m >= shortFrom then redis.call('HINCRBY', KEYS[3], d(m), n) end
  if hr >= longFrom then redis.call('HINCRBY', KEYS[4], d(hr), n) end
  if ARGV[8] ~= '' then redis.call('PFADD', KEYS[5], ARGV[8]) end
  for i = 2, 5 do redis.call('PEXPIRE', KEYS[i], ARGV[13]) end
end
local function sum(key, from, to, from2)
  local all = redis.call('HGETALL', key)
  local total, total2, stale = 0, 0, {}
  for i = 1, #all, 2 do
    local k, v = tonumber(all[i]), tonumber(all[i + 1])
    if k < from then
      stale[#stale + 1] = all[i]
    elseif k <= to then
      total = total + v
      if from2 and k >= from2 then total2 = total2 + v end
    end
  end
  for i = 1, #stale, 1000 do
    redis.call('HDEL', key, unpack(stale, i, math.min(i + 999, #stale)))
  end
  return total, total2
end
local c1 = sum(KEYS[3], shortFrom, nowMin, nil)
local c7, c24 = sum(KEYS[4], longFrom, nowHour, medFrom)
local f = redis.call('HMGET', KEYS[2], 'count', 'first', 'last', 'a:allowed', 'a:blocked', 'a:alerted', 'sev', 'obs')
local out = {0, c1, c24, c7, redis.call('PFCOUNT', KEYS[5]), 0, 0, 0, 0, 0, 0, 0}
local idx = {1, 6, 7, 8, 9, 10, 11, 12}
for i = 1, 8 do out[idx[i]] = tonumber(f[i] or '0') end
return out
`)

// Redis is the shared [Store] on Redis (standalone, Sentinel or Cluster).
type Redis struct {
	client redis.UniversalClient
	cfg    Config
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store on client and loads its script. The client is
// owned by the caller.
func NewRedis(ctx context.Context, client redis.UniversalClient, cfg Config) (*Redis, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := loadScripts(ctx, client); err != nil {
		return nil, err
	}
	return &Redis{client: client, cfg: cfg}, nil
}

func loadScripts(ctx context.Context, client redis.UniversalClient) error {
	for _, s := range []*redis.Script{applyScript, feedbackScript, pruneAllowScript} {
		if err := s.Load(ctx, client).Err(); err != nil {
			return fmt.Errorf("load state script: %w", err)
		}
	}
	return nil
}

func tag(key string) string { return KeyPrefix + "{" + key + "}" }

// Apply implements [Store] in one pipelined round trip (one EVALSHA per
// record). If Redis lost the script (restart), it is loaded again and the
// batch is re-sent once; records already applied are deduplicated.
func (r *Redis) Apply(ctx context.Context, batch []events.Enrichment) ([]Summary, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	out, err := r.apply(ctx, batch)
	if err != nil && isNoScript(err) {
		if lerr := loadScripts(ctx, r.client); lerr != nil {
			return nil, lerr
		}
		out, err = r.apply(ctx, batch)
	}
	return out, err
}

func isNoScript(err error) bool { return err != nil && strings.Contains(err.Error(), "NOSCRIPT") }

func (r *Redis) apply(ctx context.Context, batch []events.Enrichment) ([]Summary, error) {
	now := r.cfg.Now()
	w := r.cfg.Windows
	common := []any{
		strconv.FormatInt(now.UnixMilli(), 10),
		strconv.FormatInt(int64(w.Short/time.Minute), 10),
		strconv.FormatInt(int64(w.Medium/time.Hour), 10),
		strconv.FormatInt(int64(w.Long/time.Hour), 10),
		strconv.FormatInt(r.cfg.StateTTL.Milliseconds(), 10),
	}
	pipe := r.client.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i := range batch {
		e := &batch[i]
		o := e.Observation
		base := tag(o.Indicator.Key())
		dir := o.Sighting.Direction
		if dir == "" {
			dir = events.DirectionUnknown
		}
		keys := []string{base + ":seen:" + seenID(o), base + ":h", base + ":m", base + ":hr", base + ":hll"}
		args := append([]any{
			strconv.FormatInt(r.cfg.SeenTTL.Milliseconds(), 10),
			strconv.FormatInt(sightingCount(e), 10),
			strconv.FormatInt(receivedTime(e, now).UnixMilli(), 10),
			strconv.FormatInt(eventTime(e, now).UnixMilli(), 10),
			o.Sighting.Action,
			dir,
			strconv.FormatInt(int64(o.Sighting.Severity), 10),
			assetID(o.Sighting),
		}, common...)
		cmds[i] = applyScript.EvalSha(ctx, pipe, keys, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("apply sightings: %w", err)
	}
	out := make([]Summary, len(batch))
	for i, c := range cmds {
		vals, err := c.Int64Slice()
		if err != nil || len(vals) != 12 {
			return nil, fmt.Errorf("apply sightings: reply %d: %w", i, errors.Join(err, errBadReply))
		}
		s := events.SightingSummary{
			Count: vals[0], Count1h: vals[1], Count24h: vals[2], Count7d: vals[3], DistinctAssets: vals[4],
			Allowed: vals[7], Blocked: vals[8], Alerted: vals[9], MaxSeverity: int32(vals[10]),
		}
		if vals[5] > 0 {
			s.FirstSeen = time.UnixMilli(vals[5]).UTC()
		}
		if vals[6] > 0 {
			s.LastSeen = time.UnixMilli(vals[6]).UTC()
		}
		blockedShare(&s)
		out[i] = Summary{SightingSummary: s}
		if vals[11] > 0 {
			out[i].LastObserved = time.UnixMilli(vals[11]).UTC()
		}
	}
	return out, nil
}

var errBadReply = errors.New("unexpected script reply")

// LastVerdicts implements [Store] in one pipelined round trip.
func (r *Redis) LastVerdicts(ctx context.Context, keys []string) ([]LastVerdict, []bool, error) {
	if len(keys) == 0 {
		return nil, nil, nil
	}
	pipe := r.client.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, tag(k)+":v")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, fmt.Errorf("get verdicts: %w", err)
	}
	out := make([]LastVerdict, len(keys))
	ok := make([]bool, len(keys))
	for i, c := range cmds {
		out[i], ok[i] = parseVerdict(keys[i], c.Val())
	}
	return out, ok, nil
}

// parseVerdict reads the hash of a last verdict; ok is false for an empty one.
func parseVerdict(key string, m map[string]string) (LastVerdict, bool) {
	if len(m) == 0 {
		return LastVerdict{}, false
	}
	p, _ := strconv.ParseInt(m["priority"], 10, 32)
	dec, _ := strconv.ParseInt(m["decided_at"], 10, 64)
	emit, _ := strconv.ParseInt(m["emitted_at"], 10, 64)
	n, _ := strconv.ParseInt(m["sightings"], 10, 64) // absent before sightings growth: 0
	as, _ := strconv.ParseInt(m["assets"], 10, 64)   // ditto
	v := LastVerdict{Key: key, Priority: int32(p), Level: m["level"], Action: m["action"], Sightings: n, DistinctAssets: as}
	if dec > 0 {
		v.DecidedAt = time.UnixMilli(dec).UTC()
	}
	if emit > 0 {
		v.EmittedAt = time.UnixMilli(emit).UTC()
	}
	return v, true
}

// SaveVerdicts implements [Store] in one pipelined round trip.
func (r *Redis) SaveVerdicts(ctx context.Context, vs []LastVerdict) error {
	return r.saveVerdicts(ctx, vs, false)
}

func (r *Redis) saveVerdicts(ctx context.Context, vs []LastVerdict, count bool) error {
	if len(vs) == 0 {
		return nil
	}
	pipe := r.client.Pipeline()
	for _, v := range vs {
		k := tag(v.Key) + ":v"
		pipe.HSet(ctx, k,
			"priority", strconv.FormatInt(int64(v.Priority), 10),
			"level", v.Level,
			"action", v.Action,
			"decided_at", strconv.FormatInt(v.DecidedAt.UnixMilli(), 10),
			"emitted_at", strconv.FormatInt(v.EmittedAt.UnixMilli(), 10),
			"sightings", strconv.FormatInt(v.Sightings, 10),
			"assets", strconv.FormatInt(v.DistinctAssets, 10))
		pipe.PExpire(ctx, k, r.cfg.StateTTL)
	}
	if count {
		perAction := map[string]int64{}
		for _, v := range vs {
			perAction[v.Action]++
		}
		for a, n := range perAction {
			pipe.HIncrBy(ctx, kpiKey, kpiPublished+a, n)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("save verdicts: %w", err)
	}
	return nil
}
