package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type profResult struct {
	top []string
	err error
}

// cpuProfile fetches /debug/pprof/profile from the service's ops port and summarises it with
// `go tool pprof -top`. The raw profile stays in the run's log directory.
func (b *bench) cpuProfile(ctx context.Context, p *proc, svc string, d time.Duration) profResult {
	secs := int(d.Seconds())
	body, err := getBody(ctx, "http://"+p.opsAddr+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), d+30*time.Second)
	if err != nil {
		return profResult{err: err}
	}
	file := filepath.Join(b.logDir, svc+".cpu.pprof")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		return profResult{err: fmt.Errorf("save profile: %w", err)}
	}
	bin := filepath.Join(b.cfg.BinDir, svc)
	flat, err := pprofRun(ctx, bin, file, "-top", "-nodecount=12")
	if err != nil {
		return profResult{err: err}
	}
	// the same profile by cumulative time, runtime frames hidden: where the service's own code
	// and its libraries spend (including the allocations the GC then pays for)
	cum, err := pprofRun(ctx, bin, file, "-top", "-cum", "-nodecount=15", `-hide=^(runtime|internal/|syscall|sync|reflect)`)
	if err != nil {
		return profResult{err: err}
	}
	top := append(pprofTop(flat, 12), "-- by cumulative time, runtime frames hidden --")
	return profResult{top: append(top, pprofTop(cum, 15)...)}
}

// heapProfile fetches the in-use heap profile of a running service and summarises it.
func (b *bench) heapProfile(ctx context.Context, p *proc, svc string) profResult {
	body, err := getBody(ctx, "http://"+p.opsAddr+"/debug/pprof/heap", 30*time.Second)
	if err != nil {
		return profResult{err: err}
	}
	file := filepath.Join(b.logDir, svc+".heap.pprof")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		return profResult{err: fmt.Errorf("save profile: %w", err)}
	}
	out, err := pprofRun(ctx, filepath.Join(b.cfg.BinDir, svc), file, "-top", "-sample_index=inuse_space", "-nodecount=10")
	if err != nil {
		return profResult{err: err}
	}
	return profResult{top: pprofTop(out, 10)}
}

func pprofRun(ctx context.Context, bin, file string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, args...), bin, file)...).Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w", err)
	}
	return string(out), nil
}

// pprofTop keeps the summary lines and the first n rows of `pprof -top` output.
func pprofTop(out string, n int) []string {
	var lines []string
	rows := 0
	inTable := false
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case t == "":
			continue
		case strings.HasPrefix(t, "flat"):
			inTable = true
			lines = append(lines, t)
		case inTable:
			if rows < n {
				lines = append(lines, t)
				rows++
			}
		case strings.HasPrefix(t, "Duration:") || strings.HasPrefix(t, "Showing nodes") || strings.HasPrefix(t, "Type:"):
			lines = append(lines, t)
		}
	}
	return lines
}
