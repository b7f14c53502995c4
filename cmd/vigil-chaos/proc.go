package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// proc is one child process; its output is appended to LogPath.
type proc struct {
	Name    string
	LogPath string
	Ops     string // loopback address of its HTTP endpoint (ops or emulator API)
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// procSpec says how to start a child.
type procSpec struct {
	Name string
	Path string
	Args []string
	Env  []string
	Ops  string
}

// startProc starts a child in its own process group, killed by the kernel if vigil-chaos dies.
func startProc(logDir string, s procSpec) (*proc, error) {
	logPath := filepath.Join(logDir, s.Name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = s.Env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	p := &proc{Name: s.Name, LogPath: logPath, Ops: s.Ops, cmd: cmd, done: make(chan struct{})}
	go func() { // ends with the child; stop and kill wait for it
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the child has ended.
func (p *proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL to the child alone and waits until it is reaped.
func (p *proc) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and SIGKILL after timeout; it reports whether the child stopped in time.
func (p *proc) Stop(timeout time.Duration) bool {
	if p.Exited() {
		return true
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return false
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ErrNotReady means a child did not answer in time.
var ErrNotReady = errors.New("not ready")

// waitHTTP polls http://ops+path until it answers 200, the child exits or timeout passes.
func waitHTTP(ctx context.Context, p *proc, path string, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		if p.Exited() {
			return fmt.Errorf("%s exited (%v); see %s", p.Name, p.err, p.LogPath)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Ops+path, nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %w after %s; see %s", p.Name, ErrNotReady, timeout, p.LogPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
