package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/services/sink/internal/threatq"
	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
	"github.com/vigilsec/vigil/services/sink/internal/writer"
)

func client(t *testing.T, emu *tqemu.Server, password string) *threatq.Client {
	t.Helper()
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	c, err := threatq.New(threatq.Config{BaseURL: srv.URL, ClientID: tqemu.DefaultClientID, Email: tqemu.DefaultEmail,
		Password: password, AllowInsecureHTTP: true, Timeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResolveWaitsForThreatQ(t *testing.T) {
	t.Parallel()
	emu := tqemu.New(tqemu.Options{Seed: 1})
	emu.SetFault(tqemu.Faults{FailNext: 1, ErrorStatus: 503})
	tq := client(t, emu, tqemu.DefaultPassword)
	if err := resolve(t.Context(), tq, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("resolve after one 503: %v", err)
	}
	if _, err := tq.StatusID("Active"); err != nil {
		t.Fatalf("status ids not loaded: %v", err)
	}
	if emu.Stats().FaultsInjected != 1 {
		t.Fatalf("faults injected = %d, want 1", emu.Stats().FaultsInjected)
	}
}

func TestResolveRefusedCredentialsFailFast(t *testing.T) {
	t.Parallel()
	tq := client(t, tqemu.New(tqemu.Options{Seed: 1}), "wrong")
	start := time.Now()
	err := resolve(t.Context(), tq, slog.New(slog.DiscardHandler))
	if !errors.Is(err, threatq.ErrUnauthorized) || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("resolve with a wrong password = %v after %s, want ErrUnauthorized at once", err, time.Since(start))
	}
}

func TestResolveStopsWithContext(t *testing.T) {
	t.Parallel()
	emu := tqemu.New(tqemu.Options{Seed: 1})
	emu.SetFault(tqemu.Faults{Down: true})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := resolve(ctx, client(t, emu, tqemu.DefaultPassword), slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("resolve returned nil while ThreatQ is down")
	}
}

func TestCheckStatuses(t *testing.T) {
	t.Parallel()
	tq := client(t, tqemu.New(tqemu.Options{Seed: 1}), tqemu.DefaultPassword)
	if err := tq.Resolve(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := checkStatuses(tq, writer.Config{Statuses: writer.DefaultStatuses(), DefaultStatus: "Review"}); err != nil {
		t.Fatalf("default statuses: %v", err)
	}
	bad := writer.DefaultStatuses()
	bad["review"] = "Under Review"
	err := checkStatuses(tq, writer.Config{Statuses: bad, DefaultStatus: "Review"})
	if err == nil || !strings.Contains(err.Error(), "Under Review") {
		t.Fatalf("unknown status: err = %v", err)
	}
}
