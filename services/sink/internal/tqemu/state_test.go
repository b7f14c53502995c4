package tqemu_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
)

func TestSnapshotRoundTrip(t *testing.T) {
	f := newFixture(t, tqemu.Options{Seed: 3})
	f.mustCall("POST", "/api/indicators/consume", f.fixtureFile("consume_sdk.json"), 200)
	seven := 7
	if err := f.emu.AnalystSetScore("203.0.113.7", &seven); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "snap.json")
	if err := f.emu.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}

	other := tqemu.New(tqemu.Options{Seed: 99}) // different ids until loaded
	if err := other.LoadSnapshot(path); err != nil {
		t.Fatal(err)
	}
	a, b := f.emu.Indicators(), other.Indicators()
	if len(a) != len(b) || len(b) != 2 {
		t.Fatalf("%d vs %d indicators", len(a), len(b))
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Status != b[i].Status || a[i].Score != b[i].Score || len(a[i].Attributes) != len(b[i].Attributes) {
			t.Fatalf("indicator %d differs:\n%+v\n%+v", i, a[i], b[i])
		}
	}
	wantID, _ := f.emu.TypeID("IP Address")
	if gotID, _ := other.TypeID("IP Address"); gotID != wantID {
		t.Fatalf("type id after load %d, want %d", gotID, wantID)
	}
	// Upsert still finds the loaded indicator.
	ts := httptest.NewServer(other)
	defer ts.Close()
	req, _ := http.NewRequest("POST", ts.URL+"/api/indicators", bytes.NewBufferString(`{"value":"203.0.113.7","type":"IP Address"}`))
	req.Header.Set("Authorization", "Bearer "+other.IssueToken())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if n := len(other.Indicators()); n != 2 {
		t.Fatalf("re-post after load created a duplicate: %d indicators", n)
	}

	for name, content := range map[string]string{"garbage": "{", "empty": `{"version":1}`} {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := other.LoadSnapshot(p); err == nil {
			t.Fatalf("%s snapshot loaded without error", name)
		}
	}
}

// TestConcurrentConsume hammers one emulator from many goroutines; run with
// -race. Overlapping batches must still give one indicator per value.
func TestConcurrentConsume(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				body := fmt.Sprintf(`[{"value":"10.0.%d.%d","type":"IP Address","attributes":[{"name":"Worker","value":"%d"}]}]`, i%5, i, w)
				if r := f.call("POST", "/api/indicators/consume", body); r.code != 200 {
					errs <- fmt.Sprintf("worker %d: %d %s", w, r.code, r.body)
					return
				}
				if i%7 == 0 {
					_ = f.emu.AnalystSetStatus(fmt.Sprintf("10.0.%d.%d", i%5, i), "Whitelisted")
					_ = f.emu.Stats()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	inds := f.emu.Indicators()
	if len(inds) != 20 {
		t.Fatalf("%d indicators, want 20", len(inds))
	}
	for _, ind := range inds {
		if n := len(ind.Attr("Worker")); n != 8 {
			t.Fatalf("%s has %d Worker values, want 8", ind.Value, n)
		}
	}
}

// BenchmarkConsume500 measures consume throughput in batches of 500 (the
// SDK's batch size), reporting indicators/s. Half of each batch is new.
func BenchmarkConsume500(b *testing.B) {
	emu := tqemu.New(tqemu.Options{Seed: 1})
	tok := emu.IssueToken()
	batches := make([][]byte, 64)
	for i := range batches {
		var buf bytes.Buffer
		buf.WriteByte('[')
		for j := range 500 {
			if j > 0 {
				buf.WriteByte(',')
			}
			n := i*250 + j // consecutive batches overlap by half
			fmt.Fprintf(&buf, `{"value":"10.%d.%d.%d","type":{"name":"IP Address"},"status":{"name":"Review"},`+
				`"sources":[{"name":"Criminal IP","tlp_id":2}],"attributes":[{"name":"Open Port","value":"22"},{"name":"Is VPN","value":"No"}],"tags":["vigil"]}`,
				n>>16&255, n>>8&255, n&255)
		}
		buf.WriteByte(']')
		batches[i] = buf.Bytes()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest("POST", "/api/indicators/consume", bytes.NewReader(batches[i%len(batches)]))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		emu.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "indicators/s")
}
