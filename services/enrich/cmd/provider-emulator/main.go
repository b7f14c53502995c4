// Command provider-emulator serves emulated Criminal IP, InternetDB, AbuseIPDB and GreyNoise APIs on
// one loopback address for development and tests (see package emulator for routes, profiles and faults).
//
//	provider-emulator -addr 127.0.0.1:8089 -key dev-key
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigilsec/vigil/services/enrich/internal/emulator"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		slog.Error("provider-emulator exited", "err", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("provider-emulator", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8089", "listen address (loopback only)")
	key := fs.String("key", emulator.DefaultAPIKey, "API key the emulated providers expect")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("parse -addr: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("-addr must be a loopback IP address")
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("provider emulator listening", "addr", ln.Addr().String())
	return emulator.New(emulator.Config{APIKey: *key, Logger: log}).Serve(ctx, ln)
}
