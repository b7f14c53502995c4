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
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=15",
		filepath.Join(b.cfg.BinDir, svc), file).Output()
	if err != nil {
		return profResult{err: fmt.Errorf("go tool pprof: %w", err)}
	}
	return profResult{top: pprofTop(string(out), 15)}
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
		case strings.HasPrefix(t, "Duration:") || strings.HasPrefix(t, "Showing nodes"):
			lines = append(lines, t)
		}
	}
	return lines
}
