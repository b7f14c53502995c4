//go:build unix && !linux

package main

import (
	"os"
	"syscall"
)

// childAttr puts a child in its own process group (no parent-death signal on this OS).
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func signalGroup(p *os.Process, sig syscall.Signal) {
	if err := syscall.Kill(-p.Pid, sig); err != nil {
		_ = p.Signal(sig)
	}
}
