package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSupervisorStopsEveryChild(t *testing.T) {
	sup := newSupervisor(t.TempDir(), false, 300*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	polite, err := sup.Start(procSpec{Name: "polite", Path: "/bin/sh", Args: []string{"-c", "echo hello; exec sleep 30"}})
	if err != nil {
		t.Fatal(err)
	}
	// ignores SIGTERM: must be killed after the stop timeout
	stubborn, err := sup.Start(procSpec{Name: "stubborn", Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; while :; do sleep 0.05; done"}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	sup.StopAll()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stop took %s", d)
	}
	for _, p := range []*proc{polite, stubborn} {
		if exited, _ := p.Exited(); !exited {
			t.Errorf("%s still running", p.spec.Name)
		}
		// grandchildren die with the group; init reaps them a moment later
		gone := false
		for i := 0; i < 50 && !gone; i++ {
			gone = syscall.Kill(-p.Pid(), 0) != nil
			time.Sleep(20 * time.Millisecond)
		}
		if !gone {
			t.Errorf("process group of %s still exists", p.spec.Name)
		}
	}
	if got := tail(polite.LogPath, 5); !strings.Contains(got, "hello") {
		t.Errorf("log tail = %q, want the child's output", got)
	}
}

func TestWatchExitsNamesTheChild(t *testing.T) {
	sup := newSupervisor(t.TempDir(), false, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer sup.StopAll()
	if _, err := sup.Start(procSpec{Name: "long", Path: "/bin/sh", Args: []string{"-c", "exec sleep 30"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sup.Start(procSpec{Name: "crasher", Path: "/bin/sh", Args: []string{"-c", "echo boom >&2; exit 3"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := sup.WatchExits(ctx)
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "crasher") || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v, want ErrExited naming crasher with its log tail", err)
	}
}
