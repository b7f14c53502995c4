package cache

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// pair returns two Stores that share their backing tier (the same Store for L1-only; two Stores with
// separate L1s on one Redis), so a write through a is visible through b.
type pair func(t *testing.T) (a, b *Store)

var keySeq atomic.Int64

func uniqueKey(t *testing.T) string {
	t.Helper()
	return Key("fake", "abcd1234", events.Indicator{Type: events.TypeIPv4,
		Value: "198.51.100." + strconv.FormatInt(keySeq.Add(1)%250, 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)})
}

func sampleEntry(status string, ttl time.Duration) Entry {
	return Entry{
		Status: status,
		Fields: map[string]string{"inbound_score": "Critical", "is_vpn": "true"},
		Exposure: events.Exposure{
			Malicious: true, InboundScore: 5, VPN: true, ASN: 8075, ASName: "AS-X", Country: "US",
			OpenPorts: []events.Port{{Port: 3389, Protocol: "tcp", Service: "rdp", Vulnerable: true, Tags: []string{"Data Leak"}}},
			CVEs:      []events.CVE{{ID: "CVE-2021-23017", CVSS: 9.4, Ports: []int32{514}}},
			FirstSeen: time.UnixMilli(1_700_000_000_000).UTC(), LastSeen: time.UnixMilli(1_700_000_100_000).UTC(),
		},
		FetchedAt: time.UnixMilli(time.Now().UnixMilli()).UTC(),
		TTL:       ttl,
	}
}

