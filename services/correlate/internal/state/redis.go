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

// applyScript records the sightings of a group of indicators and returns
// their summaries, and optionally their last verdicts, in one call (one per
// batch on a standalone or Sentinel Redis; one per indicator on Redis Cluster,
// where a script must stay in one hash slot).
//
// The state hash of an indicator holds its counters (count, a:<action>,
// d:<direction>, first, last, obs, sev), its buckets (m:<unix minute>,
// h:<unix hour>), the window sums of the current minute (wm, w1, w24, w7),
// the HyperLogLog's count (as) and the high-water mark of every source
// partition it was seen in (o:<topic>:<partition>: the highest raw offset
// applied; see the package doc, Replay safety). Windows only move when the minute
// changes, so within a minute a new sighting adds to the cached sums, and
// the buckets are summed (and pruned) at most once per indicator and minute.
//
// Redis time goes into the Lua VM and the redis.call round trips, so the
// caller does what it can in Go: it lists the fields an indicator's records
// touch and gives each record the positions of its fields in that list.
// Per indicator the script then does one HMGET of those fields, array
// arithmetic, PFADD, one HSET of the changed values (the marks included)
// and one HMGET of the last verdict; the TTLs (PEXPIRE) are
// refreshed once an hour per indicator (field ex), and at once on keys the
// call creates. Numbers go to redis.call as Lua numbers (string.format
// costs more than the command).
//
// ARGV[1..7]: seen TTL (ms, unused), now (ms), short window (minutes),
// medium and long windows (hours), state TTL (ms), "1" to read the last
// verdicts. Then per indicator: the number of fields F after the 15 of
// stateFields (the script knows those), F field names, the number of
// records, and per record 13 values: count, received time (ms), event time
// (ms), severity, positions of its a:<action> field (0 for none),
// d:<direction>, m:<minute> (0 when outside the short window) and h:<hour>
// (0 when outside the long window) fields, "1" when the hour is inside the
// medium window, asset, "1" to report the summary after this record, the
// position of its o:<topic>:<partition> field and its raw offset.
// KEYS per indicator: state hash, asset HyperLogLog, last verdict hash, the
// minute and hour bucket hashes of the previous layout (moved into the state
// hash the first time it is touched), and the prefix of the seen markers the
// previous layout wrote (<prefix><topic>:<partition>:<offset>), read only
// for a partition without a mark on a state that existed before.
//
// Reply: {summaries, verdicts}. Summaries are 12 integers per reported
// record, in the order parseSummary reads them; verdicts are the 7 fields
// parseVerdictFields reads, per indicator (when asked).
var applyScript = redis.NewScript(`
local now, stateTTL = tonumber(ARGV[2]), ARGV[6]
local shortMin, medHours, longHours = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local wantVerdicts = ARGV[7] == '1'
local nowMin, nowHour = math.floor(now / 60000), math.floor(now / 3600000)
local shortFrom, medFrom, longFrom = nowMin - shortMin + 1, nowHour - medHours + 1, nowHour - longHours + 1
local fixed = {'count', 'first', 'last', 'obs', 'sev', 'a:allowed', 'a:blocked', 'a:alerted', 'wm', 'w1', 'w24', 'w7', 'as', 'v2', 'ex'}
local sums, verdicts = {}, {}
local ki, ai = 1, 8
while ai <= #ARGV do
  local h, hll, vk, seen = KEYS[ki], KEYS[ki + 1], KEYS[ki + 2], KEYS[ki + 5]
  local nm = {unpack(fixed)}
  local nf = 15 + tonumber(ARGV[ai])
  for i = 16, nf do nm[i] = ARGV[ai + i - 15] end
  ai = ai + nf - 14
  local f = redis.call('HMGET', h, unpack(nm))
  if f[1] and not f[14] then
    -- state of the previous layout: move its bucket hashes into the state hash
    local mig = {'v2', '1'}
    for _, kp in ipairs({{KEYS[ki + 3], 'm:'}, {KEYS[ki + 4], 'h:'}}) do
      local all = redis.call('HGETALL', kp[1])
      for i = 1, #all, 2 do
        mig[#mig + 1] = kp[2] .. all[i]
        mig[#mig + 1] = all[i + 1]
      end
    end
    redis.call('HSET', h, unpack(mig))
    redis.call('DEL', KEYS[ki + 3], KEYS[ki + 4])
    f = redis.call('HMGET', h, unpack(nm))
  end
  ki = ki + 6
  local v, dirty = {}, {}
  for i = 1, nf do v[i] = tonumber(f[i]) or 0 end
  local wok = f[9] and v[9] == nowMin
  local as = f[13] and tonumber(f[13])
  local hllNew = false
  local asDirty = false
  local nrec = tonumber(ARGV[ai])
  ai = ai + 1
  local fresh, assets = false, nil
  for r = 1, nrec do
    -- the record is new when its offset is above its source partition's
    -- high-water mark; a partition without a mark on a state written
    -- before the marks existed falls back to that layout's seen marker
    local oi, off = tonumber(ARGV[ai + 11]), ARGV[ai + 12]
    local o = tonumber(off)
    local new
    if f[oi] then
      new = o > v[oi]
    else
      new = not (f[1] and redis.call('EXISTS', seen .. string.sub(nm[oi], 3) .. ':' .. off) == 1)
    end
    if new then
      v[oi], dirty[oi], f[oi] = o, true, true
      fresh = true
      local n, rt, t, s = tonumber(ARGV[ai]), tonumber(ARGV[ai + 1]), tonumber(ARGV[ai + 2]), tonumber(ARGV[ai + 3])
      local a, di, mi, hi = tonumber(ARGV[ai + 4]), tonumber(ARGV[ai + 5]), tonumber(ARGV[ai + 6]), tonumber(ARGV[ai + 7])
      v[1] = v[1] + n
      dirty[1] = true
      if a > 0 then
        v[a] = v[a] + n
        dirty[a] = true
      end
      v[di] = v[di] + n
      dirty[di] = true
      if v[2] == 0 or t < v[2] then v[2] = t; dirty[2] = true end
      if t > v[3] then v[3] = t; dirty[3] = true end
      if rt > v[4] then v[4] = rt; dirty[4] = true end
      if s > v[5] then v[5] = s; dirty[5] = true end
      if mi > 0 then
        v[mi] = v[mi] + n
        dirty[mi] = true
        if wok then v[10] = v[10] + n end
      end
      if hi > 0 then
        v[hi] = v[hi] + n
        dirty[hi] = true
        if wok then
          v[12] = v[12] + n
          if ARGV[ai + 8] == '1' then v[11] = v[11] + n end
        end
      end
      if ARGV[ai + 9] ~= '' then
        assets = assets or {}
        assets[#assets + 1] = ARGV[ai + 9]
      end
    end
    if ARGV[ai + 10] == '1' then
      if assets then
        if redis.call('PFADD', hll, unpack(assets)) == 1 then as, hllNew = nil, true end
        assets = nil
      end
      if not wok then
        -- sum the buckets: their stored values, or this call's when it changed them
        local all = redis.call('HGETALL', h)
        local pos, stored, stale = {}, {}, {}
        for i = 16, nf do pos[nm[i]] = i end
        local w1, w24, w7 = 0, 0, 0
        local function bucket(name, x)
          local p, b = string.sub(name, 1, 2), tonumber(string.sub(name, 3))
          if not b then return end
          if p == 'm:' then
            if b < shortFrom then stale[#stale + 1] = name elseif b <= nowMin then w1 = w1 + x end
          elseif p == 'h:' then
            if b < longFrom then
              stale[#stale + 1] = name
            elseif b <= nowHour then
              w7 = w7 + x
              if b >= medFrom then w24 = w24 + x end
            end
          end
        end
        for i = 1, #all, 2 do
          local name, j = all[i], pos[all[i]]
          stored[name] = true
          if j and dirty[j] then bucket(name, v[j]) else bucket(name, tonumber(all[i + 1])) end
        end
        for i = 16, nf do
          if dirty[i] and not stored[nm[i]] then bucket(nm[i], v[i]) end
        end
        for i = 1, #stale, 1000 do
          redis.call('HDEL', h, unpack(stale, i, math.min(i + 999, #stale)))
        end
        v[9], v[10], v[11], v[12] = nowMin, w1, w24, w7
        wok = true
        dirty[9], dirty[10], dirty[11], dirty[12] = true, true, true, true
      end
      if not as then
        as = redis.call('PFCOUNT', hll)
        asDirty = true
      end
      local o = #sums
      sums[o + 1], sums[o + 2], sums[o + 3], sums[o + 4] = v[1], v[10], v[11], v[12]
      sums[o + 5], sums[o + 6], sums[o + 7], sums[o + 8] = as, v[2], v[3], v[6]
      sums[o + 9], sums[o + 10], sums[o + 11], sums[o + 12] = v[7], v[8], v[5], v[4]
    end
    ai = ai + 13
  end
  if assets and redis.call('PFADD', hll, unpack(assets)) == 1 then as, hllNew = nil, true end
  -- TTLs are refreshed at most once an hour (field ex); a key this call
  -- may have created gets its TTL now
  local refresh = fresh and (not f[1] or not f[15] or nowMin - v[15] >= 60)
  if refresh then v[15], dirty[15] = nowMin, true end
  if v[1] > 0 and (fresh or asDirty or dirty[9]) then
    local set = {}
    if fresh then
      if wok then
        dirty[9], dirty[10], dirty[11], dirty[12] = true, true, true, true
      else
        v[9], dirty[9] = -1, true
      end
    end
    for i in pairs(dirty) do
      set[#set + 1] = nm[i]
      set[#set + 1] = v[i]
    end
    if not f[14] then
      set[#set + 1] = 'v2'
      set[#set + 1] = '1'
    end
    if as == nil or asDirty then
      set[#set + 1] = 'as'
      set[#set + 1] = as or ''
    end
    redis.call('HSET', h, unpack(set))
  end
  if refresh then
    redis.call('PEXPIRE', h, stateTTL)
    redis.call('PEXPIRE', hll, stateTTL)
  elseif hllNew then
    redis.call('PEXPIRE', hll, stateTTL)
  end
  if wantVerdicts then
    local x = redis.call('HMGET', vk, 'priority', 'level', 'action', 'decided_at', 'emitted_at', 'sightings', 'assets')
    for i = 1, 7 do verdicts[#verdicts + 1] = x[i] end
  end
end
return {sums, verdicts}
`)

