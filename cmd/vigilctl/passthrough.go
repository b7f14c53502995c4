package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ErrBinaryNotFound is returned when a service binary needed by a pass-through command is missing.
var ErrBinaryNotFound = errors.New("binary not found")

const policyUsage = `Usage:
  vigilctl policy test --policy A.yaml [--against B.yaml] [--only-changed] [--json] ENRICHMENTS.jsonl

Runs 'correlate policy-test' with the same arguments: scores recorded enrichments with a policy
and, with --against, shows which verdicts change between two policies. All flags belong to
correlate; see 'correlate policy-test --help'.
`

func (a *app) cmdPolicy(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprint(a.io.err, policyUsage)
		if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
			return fmt.Errorf("%w: policy needs a subcommand", errUsage)
		}
		return fmt.Errorf("%w: unknown policy subcommand %q", errUsage, args[0])
	}
	return a.passThrough(ctx, "correlate", append([]string{"policy-test"}, args[1:]...))
}

// findBinary looks for a service binary in VIGIL_CTL_BIN_DIR, next to vigilctl's own executable
// (bin/ after `make build`), then on PATH.
func (a *app) findBinary(name string) (string, error) {
	var tried []string
	var dirs []string
	if a.cfg.BinDir != "" {
		dirs = append(dirs, a.cfg.BinDir)
	}
	if exe, err := a.exe(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dirs = append(dirs, filepath.Dir(exe))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		tried = append(tried, p)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	tried = append(tried, "$PATH")
	return "", fmt.Errorf("%w: %s (looked in %v); build it with `make build` or put it on PATH", ErrBinaryNotFound, name, tried)
}

// passThrough runs a service binary's subcommand with vigilctl's streams and returns its exit
// status as an *exitError.
func (a *app) passThrough(ctx context.Context, binary string, args []string) error {
	path, err := a.findBinary(binary)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.io.in, a.io.out, a.io.err
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code := ee.ExitCode()
			if code < 0 { // killed by a signal
				code = 1
			}
			return &exitError{code: code}
		}
		return fmt.Errorf("run %s: %w", binary, err)
	}
	return nil
}
