package main

import (
	"os"
	"syscall"
)

// childAttr puts a child in its own process group and asks the kernel to SIGKILL it when
// vigil-run dies, so not even `kill -9 vigil-run` leaves orphans.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func signalGroup(p *os.Process, sig syscall.Signal) {
	if err := syscall.Kill(-p.Pid, sig); err != nil {
		_ = p.Signal(sig)
	}
}
