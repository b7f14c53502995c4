// Command vigilctl is the operator CLI of the Vigil pipeline: consumer-group lag and service
// health, the dead-letter topic (list, show, replay), the enrichment cache, KPIs, and offline
// policy tests and parsing through the services' own binaries.
//
//	vigilctl [global flags] COMMAND [flags] [args]
//
// Run `vigilctl help` or `vigilctl COMMAND --help` for details.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/telemetry"
)

// errUsage reports a command line that could not be understood; the usage was already printed.
var errUsage = errors.New("usage error")

// exitError carries the exit status of a pass-through command.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := telemetry.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.LookupEnv, streams{in: os.Stdin, out: os.Stdout, err: os.Stderr, errTTY: isTerminal(os.Stderr)})
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// streams are the process's standard streams (buffers in tests).
type streams struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	errTTY bool // stderr is a terminal: draw progress bars
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// exitCode prints err (once) and maps it to the process exit status.
func exitCode(err error, stderr io.Writer) int {
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "vigilctl:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "vigilctl:", err)
		return 1
	}
}

// app is one invocation: its configuration and streams.
type app struct {
	cfg Config
	io  streams
	now func() time.Time
	exe func() (string, error) // own executable, to find sibling binaries
}

const topUsage = `vigilctl — operate the Vigil pipeline

Usage:
  vigilctl [global flags] COMMAND [flags] [args]

Commands:
  status                       consumer-group lag and members, service readiness, breakers, cache, quotas
  dlq list                     dead letters on the DLQ topic (filters: --stage --reason --source --since --limit)
  dlq show PARTITION:OFFSET    one dead letter in full
  dlq replay                   re-produce dead letters to their source topic (bounded by --max-attempts)
  cache show INDICATOR         each provider's cached answer for an indicator, with fetch time and TTL
  cache purge INDICATOR        delete those entries so the next sighting is enriched afresh
  kpi                          the pipeline's KPIs from Prometheus or a live scrape (--chart out.svg)
  policy test ...              run 'correlate policy-test' (see 'vigilctl policy test --help')
  parse ...                    run 'ingest parse' (see 'vigilctl parse --help')
  help [COMMAND]               this text, or a command's help

Global flags (also accepted after the command):
`

func run(ctx context.Context, args []string, lookup envconf.Lookup, s streams) error {
	cfg, err := loadEnv(lookup)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	fs := flag.NewFlagSet("vigilctl", flag.ContinueOnError)
	fs.SetOutput(s.err)
	bindGlobal(fs, &cfg)
	fs.Usage = func() {
		fmt.Fprint(s.err, topUsage)
		printFlags(s.err, fs, func(string) bool { return true })
	}
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: no command", errUsage)
	}
	a := &app{cfg: cfg, io: s, now: time.Now, exe: os.Executable}
	cmd, cargs := rest[0], rest[1:]
	switch cmd {
	case "status":
		return a.cmdStatus(ctx, cargs)
	case "dlq":
		return a.cmdDLQ(ctx, cargs)
	case "cache":
		return a.cmdCache(ctx, cargs)
	case "kpi":
		return a.cmdKPI(ctx, cargs)
	case "policy":
		return a.cmdPolicy(ctx, cargs)
	case "parse":
		return a.passThrough(ctx, "ingest", append([]string{"parse"}, cargs...))
	case "help":
		if len(cargs) > 0 {
			return run(ctx, append(cargs, "--help"), lookup, s)
		}
		fmt.Fprint(s.out, topUsage)
		printFlags(s.out, fs, func(string) bool { return true })
		return nil
	default:
		fs.Usage()
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

// usageErr keeps flag.ErrHelp (exit 0) and marks every other flag error as a usage error.
func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %v", errUsage, err)
}

// flagSet returns a subcommand's flag set with the global flags bound and a usage text made of
// synopsis (first line), a description and the flag defaults.
func (a *app) flagSet(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.io.err)
	bindGlobal(fs, &a.cfg)
	fs.Usage = func() {
		fmt.Fprintf(a.io.err, "Usage:\n  %s\n\n%s", synopsis, description)
		var own bool
		fs.VisitAll(func(f *flag.Flag) { own = own || !globalFlags[f.Name] })
		if own {
			fmt.Fprintln(a.io.err, "\nFlags:")
			printFlags(a.io.err, fs, func(n string) bool { return !globalFlags[n] })
		}
		fmt.Fprintln(a.io.err, "\nGlobal flags: --brokers --redis --ops --dlq-topic --timeout --json (see 'vigilctl help')")
	}
	return fs
}

// globalFlags are the names bindGlobal registers.
var globalFlags = map[string]bool{"brokers": true, "redis": true, "ops": true, "dlq-topic": true, "timeout": true, "json": true}

// printFlags lists the flags include accepts as "  --name TYPE   usage (default x)".
func printFlags(w io.Writer, fs *flag.FlagSet, include func(name string) bool) {
	fs.VisitAll(func(f *flag.Flag) {
		if !include(f.Name) {
			return
		}
		typ, usage := flag.UnquoteUsage(f)
		s := "  --" + f.Name
		if typ != "" {
			s += " " + typ
		}
		switch f.DefValue {
		case "", "false", "0", "0s":
		default:
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "%-26s %s\n", s, usage)
	})
}

// parse parses a subcommand's flags, which may come before or after its arguments, checks the
// argument count, validates the configuration and returns the arguments.
func (a *app) parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageErr(err)
		}
		if args = fs.Args(); len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if n := len(pos); n < minArgs || (maxArgs >= 0 && n > maxArgs) {
		fs.Usage()
		return nil, fmt.Errorf("%w: %s: wrong number of arguments (%d)", errUsage, fs.Name(), n)
	}
	if err := a.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return pos, nil
}

// emit prints v as indented JSON with --json, else calls table.
func (a *app) emit(v any, table func(w io.Writer) error) error {
	if a.cfg.JSON {
		enc := json.NewEncoder(a.io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return table(a.io.out)
}

// writeTable prints rows under an upper-case header, columns aligned with two spaces.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// truncate shortens s to at most n runes, marking the cut with "…", and flattens line breaks and
// tabs so a table row stays one line.
func truncate(s string, n int) string {
	s = strings.NewReplacer("\n", " ", "\r", " ", "\t", " ").Replace(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	return string(r[:n-1]) + "…"
}
