package writer

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// storeContract checks a FingerprintStore; keys are namespaced by ns so runs do not collide.
func storeContract(t *testing.T, s FingerprintStore, ns string) {
	t.Helper()
	ctx := context.Background()
	k1, k2, missing := ns+"ipv4:203.0.113.7", ns+"domain:example.org", ns+"sha256:absent"
	got, err := s.GetMany(ctx, []string{k1, missing})
	if err != nil || len(got) != 0 {
		t.Fatalf("GetMany on empty store = %v, %v", got, err)
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	r1 := Record{Fingerprint: "fp1", ThreatQID: 42, Status: "Active", Score: -1, Action: "block", Priority: 8,
		AttrNames: []string{"Is VPN"}, AttrsFP: "a1", WrittenAt: at, Observed: &Observed{Status: "Whitelisted", Score: -1}}
	r2 := Record{Fingerprint: "fp2", Score: 7, WrittenAt: at}
	if err := s.SetMany(ctx, map[string]Record{k1: r1, k2: r2}); err != nil {
		t.Fatalf("SetMany: %v", err)
	}
	got, err = s.GetMany(ctx, []string{k1, k2, missing})
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("GetMany returned %d records, want 2 (missing key omitted)", len(got))
	}
	g1 := got[k1]
	if g1.Fingerprint != "fp1" || g1.ThreatQID != 42 || g1.Status != "Active" || g1.Score != -1 || g1.Priority != 8 ||
		len(g1.AttrNames) != 1 || !g1.WrittenAt.Equal(at) || g1.Observed == nil || g1.Observed.Status != "Whitelisted" {
		t.Fatalf("record 1 = %+v", g1)
	}
	if got[k2].Score != 7 || got[k2].Observed != nil {
		t.Fatalf("record 2 = %+v", got[k2])
	}
	r1.Fingerprint = "fp1b"
	if err := s.SetMany(ctx, map[string]Record{k1: r1}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetMany(ctx, []string{k1}); got[k1].Fingerprint != "fp1b" {
		t.Fatalf("overwrite: %+v", got[k1])
	}
	// Mutating a returned record must not change the stored one.
	g := got[k1]
	g.Observed.Status = "mutated"
	if again, _ := s.GetMany(ctx, []string{k1}); again[k1].Observed.Status != "Whitelisted" {
		t.Fatal("store shares memory with callers")
	}
}

func TestMemoryStoreContract(t *testing.T) {
	t.Parallel()
	s := NewMemoryStore()
	storeContract(t, s, "")
	if s.Len() != 2 {
		t.Fatalf("Len = %d", s.Len())
	}
}

// scanner is the store's bounded iteration (both stores implement it).
type scanner interface {
	ScanMany(ctx context.Context, cursor string, count int) (map[string]Record, string, error)
}

// scanContract checks that a full round of ScanMany steps visits every key under ns in slices.
func scanContract(t *testing.T, s interface {
	FingerprintStore
	scanner
}, ns string) {
	t.Helper()
	ctx := context.Background()
	want := map[string]Record{}
	for i := range 25 {
		want[fmt.Sprintf("%sipv4:192.0.2.%d", ns, i)] = Record{Fingerprint: fmt.Sprint(i), ThreatQID: int64(i + 1)}
	}
	if err := s.SetMany(ctx, want); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	cursor, steps := "", 0
	for {
		recs, next, err := s.ScanMany(ctx, cursor, 10)
		if err != nil {
			t.Fatalf("ScanMany: %v", err)
		}
		for k, r := range recs {
			if w, ok := want[k]; ok {
				if r.ThreatQID != w.ThreatQID {
					t.Fatalf("scanned %s = %+v, want id %d", k, r, w.ThreatQID)
				}
				seen[k] = true
			}
		}
		steps++
		if next == "" {
			break
		}
		if steps > 100000 {
			t.Fatal("scan never completed")
		}
		cursor = next
	}
	if len(seen) != len(want) {
		t.Fatalf("a full scan saw %d of %d keys", len(seen), len(want))
	}
}

func TestMemoryStoreScan(t *testing.T) {
	t.Parallel()
	s := NewMemoryStore()
	scanContract(t, s, "")
	recs, next, err := s.ScanMany(context.Background(), "", 10)
	if err != nil || len(recs) != 10 || next == "" {
		t.Fatalf("first slice = %d records, next %q, %v; want 10 and a cursor", len(recs), next, err)
	}
}
