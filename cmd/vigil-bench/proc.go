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
	"strings"
	"syscall"
	"time"
)

// proc is a child process (a service or an emulator) started by the bench.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	opsAddr string // ops or control address, host:port
	done    chan struct{}
	waitErr error
	peakMiB float64 // last VmHWM read
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startProc runs bin with args and exactly env (nothing is inherited), logging to logDir.
func startProc(name, bin string, args, env []string, logDir, opsAddr string) (*proc, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("binary %s: %w (run make build)", bin, err)
	}
	logPath := filepath.Join(logDir, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, opsAddr: opsAddr, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitHTTP polls url until it answers 200, the process exits or the timeout passes.
func (p *proc) waitHTTP(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	url := "http://" + p.opsAddr + path
	cl := &http.Client{Timeout: time.Second}
	for {
		if p.exited() {
			return fmt.Errorf("%s exited before ready (%v): %s", p.name, p.waitErr, p.logTail(5))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("ready request: %w", err)
		}
		if resp, err := cl.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s: %s", p.name, url, timeout, p.logTail(5))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sampleRSS records VmHWM while the process is alive.
func (p *proc) sampleRSS() {
	if p.exited() {
		return
	}
	if v, ok := peakRSSMiB(p.cmd.Process.Pid); ok {
		p.peakMiB = v
	}
}

// stop reads the peak RSS, then sends SIGTERM and waits (SIGKILL after grace).
func (p *proc) stop(grace time.Duration) error {
	p.sampleRSS()
	if p.exited() {
		return p.exitErr()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s; killed", p.name, grace)
	}
}

func (p *proc) exitErr() error {
	var ee *exec.ExitError
	if p.waitErr == nil || (errors.As(p.waitErr, &ee) && ee.ExitCode() == 0) {
		return nil
	}
	return fmt.Errorf("%s exited: %w", p.name, p.waitErr)
}

// logTail returns the last n lines of the process log, for error messages.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