// stateFields are the fixed fields of an indicator's state hash, in the
// order applyScript expects them first in its field list.
var stateFields = [...]any{"count", "first", "last", "obs", "sev", "a:allowed", "a:blocked", "a:alerted", "wm", "w1", "w24", "w7", "as", "v2", "ex"}

// Redis is the shared [Store] on Redis (standalone, Sentinel or Cluster).
type Redis struct {
	client redis.UniversalClient
	cfg    Config
	local  *localCache // owner-side states (redis_local.go); nil: script path only
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
	r := &Redis{client: client, cfg: cfg}
	if _, cluster := client.(*redis.ClusterClient); !cluster && cfg.LocalStates > 0 {
		r.local = newLocalCache(cfg.LocalStates)
	}
	return r, nil
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

// maxScriptRecords bounds the records of one script call so that a large
// batch does not hold Redis for long; the calls of a batch still share one
// pipeline (one round trip).
const maxScriptRecords = 512

// Apply implements [Store] in one round trip (see applyScript). If Redis
// lost the script (restart), it is loaded again and the batch is re-sent
// once; records already applied are deduplicated.
func (r *Redis) Apply(ctx context.Context, batch []events.Enrichment) ([]Summary, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	g := groupBatch(batch)
	r.forgetKeys(g.keys) // the script changes them
	res, err := r.exec(ctx, nil, batch, g, false)
	if err != nil {
		return nil, fmt.Errorf("apply sightings: %w", err)
	}
	out := make([]Summary, len(batch))
	for j, i := range g.order {
		out[i] = res.sums[j]
	}
	return out, nil
}

// ApplyBatch implements [Store] in one round trip: the writes of
// SavePublished, the script calls that record the sightings and read the
// last verdicts (one per batch, or per indicator on Redis Cluster; see
// applyScript), and one HMGET of the analyst allow entries, in one pipeline.
func (r *Redis) ApplyBatch(ctx context.Context, published []LastVerdict, batch []events.Enrichment) (Batch, error) {
	if len(batch) == 0 {
		return Batch{}, r.SavePublished(ctx, published)
	}
	g := groupBatch(batch)
	if r.local != nil {
		b, err := r.applyLocal(ctx, published, batch, g)
		switch {
		case err == nil:
			return b, nil
		case !errors.Is(err, errScriptPath):
			return Batch{}, fmt.Errorf("apply batch: %w", err)
		}
		r.forgetKeys(g.keys) // a layout the script handles: it owns these states now
	}
	res, err := r.exec(ctx, published, batch, g, true)
	if err != nil {
		return Batch{}, fmt.Errorf("apply batch: %w", err)
	}
	r.noteVerdicts(published)
	b := Batch{Keys: g.keys, Last: make([]int, len(g.keys)), Summaries: res.sums, Priors: res.priors}
	for k := range g.keys {
		b.Last[k] = g.order[g.start[k+1]-1]
	}
	return b, nil
}

// grouping orders a batch's records by indicator.
type grouping struct {
	keys  []string // distinct indicator keys, in order of first appearance
	order []int    // record indexes by key, in input order within a key
	start []int    // order[start[k]:start[k+1]] are the records of keys[k]
}

func groupBatch(batch []events.Enrichment) grouping {
	pos := make(map[string]int, len(batch))
	recKey := make([]int, len(batch))
	keys := make([]string, 0, len(batch))
	cnt := make([]int, 0, len(batch))
	for i := range batch {
		k := batch[i].Observation.Indicator.Key()
		ki, ok := pos[k]
		if !ok {
			ki = len(keys)
			pos[k] = ki
			keys = append(keys, k)
			cnt = append(cnt, 0)
		}
		recKey[i] = ki
		cnt[ki]++
	}
	start := make([]int, len(keys)+1)
	for k, c := range cnt {
		start[k+1] = start[k] + c
	}
	fill := cnt[:0:0]
	fill = append(fill, start[:len(keys)]...)
	order := make([]int, len(batch))
	for i, ki := range recKey {
		order[fill[ki]] = i
		fill[ki]++
	}
	return grouping{keys: keys, order: order, start: start}
}

// execResult is the reply of exec: summaries per record in g.order (Apply)
// or per key (ApplyBatch, with the priors).
type execResult struct {
	sums   []Summary
	priors []Prior
}

// exec stores published and runs applyScript over the batch in one
// pipeline, re-sending the script once after loading the scripts when Redis
// lost them (the other commands of the pipeline ran: published is not sent
// again).
func (r *Redis) exec(ctx context.Context, published []LastVerdict, batch []events.Enrichment, g grouping, perKey bool) (execResult, error) {
	res, err := r.execOnce(ctx, published, batch, g, perKey)
	if err != nil && isNoScript(err) {
		if lerr := loadScripts(ctx, r.client); lerr != nil {
			return execResult{}, lerr
		}
		res, err = r.execOnce(ctx, nil, batch, g, perKey)
	}
	return res, err
}

func (r *Redis) execOnce(ctx context.Context, published []LastVerdict, batch []events.Enrichment, g grouping, perKey bool) (execResult, error) {
	now := r.cfg.Now()
	w := r.cfg.Windows
	want := "0"
	if perKey {
		want = "1"
	}
	common := []any{r.cfg.SeenTTL.Milliseconds(), now.UnixMilli(), int64(w.Short / time.Minute), int64(w.Medium / time.Hour),
		int64(w.Long / time.Hour), r.cfg.StateTTL.Milliseconds(), want}
	_, cluster := r.client.(*redis.ClusterClient)
	pipe := r.client.Pipeline()
	r.addSaveVerdicts(ctx, pipe, published, true, nil)
	var cmds []*redis.Cmd
	var keys []string
	var args []any
	var buf []byte
	recs := 0
	send := func() {
		cmds = append(cmds, applyScript.EvalSha(ctx, pipe, keys, args...))
		keys, args, recs = nil, nil, 0
	}
	nowMin, nowHour := now.UnixMilli()/60000, now.UnixMilli()/3600000
	shortFrom := nowMin - int64(w.Short/time.Minute) + 1
	medFrom := nowHour - int64(w.Medium/time.Hour) + 1
	longFrom := nowHour - int64(w.Long/time.Hour) + 1
	var dyn []string // the group's fields after stateFields
	field := func(name string) int {
		for i, f := range dyn {
			if f == name {
				return len(stateFields) + 1 + i
			}
		}
		dyn = append(dyn, name)
		return len(stateFields) + len(dyn)
	}
	fieldBytes := func(name []byte) int {
		for i, f := range dyn {
			if f == string(name) {
				return len(stateFields) + 1 + i
			}
		}
		return field(string(name))
	}
	var recArgs []any
	for k, key := range g.keys {
		if keys == nil {
			n := min(len(batch), maxScriptRecords)
			keys = make([]string, 0, 6*min(len(g.keys), maxScriptRecords))
			args = make([]any, 0, len(common)+16*n)
			args = append(args, common...)
		}
		base := tag(key)
		keys = append(keys, base+":h", base+":hll", base+":v", base+":m", base+":hr", base+":seen:")
		idx := g.order[g.start[k]:g.start[k+1]]
		dyn = dyn[:0]
		recArgs = recArgs[:0]
		for j, i := range idx {
			e := &batch[i]
			o := &e.Observation
			buf = append(buf[:0], "o:"...)
			buf = append(buf, o.Producer.Topic...)
			buf = append(buf, ':')
			buf = strconv.AppendInt(buf, int64(o.Producer.Partition), 10)
			mark := fieldBytes(buf)
			dir := o.Sighting.Direction
			if dir == "" {
				dir = events.DirectionUnknown
			}
			act := 0
			switch a := o.Sighting.Action; a {
			case events.ActionAllowed:
				act = 6
			case events.ActionBlocked:
				act = 7
			case events.ActionAlerted:
				act = 8
			case "":
			default:
				act = field("a:" + a)
			}
			rt := receivedTime(e, now).UnixMilli()
			m, hr := rt/60000, rt/3600000
			mi, hi, med := 0, 0, "0"
			if m >= shortFrom {
				mi = field("m:" + strconv.FormatInt(m, 10))
			}
			if hr >= longFrom {
				hi = field("h:" + strconv.FormatInt(hr, 10))
			}
			if hr >= medFrom {
				med = "1"
			}
			report := "0"
			if !perKey || j == len(idx)-1 {
				report = "1"
			}
			recArgs = append(recArgs, sightingCount(e), rt, eventTime(e, now).UnixMilli(), int64(o.Sighting.Severity),
				act, field("d:"+dir), mi, hi, med, assetID(o.Sighting), report, mark, o.Producer.Offset)
		}
		args = append(args, len(dyn))
		for _, f := range dyn {
			args = append(args, f)
		}
		args = append(args, len(idx))
		args = append(args, recArgs...)
		recs += len(idx)
		if cluster || recs >= maxScriptRecords {
			send()
		}
	}
	if keys != nil {
		send()
	}
	var allow *redis.SliceCmd
	if perKey {
		allow = pipe.HMGet(ctx, allowKey, g.keys...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return execResult{}, err
	}
	nsum := len(batch)
	if perKey {
		nsum = len(g.keys)
	}
	res := execResult{sums: make([]Summary, 0, nsum)}
	if perKey {
		res.priors = make([]Prior, 0, len(g.keys))
	}
	for _, c := range cmds {
		reply, err := c.Slice()
		if err != nil || len(reply) != 2 {
			return execResult{}, errors.Join(err, errBadReply)
		}
		sums, _ := reply[0].([]any)
		verdicts, _ := reply[1].([]any)
		if len(sums)%12 != 0 || len(verdicts)%7 != 0 {
			return execResult{}, errBadReply
		}
		for j := 0; j < len(sums); j += 12 {
			s, ok := parseSummary(sums[j : j+12])
			if !ok {
				return execResult{}, errBadReply
			}
			res.sums = append(res.sums, s)
		}
		for j := 0; j < len(verdicts); j += 7 {
			var p Prior
			p.Verdict, p.HasVerdict = parseVerdictFields(g.keys[len(res.priors)], verdicts[j:j+7])
			res.priors = append(res.priors, p)
		}
	}
	if len(res.sums) != nsum || (perKey && len(res.priors) != len(g.keys)) {
		return execResult{}, errBadReply
	}
	if perKey {
		vals := allow.Val()
		if len(vals) != len(g.keys) {
			return execResult{}, fmt.Errorf("%d allow entries for %d keys: %w", len(vals), len(g.keys), errBadReply)
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue
			}
			if e, err := decodeAllow(s); err == nil && e.Active(now) {
				res.priors[i].Allow = &e
			}
		}
	}
	return res, nil
}

// parseSummary reads the 12 integers of a summary in applyScript's order.
func parseSummary(f []any) (Summary, bool) {
	var vals [12]int64
	for i, x := range f {
		v, ok := x.(int64)
		if !ok {
			return Summary{}, false
		}
		vals[i] = v
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
	out := Summary{SightingSummary: s}
	if vals[11] > 0 {
		out.LastObserved = time.UnixMilli(vals[11]).UTC()
	}
	return out, true
}

// parseVerdictFields reads a last verdict from the script's HMGET of
// priority, level, action, decided_at, emitted_at, sightings and assets; ok
// is false when there is none.
func parseVerdictFields(key string, f []any) (LastVerdict, bool) {
	str := func(i int) string { s, _ := f[i].(string); return s }
	if f[0] == nil && f[1] == nil && f[2] == nil {
		return LastVerdict{}, false
	}
	return verdictFrom(key, str(0), str(1), str(2), str(3), str(4), str(5), str(6)), true
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
	return verdictFrom(key, m["priority"], m["level"], m["action"], m["decided_at"], m["emitted_at"], m["sightings"], m["assets"]), true
}

func verdictFrom(key, priority, level, action, decided, emitted, sightings, assets string) LastVerdict {
	p, _ := strconv.ParseInt(priority, 10, 32)
	dec, _ := strconv.ParseInt(decided, 10, 64)
	emit, _ := strconv.ParseInt(emitted, 10, 64)
	n, _ := strconv.ParseInt(sightings, 10, 64) // absent before sightings growth: 0
	as, _ := strconv.ParseInt(assets, 10, 64)   // ditto
	v := LastVerdict{Key: key, Priority: int32(p), Level: level, Action: action, Sightings: n, DistinctAssets: as}
	if dec > 0 {
		v.DecidedAt = time.UnixMilli(dec).UTC()
	}
	if emit > 0 {
		v.EmittedAt = time.UnixMilli(emit).UTC()
	}
	return v
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
	r.addSaveVerdicts(ctx, pipe, vs, count, nil)
	if _, err := pipe.Exec(ctx); err != nil {
		r.forgetKeys(verdictKeys(vs))
		return fmt.Errorf("save verdicts: %w", err)
	}
	r.noteVerdicts(vs)
	return nil
}

func verdictKeys(vs []LastVerdict) []string {
	keys := make([]string, len(vs))
	for i, v := range vs {
		keys[i] = v.Key
	}
	return keys
}

// ttlFresh says which of an indicator's verdict keys had their TTL
// refreshed recently by this replica (their PEXPIRE is left out).
type ttlFresh struct{ verdict, review bool }

// addSaveVerdicts queues the writes of saveVerdicts on pipe. fresh (nil for
// none) names the keys whose TTLs need no refresh.
func (r *Redis) addSaveVerdicts(ctx context.Context, pipe redis.Pipeliner, vs []LastVerdict, count bool, fresh map[string]ttlFresh) {
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
		f := fresh[v.Key]
		if !f.verdict {
			pipe.PExpire(ctx, k, r.cfg.StateTTL)
		}
		r.addSaveReview(ctx, pipe, v.Key, v.Review, f.review)
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
}

func isNoScript(err error) bool { return err != nil && strings.Contains(err.Error(), "NOSCRIPT") }
