package feedback

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/sink/internal/threatq"
	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
	"github.com/vigilsec/vigil/services/sink/internal/writer"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	emu    *tqemu.Server
	tq     *threatq.Client
	store  *writer.MemoryStore
	w      *writer.Writer
	cursor *MemoryCursor
	clock  *clock
	url    string
}

func newEnv(t *testing.T, seed uint64) *env {
	t.Helper()
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	emu := tqemu.New(tqemu.Options{Seed: seed, Now: clk.Now})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	o := emu.Options()
	tq, err := threatq.New(threatq.Config{BaseURL: srv.URL, ClientID: o.ClientID, Email: o.Email, Password: o.Password, AllowInsecureHTTP: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tq.Resolve(t.Context()); err != nil {
		t.Fatal(err)
	}
	store := writer.NewMemoryStore()
	w, err := writer.New(writer.Config{}, tq, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{emu: emu, tq: tq, store: store, w: w, cursor: &MemoryCursor{}, clock: clk, url: srv.URL}
}

func (e *env) poller(t *testing.T) *Poller {
	t.Helper()
	p, err := New(Config{PageSize: 2, Settle: 10 * time.Second, StartAt: e.clock.Now().Add(-time.Hour)}, e.tq, e.store, e.cursor, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.now = e.clock.Now
	return p
}

func (e *env) write(t *testing.T, value, action string) {
	t.Helper()
	e.w.Add(events.Verdict{Indicator: events.Indicator{Type: events.TypeIPv4, Value: value}, Action: action, Priority: 8, DecidedAt: e.clock.Now()}, value)
	if _, err := e.w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// pollAll runs one Run cycle (poll, publish, commit) and returns what was published.
func pollAll(t *testing.T, p *Poller) []events.Feedback {
	t.Helper()
	var got []events.Feedback
	err := p.runOnce(t.Context(), func(_ context.Context, fbs []events.Feedback) error {
		got = append(got, fbs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestDetectsAnalystChangesAcrossRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	for _, v := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5"} {
		e.write(t, v, events.VerdictBlock)
	}
	// An indicator Vigil never wrote, changed by an analyst: ignored.
	if _, err := e.tq.Consume(t.Context(), []threatq.Indicator{{Value: "198.51.100.9", Type: "IP Address", Status: "Active", Sources: []threatq.Source{{Name: "Other Feed"}}}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	p := e.poller(t)
	if got := pollAll(t, p); len(got) != 0 {
		t.Fatalf("feedback for Vigil's own writes: %+v", got)
	}

	e.clock.Add(time.Minute)
	if err := e.emu.AnalystSetStatus("203.0.113.2", "Whitelisted"); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.AnalystSetStatus("198.51.100.9", "Whitelisted"); err != nil {
		t.Fatal(err)
	}
	score := 2
	if err := e.emu.AnalystSetScore("203.0.113.4", &score); err != nil {
		t.Fatal(err)
	}
	// Too fresh (inside Settle): not yet reported.
	if got := pollAll(t, p); len(got) != 0 {
		t.Fatalf("unsettled changes reported: %+v", got)
	}
	e.clock.Add(time.Minute)
	got := pollAll(t, p)
	if len(got) != 2 {
		t.Fatalf("feedback = %+v, want 2", got)
	}
	byValue := map[string]events.Feedback{}
	for _, fb := range got {
		byValue[fb.Indicator.Value] = fb
	}
	wl := byValue["203.0.113.2"]
	if wl.Kind != KindStatusChanged || wl.NewStatus != "Whitelisted" || wl.PreviousStatus != "Active" ||
		wl.VigilAction != events.VerdictBlock || wl.VigilPriority != 8 || wl.ThreatQID == 0 || wl.Indicator.Type != events.TypeIPv4 {
		t.Fatalf("whitelist feedback = %+v", wl)
	}
	if sc := byValue["203.0.113.4"]; sc.Kind != KindScoreChanged || sc.NewScore != 2 {
		t.Fatalf("score feedback = %+v", sc)
	}

	// Restart: a new poller over the same cursor and store reports nothing again.
	e.clock.Add(time.Minute)
	if got := pollAll(t, e.poller(t)); len(got) != 0 {
		t.Fatalf("duplicates after restart: %+v", got)
	}
	// An unrelated update of the whitelisted indicator does not re-report it.
	if _, err := e.tq.Consume(t.Context(), []threatq.Indicator{{Value: "203.0.113.2", Type: "IP Address", Description: "touched"}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	if got := pollAll(t, e.poller(t)); len(got) != 0 {
		t.Fatalf("re-reported unchanged analyst state: %+v", got)
	}
	// A second change on the same indicator is reported.
	if err := e.emu.AnalystSetStatus("203.0.113.2", "Review"); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	got = pollAll(t, e.poller(t))
	if len(got) != 1 || got[0].NewStatus != "Review" || got[0].PreviousStatus != "Whitelisted" {
		t.Fatalf("second change = %+v", got)
	}
}

func TestCursorOnlyAfterPublish(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	e.write(t, "203.0.113.1", events.VerdictBlock)
	e.clock.Add(time.Minute)
	if err := e.emu.AnalystSetStatus("203.0.113.1", "Whitelisted"); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	p := e.poller(t)
	boom := errors.New("kafka down")
	err := p.runOnce(t.Context(), func(context.Context, []events.Feedback) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("runOnce = %v", err)
	}
	if pos, _ := e.cursor.Load(t.Context()); !pos.UpdatedAt.IsZero() {
		t.Fatalf("cursor saved despite failed publish: %+v", pos)
	}
	if got := pollAll(t, p); len(got) != 1 {
		t.Fatalf("feedback after failed publish = %+v, want it again", got)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3)
	p := e.poller(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- p.Run(ctx, 10*time.Millisecond, func(context.Context, []events.Feedback) error { return nil })
	}()
	time.Sleep(30 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not stop")
	}
	if pos, _ := e.cursor.Load(t.Context()); pos.UpdatedAt.IsZero() {
		t.Fatal("Run never committed a cursor")
	}
}

// deleteIndicator deletes an indicator in the emulator as an analyst would (DELETE /api/indicators/{id}).
func (e *env) deleteIndicator(t *testing.T, value string) int64 {
	t.Helper()
	in, ok := e.emu.Lookup("IP Address", value)
	if !ok {
		t.Fatalf("%s not in the emulator", value)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, fmt.Sprintf("%s/api/indicators/%d", e.url, in.ID), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.emu.IssueToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE indicator %d: %d", in.ID, resp.StatusCode)
	}
	return int64(in.ID)
}

func TestRemovalReportedOnceAcrossRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4)
	values := []string{"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5"}
	for _, v := range values {
		e.write(t, v, events.VerdictBlock)
	}
	e.clock.Add(time.Minute)
	newPoller := func() *Poller {
		p, err := New(Config{PageSize: 2, Settle: 10 * time.Second, StartAt: e.clock.Now().Add(-time.Hour), RemovalCheck: 2}, e.tq, e.store, e.cursor, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.now = e.clock.Now
		return p
	}
	p := newPoller()
	// A full round of the removal check (5 records, 2 per poll) with nothing deleted: no feedback.
	for range 3 {
		if got := pollAll(t, p); len(got) != 0 {
			t.Fatalf("feedback with nothing deleted: %+v", got)
		}
	}
	id := e.deleteIndicator(t, "203.0.113.4")
	var got []events.Feedback
	for range 3 { // one full round finds it
		got = append(got, pollAll(t, p)...)
	}
	if len(got) != 1 {
		t.Fatalf("feedback after a delete = %+v, want one removal", got)
	}
	fb := got[0]
	if fb.Kind != KindRemoved || fb.ThreatQID != id || fb.Indicator != (events.Indicator{Type: events.TypeIPv4, Value: "203.0.113.4"}) ||
		fb.VigilAction != events.VerdictBlock || fb.VigilPriority != 8 || fb.NewScore != -1 {
		t.Fatalf("removal feedback = %+v", fb)
	}
	// Next rounds and a restarted poller over the same store and cursor: not reported again.
	for range 3 {
		if got := pollAll(t, p); len(got) != 0 {
			t.Fatalf("removal reported again: %+v", got)
		}
	}
	p2 := newPoller()
	for range 3 {
		if got := pollAll(t, p2); len(got) != 0 {
			t.Fatalf("removal reported again after restart: %+v", got)
		}
	}
}

func TestRemovalCursorOnlyAfterPublish(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 5)
	e.write(t, "203.0.113.1", events.VerdictBlock)
	e.clock.Add(time.Minute)
	e.deleteIndicator(t, "203.0.113.1")
	p := e.poller(t)
	boom := errors.New("kafka down")
	if err := p.runOnce(t.Context(), func(context.Context, []events.Feedback) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("runOnce = %v", err)
	}
	if recs, _ := e.store.GetMany(t.Context(), []string{"ipv4:203.0.113.1"}); recs["ipv4:203.0.113.1"].Removed {
		t.Fatal("record marked removed despite failed publish")
	}
	got := pollAll(t, p)
	if len(got) != 1 || got[0].Kind != KindRemoved {
		t.Fatalf("feedback after failed publish = %+v, want the removal again", got)
	}
	if got := pollAll(t, p); len(got) != 0 {
		t.Fatalf("removal reported twice: %+v", got)
	}
}

func TestRemovalCheckDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 6)
	e.write(t, "203.0.113.1", events.VerdictBlock)
	e.clock.Add(time.Minute)
	e.deleteIndicator(t, "203.0.113.1")
	p, err := New(Config{Settle: 10 * time.Second, RemovalCheck: -1}, e.tq, e.store, e.cursor, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.now = e.clock.Now
	if got := pollAll(t, p); len(got) != 0 {
		t.Fatalf("removal reported with the check disabled: %+v", got)
	}
}
