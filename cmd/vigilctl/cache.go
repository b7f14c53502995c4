package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
	"github.com/vigilsec/vigil/pkg/service"
)

// cacheKeyPrefix starts every enrichment cache key (enrich's cache.KeyPrefix; internal packages
// cannot be imported from here).
const cacheKeyPrefix = "vigil:enrich:v1:"

// recordKeyPrefix starts the keys of enrich's shared record cache (cache.RecordPrefix):
// <prefix><scope>:<a|p>:<indicator key>, one indicator's encoded results per configuration.
const recordKeyPrefix = "vigil:enrich:rec:v1:"

const cacheUsage = `Usage:
  vigilctl cache show  INDICATOR
  vigilctl cache purge INDICATOR

INDICATOR is "type:value" (ipv4, ipv6, ip, domain, url, md5, sha1, sha256, hash) or a bare value
whose type is guessed (IP, URL, hex hash, else domain). It is canonicalised first, so
"Example.ORG." and "hxxp://example[.]org" find the same entries as the pipeline's keys.
`

func (a *app) cmdCache(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.io.err, cacheUsage)
		return fmt.Errorf("%w: cache needs a subcommand", errUsage)
	}
	switch args[0] {
	case "show":
		return a.cacheShow(ctx, args[1:])
	case "purge":
		return a.cachePurge(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(a.io.err, cacheUsage)
		return flag.ErrHelp
	default:
		fmt.Fprint(a.io.err, cacheUsage)
		return fmt.Errorf("%w: unknown cache subcommand %q", errUsage, args[0])
	}
}

// indicatorKinds are the kinds accepted before the first ':' of an INDICATOR argument.
var indicatorKinds = map[string]bool{
	"ip": true, events.TypeIPv4: true, events.TypeIPv6: true, events.TypeDomain: true, events.TypeURL: true,
	"hash": true, events.TypeMD5: true, events.TypeSHA1: true, events.TypeSHA256: true,
}

// parseIndicatorArg canonicalises an INDICATOR argument with pkg/indicator.
func parseIndicatorArg(s string) (events.Indicator, error) {
	s = strings.TrimSpace(s)
	if kind, v, ok := strings.Cut(s, ":"); ok && indicatorKinds[strings.ToLower(kind)] {
		return indicator.Canonical(strings.ToLower(kind), v)
	}
	return indicator.Canonical(guessKind(s), s)
}

