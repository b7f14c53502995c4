//go:build linux

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
		// grandchildren die with the group (zombies left for init to reap do not count)
		if live := liveInGroup(t, p.Pid()); len(live) > 0 {
			t.Errorf("process group of %s still has live processes %v", p.spec.Name, live)
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

// liveInGroup lists the processes of process group pgid that are not zombies (from /proc).
func liveInGroup(t *testing.T, pgid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var live []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp …; comm may contain spaces, so cut after the last ')'
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(fields[2]); g == pgid {
			pid, _ := strconv.Atoi(strings.Fields(s)[0])
			live = append(live, pid)
		}
	}
	return live
}
