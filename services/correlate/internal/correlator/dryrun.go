package correlator

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

// DryRunRow compares the verdicts of two policies for one input record.
type DryRunRow struct {
	Line      int // 1-based line of the input
	Indicator string
	A, B      events.Verdict
	Changed   bool // priority, level or action differ
}

// DryRun replays enrichments through policies a and b and returns one row
// per record. Each policy gets its own in-memory state, so sightings
// accumulate as they would in production; nothing is written anywhere.
//
// Input is JSON Lines, one events.Enrichment per line as encoding/json
// writes the struct: Go field names as keys, times in RFC 3339, durations
// (ProviderResult.TTL) in nanoseconds, for example
//
//	{"Observation":{"Indicator":{"Type":"ipv4","Value":"203.0.113.7"},"EventTime":"2026-05-01T10:00:00Z",
//	 "Producer":{"Topic":"raw.fw","Partition":0,"Offset":42},"Sighting":{"AssetIP":"10.0.0.5","Direction":"inbound","Action":"blocked","Count":1}},
//	 "Exposure":{"Malicious":true,"InboundScore":5,"AbuseConfidence":-1}}
//
// Blank lines and lines starting with # are skipped. The clock is each
// record's ingest time (else its event time, else now): the records are
// replayed as Vigil received them, so windows and decay behave as they did.
func DryRun(ctx context.Context, a, b *policy.Policy, lists Lists, inv Assets, r io.Reader) ([]DryRunRow, error) {
	var clock time.Time
	now := func() time.Time { return clock }
	mk := func(p *policy.Policy) (*Correlator, error) {
		st, err := state.NewMemory(state.Config{Now: now})
		if err != nil {
			return nil, err
		}
		return New(NewPolicyHolder(p), lists, inv, st, now, slog.New(slog.DiscardHandler))
	}
	ca, err := mk(a)
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	cb, err := mk(b)
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	var rows []DryRunRow
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		var e events.Enrichment
		if err := json.Unmarshal([]byte(text), &e); err != nil {
			return nil, fmt.Errorf("dry run: line %d: %w", line, err)
		}
		if e.Observation.Producer.Topic == "" && e.Observation.Producer.Offset == 0 {
			e.Observation.Producer = events.Producer{Topic: "dry-run", Offset: int64(line)}
		}
		clock = e.Observation.IngestTime
		if clock.IsZero() {
			clock = e.Observation.EventTime
		}
		if clock.IsZero() {
			clock = time.Now()
		}
		va, err := ca.decideOne(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("dry run: line %d: %w", line, err)
		}
		vb, err := cb.decideOne(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("dry run: line %d: %w", line, err)
		}
		rows = append(rows, DryRunRow{
			Line: line, Indicator: e.Observation.Indicator.Key(), A: va, B: vb,
			Changed: va.Priority != vb.Priority || va.Level != vb.Level || va.Action != vb.Action,
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dry run: read: %w", err)
	}
	return rows, nil
}

// decideOne applies one record and returns its verdict whether or not it
// would be published, remembering it as published.
func (c *Correlator) decideOne(ctx context.Context, e events.Enrichment) (events.Verdict, error) {
	sums, err := c.store.Apply(ctx, []events.Enrichment{e})
	if err != nil {
		return events.Verdict{}, err
	}
	k := e.Observation.Indicator.Key()
	priors, err := c.store.Priors(ctx, []string{k})
	if err != nil {
		return events.Verdict{}, err
	}
	var prev *policy.Previous
	if priors[0].HasVerdict {
		pv := previous(priors[0].Verdict)
		prev = &pv
	}
	v := evaluate(c.policy.Load(), c.lists, c.assets, &e, sums[0], prev, priors[0].Allow, c.now())
	return v, c.Ack(ctx, []events.Verdict{v})
}

// WriteDryRunTable prints rows as an aligned table; with onlyChanged, rows
// whose verdicts agree are left out. The last line counts the differences.
func WriteDryRunTable(w io.Writer, rows []DryRunRow, onlyChanged bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tINDICATOR\tA PRIO\tA LEVEL\tA ACTION\tB PRIO\tB LEVEL\tB ACTION\tDIFF\tB REASONS")
	changed := 0
	for _, r := range rows {
		if r.Changed {
			changed++
		} else if onlyChanged {
			continue
		}
		mark := ""
		if r.Changed {
			mark = "*"
		}
		codes := make([]string, 0, len(r.B.Reasons))
		for _, rs := range r.B.Reasons {
			codes = append(codes, rs.Text)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Line, r.Indicator,
			r.A.Priority, r.A.Level, r.A.Action, r.B.Priority, r.B.Level, r.B.Action, mark, strings.Join(codes, "; "))
	}
	fmt.Fprintf(tw, "\n%d records, %d differ (A=%s, B=%s)\n", len(rows), changed, versionOf(rows, true), versionOf(rows, false))
	return tw.Flush()
}

func versionOf(rows []DryRunRow, a bool) string {
	if len(rows) == 0 {
		return "-"
	}
	if a {
		return rows[0].A.PolicyVersion
	}
	return rows[0].B.PolicyVersion
}
