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

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/correlate/internal/assets"
	"github.com/vigilsec/vigil/services/correlate/internal/correlator"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
)

// errUsage is returned for bad command lines (exit status 2).
var errUsage = errors.New("usage")

const policyTestUsage = `usage: correlate policy-test --policy A.yaml [--against B.yaml] [--only-changed] [--json]
       [--warninglists all|none|NAME,...] [--allow FILE,...] [--assets FILE] ENRICHMENTS.jsonl|-

Replays enrichments (JSON Lines of events.Enrichment, "-" for stdin) through policy A
(--policy) and policy B (--against, default: the embedded default policy), each with its
own in-memory state, and prints one row per record: A's and B's priority, level and
action, and B's reasons. Rows marked * differ. Nothing is read from or written to Kafka
or Redis.
`

// runPolicyTest is the policy-test subcommand (what vigilctl policy test runs).
func runPolicyTest(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy-test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyTestUsage) }
	polA := fs.String("policy", "", "policy file under test (A)")
	polB := fs.String("against", "", "policy file to compare with (B); default: embedded default policy")
	onlyChanged := fs.Bool("only-changed", false, "print only the records whose verdicts differ")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	wl := fs.String("warninglists", allowlist.All, "shipped warninglists: all, none or names")
	allow := fs.String("allow", "", "local allow-list YAML files, comma-separated")
	assetsFile := fs.String("assets", "", "asset inventory file (.yaml/.csv)")
	// Flags may follow the input file.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *polA == "" || len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	a, err := policy.Load(*polA)
	if err != nil {
		return err
	}
	b, err := policy.Default()
	if *polB != "" {
		b, err = policy.Load(*polB)
	}
	if err != nil {
		return err
	}
	lcfg := allowlist.Config{Warninglists: splitList(*wl), LocalFiles: splitList(*allow)}
	if len(lcfg.Warninglists) == 1 && lcfg.Warninglists[0] == "none" {
		lcfg.Warninglists = nil
	}
	set, err := allowlist.Load(lcfg)
	if err != nil {
		return fmt.Errorf("load allow-lists: %w", err)
	}
	var inv correlator.Assets
	if *assetsFile != "" {
		i, err := assets.Load(*assetsFile)
		if err != nil {
			return fmt.Errorf("load assets: %w", err)
		}
		inv = i
	}
	in := stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return fmt.Errorf("open input: %w", err)
		}
		defer f.Close()
		in = f
	}
	rows, err := correlator.DryRun(ctx, a, b, allowlist.NewHolder(set), inv, in)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeDryRunJSON(stdout, a.Version, b.Version, rows, *onlyChanged)
	}
	return correlator.WriteDryRunTable(stdout, rows, *onlyChanged)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// jsonVerdict is the part of a verdict the dry run compares.
type jsonVerdict struct {
	Priority        int32    `json:"priority"`
	Level           string   `json:"level"`
	Action          string   `json:"action"`
	ExposureChanged bool     `json:"exposure_changed"`
	Reasons         []string `json:"reasons"`
}

type jsonRow struct {
	Line      int         `json:"line"`
	Indicator string      `json:"indicator"`
	Changed   bool        `json:"changed"`
	A         jsonVerdict `json:"a"`
	B         jsonVerdict `json:"b"`
}

type jsonReport struct {
	PolicyA string    `json:"policy_a"`
	PolicyB string    `json:"policy_b"`
	Records int       `json:"records"`
	Changed int       `json:"changed"`
	Rows    []jsonRow `json:"rows"`
}

func toJSONVerdict(v events.Verdict) jsonVerdict {
	rs := make([]string, 0, len(v.Reasons))
	for _, r := range v.Reasons {
		rs = append(rs, r.Text)
	}
	return jsonVerdict{Priority: v.Priority, Level: v.Level, Action: v.Action, ExposureChanged: v.ExposureChanged, Reasons: rs}
}

// writeDryRunJSON prints one JSON document: policy versions, counts and the rows.
func writeDryRunJSON(w io.Writer, versionA, versionB string, rows []correlator.DryRunRow, onlyChanged bool) error {
	rep := jsonReport{PolicyA: versionA, PolicyB: versionB, Records: len(rows), Rows: []jsonRow{}}
	for _, r := range rows {
		if r.Changed {
			rep.Changed++
		} else if onlyChanged {
			continue
		}
		rep.Rows = append(rep.Rows, jsonRow{Line: r.Line, Indicator: r.Indicator, Changed: r.Changed, A: toJSONVerdict(r.A), B: toJSONVerdict(r.B)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
