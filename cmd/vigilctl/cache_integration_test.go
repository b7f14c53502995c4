//go:build integration

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/pkg/envconf"
)

// testRedis connects to VIGIL_TEST_REDIS_ADDR (default 127.0.0.1:36379) and fails when it is down.
func testRedis(t *testing.T) (redis.UniversalClient, string) {
	t.Helper()
	addr := envconf.New(os.LookupEnv).String("VIGIL_TEST_REDIS_ADDR", "127.0.0.1:36379")
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis %s unreachable: %v", addr, err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, addr
}

func TestCacheShowPurgeRedis(t *testing.T) {
	rdb, addr := testRedis(t)
	ctx := t.Context()
	sfx := make([]byte, 4)
	_, _ = rand.Read(sfx)
	// a unique domain per run so parallel runs never see each other's keys
	dom := "vigilctl-" + hex.EncodeToString(sfx) + ".example.org"
	fetched := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	entry := func(status string, ttl time.Duration) string {
		b, _ := json.Marshal(map[string]any{"s": status, "t": fetched.UnixMilli(), "ttl": ttl.Milliseconds(), "e": map[string]any{"cc": "DE"}})
		return string(b)
	}
	keys := map[string]string{
		cacheKeyPrefix + "shodan:anon:domain:" + dom:        entry("ok", time.Hour),
		cacheKeyPrefix + "greynoise:1a2b3c4d:domain:" + dom: entry("not_found", 10*time.Minute),
	}
	other := cacheKeyPrefix + "shodan:anon:domain:sub." + dom // another indicator: must survive the purge
	keys[other] = entry("ok", time.Hour)
	// enrich's shared records of the indicator (two scopes, allow-listed or not) go with its entries
	records := []string{recordKeyPrefix + "0123456789abcdef:p:domain:" + dom, recordKeyPrefix + "fedcba9876543210:a:domain:" + dom}
	otherRecord := recordKeyPrefix + "0123456789abcdef:p:domain:sub." + dom
	for _, k := range append(records, otherRecord) {
		keys[k] = "record"
	}
	for k, v := range keys {
		if err := rdb.Set(ctx, k, v, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for k := range keys {
			rdb.Del(context.Background(), k)
		}
	})

	// the argument is canonicalised: upper case, trailing dot and defanging all map to the key
	arg := strings.ToUpper(strings.Replace(dom, ".", "[.]", 1)) + "."
	out, _, err := runCmd(t, nil, "--redis", addr, "cache", "show", arg, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep cacheShowReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Indicator != "domain:"+dom || len(rep.Entries) != 2 {
		t.Fatalf("show = %+v", rep)
	}
	g, s := rep.Entries[0], rep.Entries[1] // sorted by key: greynoise first
	if g.Provider != "greynoise" || g.CredFP != "1a2b3c4d" || g.Status != "not_found" || g.EntryTTL != "10m0s" {
		t.Errorf("greynoise entry = %+v", g)
	}
	if s.Provider != "shodan" || !s.FetchedAt.Equal(fetched) || s.ExpiresIn == "" || !strings.Contains(strings.Join(strings.Fields(string(s.Value)), ""), `"cc":"DE"`) {
		t.Errorf("shodan entry = %+v", s)
	}

	out, _, err = runCmd(t, nil, "--redis", addr, "cache", "show", "domain:"+dom)
	if err != nil || !strings.Contains(out, "2 cached entries") || !strings.Contains(out, "not_found") {
		t.Errorf("show table (%v):\n%s", err, out)
	}

	out, _, err = runCmd(t, nil, "--redis", addr, "cache", "purge", dom)
	if err != nil || !strings.Contains(out, "purged 2 cached entries for domain:"+dom) {
		t.Fatalf("purge (%v):\n%s", err, out)
	}
	n, err := rdb.Exists(ctx, cacheKeyPrefix+"shodan:anon:domain:"+dom, cacheKeyPrefix+"greynoise:1a2b3c4d:domain:"+dom).Result()
	if err != nil || n != 0 {
		t.Errorf("%d purged keys still exist (%v)", n, err)
	}
	if n, _ := rdb.Exists(ctx, other, otherRecord).Result(); n != 2 {
		t.Error("purge deleted another indicator's entry or record")
	}
	if n, _ := rdb.Exists(ctx, records...).Result(); n != 0 {
		t.Errorf("%d shared records of the purged indicator still exist", n)
	}
	out, _, err = runCmd(t, nil, "--redis", addr, "cache", "show", dom)
	if err != nil || !strings.Contains(out, "no cached entries") {
		t.Errorf("show after purge (%v):\n%s", err, out)
	}
}

func TestCacheRedisUnreachable(t *testing.T) {
	_, _, err := runCmd(t, nil, "--redis", "127.0.0.1:1", "cache", "show", "203.0.113.7")
	if err == nil || !strings.Contains(err.Error(), "connect redis") {
		t.Errorf("err = %v", err)
	}
}
