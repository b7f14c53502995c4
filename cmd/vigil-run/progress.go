package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// bar draws a fixed-width progress bar: done of total.
func bar(done, total int64, width int) string {
	if total <= 0 {
		return strings.Repeat("·", width)
	}
	n := int(done * int64(width) / total)
	n = min(max(n, 0), width)
	return strings.Repeat("█", n) + strings.Repeat("·", width-n)
}

// progressLine is one status line: the replay and each stage's consumption of its input.
func progressLine(replayed, toReplay int64, st []stageProgress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "replay %s %d/%d", bar(replayed, toReplay, 10), replayed, toReplay)
	for _, s := range st {
		fmt.Fprintf(&b, " | %s %s %d/%d", s.Name, bar(s.Consumed, s.Total, 8), s.Consumed, s.Total)
	}
	return b.String()
}

// liveLine redraws one line on a terminal (carriage return, clear to end of line). On
// anything else (a pipe, a CI log) it prints a changed line at most every 5 seconds.
type liveLine struct {
	w       io.Writer
	enabled bool
	tty     bool
	drawn   bool
	last    string
	lastAt  time.Time
	pending string // latest line not yet printed (not a terminal)
}

func (l *liveLine) draw(s string) {
	if !l.enabled {
		return
	}
	if !l.tty {
		l.pending = s
		if s != l.last && time.Since(l.lastAt) >= 5*time.Second {
			fmt.Fprintln(l.w, s)
			l.last, l.lastAt = s, time.Now()
		}
		return
	}
	fmt.Fprintf(l.w, "\r\x1b[K%s", s)
	l.drawn = true
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// done ends the line so later output starts on a fresh one.
func (l *liveLine) done() {
	if l.enabled && !l.tty && l.pending != "" && l.pending != l.last {
		fmt.Fprintln(l.w, l.pending)
		l.last = l.pending
	}
	if l.enabled && l.drawn {
		fmt.Fprintln(l.w)
		l.drawn = false
	}
}