// runContract checks the behaviour every Store configuration must have.
func runContract(t *testing.T, mk pair) {
	t.Run("set then get round-trips every field", func(t *testing.T) {
		a, b := mk(t)
		k := uniqueKey(t)
		want := sampleEntry(events.StatusOK, time.Minute)
		if err := a.Set(t.Context(), k, want); err != nil {
			t.Fatalf("set: %v", err)
		}
		got, ok, err := b.Get(t.Context(), k)
		if err != nil || !ok {
			t.Fatalf("get: ok=%v err=%v", ok, err)
		}
		want.Sorted = events.SortFields(want.Fields) // the Store fills the sorted pairs of what it returns
		if len(want.Sorted) == 0 {
			t.Fatal("sample entry has no fields")
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
	})
	t.Run("not_found is stored", func(t *testing.T) {
		a, b := mk(t)
		k := uniqueKey(t)
		e := Entry{Status: events.StatusNotFound, FetchedAt: time.Now(), TTL: time.Minute}
		if err := a.Set(t.Context(), k, e); err != nil {
			t.Fatalf("set: %v", err)
		}
		got, ok, _ := b.Get(t.Context(), k)
		if !ok || got.Status != events.StatusNotFound {
			t.Fatalf("got %+v ok=%v", got, ok)
		}
	})
	t.Run("only ok and not_found are cacheable", func(t *testing.T) {
		for _, st := range []string{events.StatusError, events.StatusRateLimited, events.StatusBreakerOpen, events.StatusSkipped, ""} {
			a, b := mk(t)
			k := uniqueKey(t)
			err := a.Set(t.Context(), k, sampleEntry(st, time.Minute))
			if !errors.Is(err, ErrNotCacheable) {
				t.Fatalf("status %q: err = %v, want ErrNotCacheable", st, err)
			}
			if _, ok, _ := b.Get(t.Context(), k); ok {
				t.Fatalf("status %q was stored", st)
			}
		}
	})
	t.Run("a bad entry in SetMany stores nothing", func(t *testing.T) {
		a, b := mk(t)
		good, bad := uniqueKey(t), uniqueKey(t)
		err := a.SetMany(t.Context(), map[string]Entry{good: sampleEntry(events.StatusOK, time.Minute), bad: sampleEntry(events.StatusError, time.Minute)})
		if !errors.Is(err, ErrNotCacheable) {
			t.Fatalf("err = %v", err)
		}
		got, _ := b.GetMany(t.Context(), []string{good, bad})
		if len(got) != 0 {
			t.Fatalf("stored %d entries, want 0", len(got))
		}
	})
	t.Run("zero ttl refused", func(t *testing.T) {
		a, _ := mk(t)
		if err := a.Set(t.Context(), uniqueKey(t), sampleEntry(events.StatusOK, 0)); !errors.Is(err, ErrNotCacheable) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("GetMany returns only present keys", func(t *testing.T) {
		a, b := mk(t)
		k1, k2, k3 := uniqueKey(t), uniqueKey(t), uniqueKey(t)
		if err := a.SetMany(t.Context(), map[string]Entry{k1: sampleEntry(events.StatusOK, time.Minute), k3: sampleEntry(events.StatusNotFound, time.Minute)}); err != nil {
			t.Fatalf("set: %v", err)
		}
		got, err := b.GetMany(t.Context(), []string{k1, k2, k3})
		if err != nil {
			t.Fatalf("getmany: %v", err)
		}
		if _, ok := got[k2]; ok || len(got) != 2 {
			t.Fatalf("got keys %v", got)
		}
	})
	t.Run("ttl enforced on read", func(t *testing.T) {
		a, b := mk(t)
		k := uniqueKey(t)
		if err := a.Set(t.Context(), k, sampleEntry(events.StatusOK, 500*time.Millisecond)); err != nil {
			t.Fatalf("set: %v", err)
		}
		if _, ok, _ := b.Get(t.Context(), k); !ok {
			t.Fatal("fresh entry missing")
		}
		time.Sleep(550 * time.Millisecond)
		if _, ok, _ := b.Get(t.Context(), k); ok {
			t.Fatal("expired entry served")
		}
	})
	t.Run("already expired entry is not stored", func(t *testing.T) {
		a, b := mk(t)
		k := uniqueKey(t)
		e := sampleEntry(events.StatusOK, time.Second)
		e.FetchedAt = time.Now().Add(-time.Hour)
		if err := a.Set(t.Context(), k, e); err != nil {
			t.Fatalf("set: %v", err)
		}
		if _, ok, _ := b.Get(t.Context(), k); ok {
			t.Fatal("expired entry served")
		}
	})
	t.Run("purge removes", func(t *testing.T) {
		a, b := mk(t)
		k := uniqueKey(t)
		if err := a.Set(t.Context(), k, sampleEntry(events.StatusOK, time.Minute)); err != nil {
			t.Fatalf("set: %v", err)
		}
		if err := b.Purge(t.Context(), k); err != nil {
			t.Fatalf("purge: %v", err)
		}
		if _, ok, _ := b.Get(t.Context(), k); ok {
			t.Fatal("purged entry served")
		}
	})
	t.Run("load fetches once for concurrent callers then serves cache", func(t *testing.T) {
		a, b := mk(t)
		k := uniqueKey(t)
		var calls atomic.Int32
		fetch := func(context.Context) (Entry, error) {
			calls.Add(1)
			time.Sleep(30 * time.Millisecond)
			return sampleEntry(events.StatusOK, time.Minute), nil
		}
		var wg sync.WaitGroup
		for i := range 50 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				if _, _, err := s.Load(t.Context(), k, nil, fetch); err != nil {
					t.Errorf("load: %v", err)
				}
			})
		}
		wg.Wait()
		if n := calls.Load(); n != 1 {
			t.Fatalf("fetch called %d times, want 1", n)
		}
		_, fromCache, err := b.Load(t.Context(), k, nil, fetch)
		if err != nil || !fromCache || calls.Load() != 1 {
			t.Fatalf("second load: fromCache=%v err=%v calls=%d", fromCache, err, calls.Load())
		}
	})
	t.Run("load errors are not cached", func(t *testing.T) {
		a, _ := mk(t)
		k := uniqueKey(t)
		boom := errors.New("boom")
		var calls atomic.Int32
		fetch := func(context.Context) (Entry, error) { calls.Add(1); return Entry{}, boom }
		for range 2 {
			if _, _, err := a.Load(t.Context(), k, nil, fetch); !errors.Is(err, boom) {
				t.Fatalf("err = %v", err)
			}
		}
		if calls.Load() != 2 {
			t.Fatalf("fetch called %d times, want 2 (errors must not be cached)", calls.Load())
		}
		if _, ok, _ := a.Get(t.Context(), k); ok {
			t.Fatal("error result stored")
		}
	})
	t.Run("load does not store an uncacheable entry", func(t *testing.T) {
		a, _ := mk(t)
		k := uniqueKey(t)
		e := sampleEntry(events.StatusError, time.Minute)
		got, fromCache, err := a.Load(t.Context(), k, nil, func(context.Context) (Entry, error) { return e, nil })
		if err != nil || fromCache || got.Status != events.StatusError {
			t.Fatalf("got %+v fromCache=%v err=%v", got, fromCache, err)
		}
		if _, ok, _ := a.Get(t.Context(), k); ok {
			t.Fatal("uncacheable entry stored")
		}
	})
}

func TestContractL1Only(t *testing.T) {
	runContract(t, func(t *testing.T) (*Store, *Store) {
		s := New(Config{L1Size: 1000}, nil, nil)
		return s, s
	})
}