// guessKind picks the indicator kind of a bare value.
func guessKind(s string) string {
	r := indicator.Refang(s)
	if _, err := netip.ParseAddr(strings.Trim(r, "[]")); err == nil {
		return "ip"
	}
	if strings.Contains(r, "://") {
		return events.TypeURL
	}
	switch len(s) {
	case 32, 40, 64:
		if isHex(s) {
			return "hash"
		}
	}
	return events.TypeDomain
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// globEscape escapes Redis MATCH pattern characters.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// cachedEntry is one provider's cached answer.
type cachedEntry struct {
	Key       string          `json:"key"`
	Provider  string          `json:"provider"`
	CredFP    string          `json:"cred_fingerprint"`
	Status    string          `json:"status,omitempty"`
	FetchedAt time.Time       `json:"fetched_at,omitzero"`
	EntryTTL  string          `json:"entry_ttl,omitempty"`  // TTL the entry was written with
	ExpiresIn string          `json:"expires_in,omitempty"` // what Redis has left (PTTL)
	Value     json.RawMessage `json:"value,omitempty"`
	Error     string          `json:"error,omitempty"`
}

// wireEntry mirrors the fields of enrich's Redis JSON that vigilctl summarises.
type wireEntry struct {
	Status    string `json:"s"`
	FetchedAt int64  `json:"t"`   // Unix milliseconds
	TTL       int64  `json:"ttl"` // milliseconds
}

// splitCacheKey returns provider, credential fingerprint and indicator key of a cache key.
func splitCacheKey(key string) (provider, credFP, indKey string, ok bool) {
	rest, ok := strings.CutPrefix(key, cacheKeyPrefix)
	if !ok {
		return "", "", "", false
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// cacheRedis is the part of the Redis client the cache commands use.
type cacheRedis interface {
	Scan(ctx context.Context, cursor uint64, match string, count int64) *redis.ScanCmd
	Get(ctx context.Context, key string) *redis.StringCmd
	PTTL(ctx context.Context, key string) *redis.DurationCmd
	Unlink(ctx context.Context, keys ...string) *redis.IntCmd
}

// findCached returns every provider's entry for ind, sorted by key.
func findCached(ctx context.Context, rdb cacheRedis, ind events.Indicator) ([]cachedEntry, error) {
	pattern := cacheKeyPrefix + "*:*:" + globEscape(ind.Key())
	seen := map[string]bool{}
	var keys []string
	var cursor uint64
	for {
		ks, next, err := rdb.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", pattern, err)
		}
		for _, k := range ks {
			if _, _, ik, ok := splitCacheKey(k); ok && ik == ind.Key() && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	sort.Strings(keys)
	out := make([]cachedEntry, 0, len(keys))
	for _, k := range keys {
		p, fp, _, _ := splitCacheKey(k)
		e := cachedEntry{Key: k, Provider: p, CredFP: fp}
		raw, err := rdb.Get(ctx, k).Bytes()
		if errors.Is(err, redis.Nil) {
			continue // expired between SCAN and GET
		}
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", k, err)
		}
		if left, err := rdb.PTTL(ctx, k).Result(); err == nil && left > 0 {
			e.ExpiresIn = left.Round(time.Second).String()
		}
		var w wireEntry
		if json.Valid(raw) {
			e.Value = raw
			if err := json.Unmarshal(raw, &w); err == nil {
				e.Status = w.Status
				if w.FetchedAt > 0 {
					e.FetchedAt = time.UnixMilli(w.FetchedAt).UTC()
				}
				if w.TTL > 0 {
					e.EntryTTL = (time.Duration(w.TTL) * time.Millisecond).String()
				}
			}
		} else {
			e.Error = "not JSON"
		}
		out = append(out, e)
	}
	return out, nil
}

func (a *app) redisClient(ctx context.Context) (redis.UniversalClient, error) {
	if a.cfg.Redis.Addr == "" {
		return nil, fmt.Errorf("%w: no Redis address (--redis or VIGIL_REDIS_ADDR)", errUsage)
	}
	rdb, err := service.NewRedis(ctx, a.cfg.Redis)
	if err != nil {
		return nil, fmt.Errorf("connect redis: %w", err)
	}
	return rdb, nil
}

// cacheShowReport is `cache show`'s output.
type cacheShowReport struct {
	Indicator string        `json:"indicator"`
	Entries   []cachedEntry `json:"entries"`
}

func (a *app) cacheShow(ctx context.Context, args []string) error {
	fs := a.flagSet("cache show", "vigilctl cache show INDICATOR",
		"Shows each provider's cached answer for INDICATOR: status, when it was fetched, the TTL it was\n"+
			"stored with, the time Redis has left, and the stored JSON (with --json).\n")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	ind, err := parseIndicatorArg(pos[0])
	if err != nil {
		return fmt.Errorf("%w: indicator %q: %v", errUsage, pos[0], err)
	}
	rdb, err := a.redisClient(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	entries, err := findCached(ctx, rdb, ind)
	if err != nil {
		return err
	}
	rep := cacheShowReport{Indicator: ind.Key(), Entries: entries}
	return a.emit(rep, func(w io.Writer) error { return cacheShowTable(w, rep) })
}

func cacheShowTable(w io.Writer, r cacheShowReport) error {
	if len(r.Entries) == 0 {
		_, err := fmt.Fprintf(w, "no cached entries for %s\n", r.Indicator)
		return err
	}
	fmt.Fprintf(w, "%s: %d cached entries\n", r.Indicator, len(r.Entries))
	rows := make([][]string, 0, len(r.Entries))
	for _, e := range r.Entries {
		fetched := "-"
		if !e.FetchedAt.IsZero() {
			fetched = e.FetchedAt.Format(time.RFC3339)
		}
		val := string(e.Value)
		if e.Error != "" {
			val = e.Error
		}
		rows = append(rows, []string{e.Provider, e.CredFP, dash(e.Status), fetched, dash(e.EntryTTL), dash(e.ExpiresIn), truncate(val, 100)})
	}
	return writeTable(w, []string{"PROVIDER", "CRED", "STATUS", "FETCHED AT", "TTL", "EXPIRES IN", "VALUE"}, rows)
}

// cachePurgeReport is `cache purge`'s output.
type cachePurgeReport struct {
	Indicator string   `json:"indicator"`
	Deleted   []string `json:"deleted"`
}

func (a *app) cachePurge(ctx context.Context, args []string) error {
	fs := a.flagSet("cache purge", "vigilctl cache purge INDICATOR",
		"Deletes every provider's cached answer for INDICATOR from Redis, so its next sighting is\n"+
			"enriched afresh. Running enrich replicas may still serve an in-process (L1) copy until it\n"+
			"expires (at most their L1 TTL, 10m by default).\n")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	ind, err := parseIndicatorArg(pos[0])
	if err != nil {
		return fmt.Errorf("%w: indicator %q: %v", errUsage, pos[0], err)
	}
	rdb, err := a.redisClient(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	deleted, err := purgeCached(ctx, rdb, ind)
	if err != nil {
		return err
	}
	rep := cachePurgeReport{Indicator: ind.Key(), Deleted: deleted}
	return a.emit(rep, func(w io.Writer) error {
		fmt.Fprintf(w, "purged %d cached entries for %s\n", len(rep.Deleted), rep.Indicator)
		for _, k := range rep.Deleted {
			fmt.Fprintln(w, "  "+k)
		}
		return nil
	})
}

// purgeCached deletes ind's entries and returns their keys.
func purgeCached(ctx context.Context, rdb cacheRedis, ind events.Indicator) ([]string, error) {
	entries, err := findCached(ctx, rdb, ind)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	if len(keys) == 0 {
		return keys, nil
	}
	// the encoded records built from those entries go with them
	records, err := findRecords(ctx, rdb, ind)
	if err != nil {
		return nil, err
	}
	if err := rdb.Unlink(ctx, append(keys, records...)...).Err(); err != nil {
		return nil, fmt.Errorf("delete %d keys: %w", len(keys)+len(records), err)
	}
	return keys, nil
}

// findRecords lists the shared record-cache keys of ind (every configuration scope, allow-listed or not).
func findRecords(ctx context.Context, rdb cacheRedis, ind events.Indicator) ([]string, error) {
	pattern := recordKeyPrefix + "*:" + globEscape(ind.Key())
	var keys []string
	var cursor uint64
	for {
		ks, next, err := rdb.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", pattern, err)
		}
		for _, k := range ks {
			// <scope>:<a|p>:<indicator key>, the scope without ':'
			rest := strings.TrimPrefix(k, recordKeyPrefix)
			scope, tail, ok := strings.Cut(rest, ":")
			if ok && scope != "" && len(tail) > 2 && (tail[0] == 'a' || tail[0] == 'p') && tail[1] == ':' && tail[2:] == ind.Key() && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	return keys, nil
}
