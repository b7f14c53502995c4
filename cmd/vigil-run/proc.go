package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrExited means a child process ended while it was still needed.
var ErrExited = errors.New("process exited")

// procSpec describes one child process.
type procSpec struct {
	Name string   // short name, also the log file name
	Path string   // executable
	Args []string // arguments
	Env  []string // complete environment
}

// proc is a started child. Its output goes to LogPath.
type proc struct {
	spec    procSpec
	LogPath string
	cmd     *exec.Cmd
	logf    *os.File
	done    chan struct{} // closed when the process has been waited for
	err     error         // wait result, valid after done
}

// supervisor starts children and stops them all, in reverse start order, SIGTERM first and
// SIGKILL after a timeout. It is safe for concurrent use.
type supervisor struct {
	logDir      string
	appendLogs  bool
	stopTimeout time.Duration
	log         *slog.Logger

	mu    sync.Mutex
	procs []*proc
}

func newSupervisor(logDir string, appendLogs bool, stopTimeout time.Duration, log *slog.Logger) *supervisor {
	return &supervisor{logDir: logDir, appendLogs: appendLogs, stopTimeout: stopTimeout, log: log}
}

// Start launches a child in its own process group (so a terminal's Ctrl-C reaches only
// vigil-run, which then stops the children in order) with a parent-death signal where the OS
// has one (so a killed vigil-run leaves no orphans).
func (s *supervisor) Start(spec procSpec) (*proc, error) {
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	logPath := filepath.Join(s.logDir, spec.Name+".log")
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if s.appendLogs {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(logPath, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", logPath, err)
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = spec.Env
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s (%s): %w", spec.Name, spec.Path, err)
	}
	p := &proc{spec: spec, LogPath: logPath, cmd: cmd, logf: f, done: make(chan struct{})}
	go func() { // ends when the child ends; Stop waits for it
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	s.log.Debug("started", "name", spec.Name, "pid", cmd.Process.Pid, "log", logPath)
	return p, nil
}

// Exited reports whether the child has ended, and how.
func (p *proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Done is closed when the child has ended.
func (p *proc) Done() <-chan struct{} { return p.done }

// Pid is the child's process id.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to the child's process group and SIGKILL after timeout. It returns once
// the child has been waited for.
func (p *proc) stop(timeout time.Duration) (killed bool) {
	if ok, _ := p.Exited(); ok {
		return false
	}
	signalGroup(p.cmd.Process, syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return false
	case <-t.C:
	}
	signalGroup(p.cmd.Process, syscall.SIGKILL)
	<-p.done
	return true
}

// StopAll stops every child in reverse start order: producers of work first, the broker last.
func (s *supervisor) StopAll() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if p.stop(s.stopTimeout) {
			s.log.Warn("killed after stop timeout", "name", p.spec.Name, "timeout", s.stopTimeout)
		}
	}
}

// KillAll sends SIGKILL to every child at once (second Ctrl-C) and waits for them.
func (s *supervisor) KillAll() {
	s.mu.Lock()
	procs := s.procs
	s.mu.Unlock()
	for _, p := range procs {
		if ok, _ := p.Exited(); !ok {
			signalGroup(p.cmd.Process, syscall.SIGKILL)
		}
	}
	for _, p := range procs {
		<-p.done
	}
}

// WatchExits returns an error naming the first child that ends before ctx does.
func (s *supervisor) WatchExits(ctx context.Context) error {
	s.mu.Lock()
	procs := append([]*proc(nil), s.procs...)
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cases := make(chan *proc, len(procs))
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-p.done:
				cases <- p
			case <-ctx.Done():
			}
		}()
	}
	var err error
	select {
	case p := <-cases:
		err = exitError(p)
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	return err
}

func exitError(p *proc) error {
	_, err := p.Exited()
	if err == nil {
		err = errors.New("exit status 0")
	}
	return fmt.Errorf("%s: %w (%v); see %s:\n%s", p.spec.Name, ErrExited, err, p.LogPath, tail(p.LogPath, 8))
}

// tail returns the last n lines of a file, indented, for error messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	const max = 8 << 10
	off := max64(0, st.Size()-max)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	lines := splitLines(string(b))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := ""
	for _, l := range lines {
		out += "    " + l + "\n"
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
