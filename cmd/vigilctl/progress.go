package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// progress draws a one-line bar on a terminal ("\r" redraws); elsewhere it prints only the final
// count. It is safe for concurrent use (producer callbacks).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	label string
	total int
	done  int
}

func newProgress(w io.Writer, tty bool, label string, total int) *progress {
	p := &progress{w: w, tty: tty, label: label, total: total}
	p.draw()
	return p
}

// Add records n more finished items.
func (p *progress) Add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.draw()
}

// Done ends the bar's line.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintln(p.w)
		return
	}
	fmt.Fprintf(p.w, "%s: %d/%d\n", p.label, p.done, p.total)
}

func (p *progress) draw() {
	if !p.tty {
		return
	}
	fmt.Fprintf(p.w, "\r%s %s %d/%d", p.label, bar(p.done, p.total, 30), p.done, p.total)
}

// bar renders done/total as a bracketed bar of width cells.
func bar(done, total, width int) string {
	filled := width
	if total > 0 {
		filled = min(width, done*width/total)
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}
