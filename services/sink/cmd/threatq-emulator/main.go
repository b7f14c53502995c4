// Command threatq-emulator serves the tqemu ThreatQ REST API emulator.
//
//	threatq-emulator -addr 127.0.0.1:18443 [-snapshot state.json] [-tls-cert c.pem -tls-key k.pem]
//
// Credentials default to the development ones and can be overridden by flags
// or by THREATQ_EMU_CLIENT_ID, THREATQ_EMU_EMAIL, THREATQ_EMU_PASSWORD and
// THREATQ_EMU_CLIENT_SECRET (a flag wins over the environment).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
)

func main() {
	if err := run(); err != nil {
		slog.Error("threatq-emulator exited", "err", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return serve(ctx, os.Args[1:], os.Getenv, os.Stderr, nil)
}

type config struct {
	addr          string
	clientID      string
	clientSecret  string
	email         string
	password      string
	tokenTTL      time.Duration
	seed          uint64
	snapshot      string
	snapshotEvery time.Duration
	tlsCert       string
	tlsKey        string
	debug         bool
	gcPercent     int
}

// loadConfig reads flags, falling back to the environment, then defaults.
func loadConfig(args []string, getenv func(string) string) (config, error) {
	envOr := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	var c config
	fs := flag.NewFlagSet("threatq-emulator", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:18443", "listen address")
	fs.StringVar(&c.clientID, "client-id", envOr("THREATQ_EMU_CLIENT_ID", tqemu.DefaultClientID), "accepted OAuth client id")
	fs.StringVar(&c.clientSecret, "client-secret", envOr("THREATQ_EMU_CLIENT_SECRET", tqemu.DefaultClientSecret), "accepted OAuth client secret")
	fs.StringVar(&c.email, "email", envOr("THREATQ_EMU_EMAIL", tqemu.DefaultEmail), "accepted user email")
	fs.StringVar(&c.password, "password", envOr("THREATQ_EMU_PASSWORD", tqemu.DefaultPassword), "accepted user password")
	fs.DurationVar(&c.tokenTTL, "token-ttl", time.Hour, "access token lifetime (expires_in)")
	fs.Uint64Var(&c.seed, "seed", 0, "seed for type/status/indicator ids (0: random)")
	fs.StringVar(&c.snapshot, "snapshot", "", "state file: loaded at start if present, saved periodically and on shutdown")
	fs.DurationVar(&c.snapshotEvery, "snapshot-every", 30*time.Second, "snapshot period")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate file (PEM); serve HTTPS when set with -tls-key")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS key file (PEM)")
	fs.BoolVar(&c.debug, "debug", false, "log every request")
	fs.IntVar(&c.gcPercent, "gc-percent", 300, "GC target percentage (as GOGC); the emulator keeps all indicators in memory and "+
		"allocates megabytes per consume, so fewer collections save CPU for the pipeline under test; 0 keeps GOGC")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return config{}, errors.New("-tls-cert and -tls-key go together")
	}
	if c.gcPercent < 0 {
		return config{}, errors.New("-gc-percent must not be negative")
	}
	if c.snapshot != "" && c.snapshotEvery <= 0 {
		return config{}, errors.New("-snapshot-every must be positive")
	}
	return c, nil
}

// serve runs the emulator until ctx ends. When ready is not nil it receives
// the bound address once the listener is up.
func serve(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer, ready chan<- string) error {
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	level := slog.LevelInfo
	if cfg.debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level}))
	if cfg.gcPercent > 0 {
		debug.SetGCPercent(cfg.gcPercent)
	}

	emu := tqemu.New(tqemu.Options{
		ClientID: cfg.clientID, ClientSecret: cfg.clientSecret, Email: cfg.email, Password: cfg.password,
		TokenTTL: cfg.tokenTTL, Seed: cfg.seed, Logger: log,
	})
	if cfg.snapshot != "" {
		switch err := emu.LoadSnapshot(cfg.snapshot); {
		case err == nil:
			log.Info("snapshot loaded", "path", cfg.snapshot, "indicators", len(emu.Indicators()))
		case errors.Is(err, os.ErrNotExist):
			log.Info("no snapshot yet", "path", cfg.snapshot)
		default:
			return err
		}
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: withPprof(emu, ln.Addr()), ReadHeaderTimeout: 10 * time.Second}
	log.Info("threatq emulator listening", "addr", ln.Addr().String(), "tls", cfg.tlsCert != "",
		"client_id", cfg.clientID, "email", cfg.email)

	if ready != nil {
		ready <- ln.Addr().String()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if cfg.tlsCert != "" {
			err = srv.ServeTLS(ln, cfg.tlsCert, cfg.tlsKey)
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	if cfg.snapshot != "" {
		g.Go(func() error {
			t := time.NewTicker(cfg.snapshotEvery)
			defer t.Stop()
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-t.C:
					if err := emu.SaveSnapshot(cfg.snapshot); err != nil {
						log.Warn("periodic snapshot", "err", err)
					}
				}
			}
		})
	}
	err = g.Wait()
	if cfg.snapshot != "" {
		err = errors.Join(err, emu.SaveSnapshot(cfg.snapshot))
		log.Info("snapshot saved", "path", cfg.snapshot)
	}
	return err
}

// withPprof serves /debug/pprof/ next to the emulator when it listens on a loopback address
// (profiling the emulator during benchmarks); on any other address it returns h unchanged.
func withPprof(h http.Handler, addr net.Addr) http.Handler {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || !ta.IP.IsLoopback() {
		return h
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}
