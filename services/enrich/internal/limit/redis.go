package limit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// takeScript checks every quota window, then the token bucket, and only if all allow consumes one token and
// one unit of each window, atomically, on Redis' clock.
//
// KEYS[1] bucket hash, KEYS[2..] one base key per quota window.
// ARGV[1] rate per second (0: none), ARGV[2] burst, then per quota: window ms, limit.
// Returns {1, 0, remaining} when granted, {0, wait ms, 1} when a quota refuses, {0, wait ms, 0} when the
// bucket refuses.
var takeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local nq = #KEYS - 1
local qkeys = {}
local remaining = -1
for i = 1, nq do
  local win = tonumber(ARGV[1 + 2 * i])
  local lim = tonumber(ARGV[2 + 2 * i])
  local idx = math.floor(now / win)
  local k = KEYS[1 + i] .. ':' .. idx
  qkeys[i] = k
  local used = tonumber(redis.call('GET', k) or '0')
  if used >= lim then
    return {0, (idx + 1) * win - now, 1}
  end
  local r = lim - used - 1
  if remaining < 0 or r < remaining then remaining = r end
end
if rate > 0 then
  local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  local tokens = burst
  if v[1] then
    tokens = math.min(burst, tonumber(v[1]) + math.max(0, now - tonumber(v[2])) * rate / 1000)
  end
  if tokens < 1 then
    return {0, math.ceil((1 - tokens) * 1000 / rate), 0}
  end
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
end
for i = 1, nq do
  if redis.call('INCR', qkeys[i]) == 1 then
    redis.call('PEXPIRE', qkeys[i], tonumber(ARGV[1 + 2 * i]) + 1000)
  end
end
return {1, 0, remaining}
`)

// reserveScript is takeScript for up to ARGV[1] calls at once: it grants k = min(n, whole tokens in the
// bucket, calls left in every quota window) and consumes k tokens and k units of each window, atomically.
//
// KEYS as takeScript; ARGV[1] n, ARGV[2] rate, ARGV[3] burst, then per quota: window ms, limit.
// Returns {k, remaining}; remaining is -1 without quotas.
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local k = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local nq = #KEYS - 1
local qkeys = {}
local used = {}
for i = 1, nq do
  local win = tonumber(ARGV[2 + 2 * i])
  local lim = tonumber(ARGV[3 + 2 * i])
  local key = KEYS[1 + i] .. ':' .. math.floor(now / win)
  qkeys[i] = key
  used[i] = tonumber(redis.call('GET', key) or '0')
  k = math.min(k, math.max(0, lim - used[i]))
end
local tokens = 0
if rate > 0 and k > 0 then
  local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  tokens = burst
  if v[1] then
    tokens = math.min(burst, tonumber(v[1]) + math.max(0, now - tonumber(v[2])) * rate / 1000)
  end
  k = math.min(k, math.floor(tokens))
end
local remaining = -1
for i = 1, nq do
  local r = tonumber(ARGV[3 + 2 * i]) - used[i] - k
  if remaining < 0 or r < remaining then remaining = r end
end
if k <= 0 then
  return {0, remaining}
end
if rate > 0 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - k), 'ts', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
end
for i = 1, nq do
  if redis.call('INCRBY', qkeys[i], k) == k then
    redis.call('PEXPIRE', qkeys[i], tonumber(ARGV[2 + 2 * i]) + 1000)
  end
end
return {k, remaining}
`)

// remainingScript returns the smallest number of calls left over the current windows (-1: no quota).
var remainingScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local remaining = -1
for i = 1, #KEYS do
  local win = tonumber(ARGV[2 * i - 1])
  local lim = tonumber(ARGV[2 * i])
  local used = tonumber(redis.call('GET', KEYS[i] .. ':' .. math.floor(now / win)) or '0')
  local r = math.max(0, lim - used)
  if remaining < 0 or r < remaining then remaining = r end
end
return remaining
`)

// redisBudget is a budget shared by every replica through Redis.
type redisBudget struct {
	rdb       redis.UniversalClient
	takeKeys  []string
	takeArgs  []any
	quotaKeys []string
	quotaArgs []any
	unlimited bool
}

func newRedisBudget(rdb redis.UniversalClient, provider string, cfg Config) *redisBudget {
	base := KeyPrefix + "{" + provider + "}:"
	b := &redisBudget{
		rdb:       rdb,
		takeKeys:  []string{base + "bucket"},
		takeArgs:  []any{strconv.FormatFloat(cfg.Rate, 'f', -1, 64), cfg.Burst},
		unlimited: cfg.Rate == 0 && len(cfg.Quotas) == 0,
	}
	for _, q := range cfg.Quotas {
		k := base + "quota:" + strconv.FormatInt(q.Window.Milliseconds(), 10)
		b.takeKeys = append(b.takeKeys, k)
		b.quotaKeys = append(b.quotaKeys, k)
		b.takeArgs = append(b.takeArgs, q.Window.Milliseconds(), q.Limit)
		b.quotaArgs = append(b.quotaArgs, q.Window.Milliseconds(), q.Limit)
	}
	return b
}

func (b *redisBudget) take(ctx context.Context) (decision, error) {
	if b.unlimited {
		return decision{ok: true, remaining: -1}, nil
	}
	res, err := takeScript.Run(ctx, b.rdb, b.takeKeys, b.takeArgs...).Int64Slice()
	if err != nil {
		return decision{}, fmt.Errorf("take script: %w", err)
	}
	if len(res) != 3 {
		return decision{}, fmt.Errorf("take script: %d values", len(res))
	}
	if res[0] == 1 {
		return decision{ok: true, remaining: res[2]}, nil
	}
	return decision{wait: time.Duration(max(res[1], 1)) * time.Millisecond, quota: res[2] == 1}, nil
}

func (b *redisBudget) takeN(ctx context.Context, n int) (int, int64, error) {
	if b.unlimited {
		return n, -1, nil
	}
	args := make([]any, 0, 1+len(b.takeArgs))
	args = append(args, n)
	args = append(args, b.takeArgs...)
	res, err := reserveScript.Run(ctx, b.rdb, b.takeKeys, args...).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("reserve script: %w", err)
	}
	if len(res) != 2 || res[0] < 0 || res[0] > int64(n) {
		return 0, 0, fmt.Errorf("reserve script: unexpected answer %v", res)
	}
	return int(res[0]), res[1], nil
}

func (b *redisBudget) remaining(ctx context.Context) (int64, error) {
	if len(b.quotaKeys) == 0 {
		return -1, nil
	}
	n, err := remainingScript.Run(ctx, b.rdb, b.quotaKeys, b.quotaArgs...).Int64()
	if err != nil {
		return 0, fmt.Errorf("remaining script: %w", err)
	}
	return n, nil
}
