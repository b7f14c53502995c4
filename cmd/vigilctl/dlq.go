package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
)

const dlqUsage = `Usage:
  vigilctl dlq list   [--stage S] [--reason CLASS] [--source TOPIC] [--since DUR] [--limit N]
  vigilctl dlq show   PARTITION:OFFSET
  vigilctl dlq replay [--stage S] [--reason CLASS] [--source TOPIC] [--since DUR] [--limit N]
                      [--max-attempts 3] [--dry-run]

Reads the dead-letter topic (--dlq-topic, default vigil.dlq) from its start without a consumer
group, so it never moves anyone's offsets. Run 'vigilctl dlq COMMAND --help' for details.
`

func (a *app) cmdDLQ(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.io.err, dlqUsage)
		return fmt.Errorf("%w: dlq needs a subcommand", errUsage)
	}
	switch args[0] {
	case "list":
		return a.dlqList(ctx, args[1:])
	case "show":
		return a.dlqShow(ctx, args[1:])
	case "replay":
		return a.dlqReplay(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(a.io.err, dlqUsage)
		return flag.ErrHelp
	default:
		fmt.Fprint(a.io.err, dlqUsage)
		return fmt.Errorf("%w: unknown dlq subcommand %q", errUsage, args[0])
	}
}

// dlqFilter selects dead letters; zero fields match everything.
type dlqFilter struct {
	Stage  string
	Reason string // error class, case-insensitive
	Source string // source topic
	Since  time.Duration
	now    time.Time
}

func (f *dlqFilter) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.Stage, "stage", "", "only dead letters of this stage (ingest, enrich, correlate, sink)")
	fs.StringVar(&f.Reason, "reason", "", "only this error class (decode, validation, unknown_format, …)")
	fs.StringVar(&f.Source, "source", "", "only records from this source topic")
	fs.DurationVar(&f.Since, "since", 0, "only dead letters newer than this (e.g. 1h, 30m); 0 = all")
}

func (f dlqFilter) match(e dlqEntry) bool {
	switch {
	case f.Stage != "" && !strings.EqualFold(f.Stage, e.Stage):
		return false
	case f.Reason != "" && !strings.EqualFold(f.Reason, e.Class):
		return false
	case f.Source != "" && f.Source != e.SourceTopic:
		return false
	case f.Since > 0 && e.Time.Before(f.now.Add(-f.Since)):
		return false
	}
	return true
}

// dlqEntry is the summary of one dead letter (one row of `dlq list`).
type dlqEntry struct {
	Partition       int32     `json:"partition"`
	Offset          int64     `json:"offset"`
	Time            time.Time `json:"time"`
	Stage           string    `json:"stage"`
	Class           string    `json:"class"`
	SourceTopic     string    `json:"source_topic"`
	SourcePartition int32     `json:"source_partition"`
	SourceOffset    int64     `json:"source_offset"`
	Attempts        int32     `json:"attempts"`
	Message         string    `json:"message"`
	DecodeError     string    `json:"decode_error,omitempty"`
}

// ID is the DLQ position "partition:offset" that `dlq show` takes.
func (e dlqEntry) ID() string { return fmt.Sprintf("%d:%d", e.Partition, e.Offset) }

// decodeDLQ decodes a DLQ record. When the Avro value cannot be decoded, the summary is filled
// from the runtime's headers and DecodeError says why; ok is false.
func decodeDLQ(ctx context.Context, serde *events.Serde, r *kgo.Record) (events.DeadLetter, dlqEntry, bool) {
	dl, err := serde.DecodeDeadLetter(ctx, r.Value)
	e := dlqEntry{Partition: r.Partition, Offset: r.Offset}
	if err != nil {
		e.Time = r.Timestamp.UTC()
		e.DecodeError = err.Error()
		for _, h := range r.Headers {
			v := string(h.Value)
			switch h.Key {
			case stream.HeaderStage:
				e.Stage = v
			case stream.HeaderErrorClass:
				e.Class = v
			case stream.HeaderError:
				e.Message = v
			case stream.HeaderSourceTopic:
				e.SourceTopic = v
			case stream.HeaderSourcePartition:
				n, _ := strconv.ParseInt(v, 10, 32)
				e.SourcePartition = int32(n)
			case stream.HeaderSourceOffset:
				e.SourceOffset, _ = strconv.ParseInt(v, 10, 64)
			case stream.HeaderAttempts:
				n, _ := strconv.ParseInt(v, 10, 32)
				e.Attempts = int32(n)
			}
		}
		return dl, e, false
	}
	e.Time, e.Stage, e.Class, e.Message = dl.Time.UTC(), dl.Stage, dl.ErrorClass, dl.Message
	e.SourceTopic, e.SourcePartition, e.SourceOffset, e.Attempts = dl.SourceTopic, dl.SourcePartition, dl.SourceOffset, dl.Attempts
	return dl, e, true
}

// listDLQ scans the DLQ and returns the matching entries sorted by time, at most the newest limit
// (0 = all), with the matching dead letters when keep is set.
func (a *app) listDLQ(ctx context.Context, f dlqFilter, limit int, keep bool) ([]dlqEntry, []events.DeadLetter, scanResult, error) {
	serde, err := events.NewSerde()
	if err != nil {
		return nil, nil, scanResult{}, err
	}
	var entries []dlqEntry
	var dls []events.DeadLetter
	res, err := a.scanTopic(ctx, a.cfg.Kafka.DLQTopic, func(r *kgo.Record) bool {
		dl, e, _ := decodeDLQ(ctx, serde, r)
		if !f.match(e) {
			return true
		}
		if !keep {
			e.Message = truncate(e.Message, 500) // bound memory on a large DLQ
		}
		entries = append(entries, e)
		if keep {
			dls = append(dls, dl)
		}
		return true
	})
	if err != nil {
		return nil, nil, res, err
	}
	idx := make([]int, len(entries))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return entries[idx[i]].Time.Before(entries[idx[j]].Time) })
	if limit > 0 && len(idx) > limit {
		idx = idx[len(idx)-limit:]
	}
	outE := make([]dlqEntry, len(idx))
	var outD []events.DeadLetter
	for i, k := range idx {
		outE[i] = entries[k]
		if keep {
			outD = append(outD, dls[k])
		}
	}
	return outE, outD, res, nil
}

func (a *app) warnUnfinished(res scanResult) {
	if len(res.Unfinished) > 0 {
		fmt.Fprintf(a.io.err, "note: partitions %v of %s were not read to their end (no records for %s)\n",
			res.Unfinished, a.cfg.Kafka.DLQTopic, idleLimit)
	}
}

func (a *app) dlqList(ctx context.Context, args []string) error {
	fs := a.flagSet("dlq list", "vigilctl dlq list [--stage S] [--reason CLASS] [--source TOPIC] [--since DUR] [--limit N]",
		"Lists dead letters, oldest first, the newest --limit of those that match. The ID column\n"+
			"(DLQ partition:offset) is what 'dlq show' takes.\n")
	f := dlqFilter{now: a.now()}
	f.bind(fs)
	limit := fs.Int("limit", 50, "show at most the newest N matches (0 = all)")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	entries, _, res, err := a.listDLQ(ctx, f, *limit, false)
	if err != nil {
		return err
	}
	a.warnUnfinished(res)
	if entries == nil {
		entries = []dlqEntry{}
	}
	return a.emit(entries, func(w io.Writer) error { return dlqTable(w, entries) })
}

// dlqTable prints the list table.
func dlqTable(w io.Writer, entries []dlqEntry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters match")
		return err
	}
	rows := make([][]string, 0, len(entries))
	for _, e := range entries {
		msg := e.Message
		if e.DecodeError != "" {
			msg = "(undecodable: " + e.DecodeError + ") " + msg
		}
		rows = append(rows, []string{
			e.ID(), e.Time.Format(time.RFC3339), dash(e.Stage), dash(e.Class),
			fmt.Sprintf("%s[%d]@%d", dash(e.SourceTopic), e.SourcePartition, e.SourceOffset),
			strconv.Itoa(int(e.Attempts)), truncate(msg, 72),
		})
	}
	return writeTable(w, []string{"ID", "TIME", "STAGE", "CLASS", "SOURCE", "ATTEMPTS", "MESSAGE"}, rows)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parsePosition parses "PARTITION:OFFSET".
func parsePosition(s string) (int32, int64, error) {
	ps, os, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not PARTITION:OFFSET", s)
	}
	p, err := strconv.ParseInt(ps, 10, 32)
	if err != nil || p < 0 {
		return 0, 0, fmt.Errorf("%q: bad partition", s)
	}
	o, err := strconv.ParseInt(os, 10, 64)
	if err != nil || o < 0 {
		return 0, 0, fmt.Errorf("%q: bad offset", s)
	}
	return int32(p), o, nil
}

// shownBytes is a byte string rendered for people: text when it is printable UTF-8, otherwise a
// hex dump (table) and base64 (JSON).
type shownBytes struct {
	Len    int    `json:"len"`
	Text   string `json:"text,omitempty"`
	Base64 string `json:"base64,omitempty"`
}

func showBytes(b []byte) shownBytes {
	s := shownBytes{Len: len(b)}
	if isText(b) {
		s.Text = string(b)
	} else {
		s.Base64 = base64.StdEncoding.EncodeToString(b)
	}
	return s
}

// isText reports whether b is valid UTF-8 without control characters other than tab and newlines.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}

// dlqDetail is one dead letter in full (`dlq show`).
type dlqDetail struct {
	dlqEntry
	Topic        string            `json:"topic"`
	Key          shownBytes        `json:"key"`
	Headers      map[string]string `json:"headers,omitempty"`
	Value        shownBytes        `json:"value"`
	ValueType    string            `json:"value_type,omitempty"`    // Avro record the original value decodes as
	ValueDecoded any               `json:"value_decoded,omitempty"` // that record, when it decodes
}

// decodeOriginal tries the pipeline's record types on an original value.
func decodeOriginal(ctx context.Context, serde *events.Serde, b []byte) (string, any) {
	if o, err := serde.DecodeObservation(ctx, b); err == nil {
		return "Observation", o
	}
	if e, err := serde.DecodeEnrichment(ctx, b); err == nil {
		return "Enrichment", e
	}
	if v, err := serde.DecodeVerdict(ctx, b); err == nil {
		return "Verdict", v
	}
	if f, err := serde.DecodeFeedback(ctx, b); err == nil {
		return "Feedback", f
	}
	return "", nil
}

func (a *app) dlqShow(ctx context.Context, args []string) error {
	fs := a.flagSet("dlq show", "vigilctl dlq show PARTITION:OFFSET",
		"Shows one dead letter in full: the error, the source position, the original key, headers and\n"+
			"value (text when it is UTF-8, otherwise a hex dump; decoded when it is a Vigil Avro record).\n")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	p, o, err := parsePosition(pos[0])
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	r, err := a.readRecord(ctx, a.cfg.Kafka.DLQTopic, p, o)
	if err != nil {
		return err
	}
	serde, err := events.NewSerde()
	if err != nil {
		return err
	}
	d := detailOf(ctx, serde, a.cfg.Kafka.DLQTopic, r)
	return a.emit(d, func(w io.Writer) error { return writeDetail(w, d) })
}

func detailOf(ctx context.Context, serde *events.Serde, topic string, r *kgo.Record) dlqDetail {
	dl, e, ok := decodeDLQ(ctx, serde, r)
	d := dlqDetail{dlqEntry: e, Topic: topic}
	if !ok {
		d.Value = showBytes(r.Value)
		return d
	}
	d.Key = showBytes(dl.Key)
	d.Value = showBytes(dl.Value)
	if len(dl.Headers) > 0 {
		d.Headers = map[string]string{}
		for _, h := range dl.Headers {
			d.Headers[h.Key] = string(h.Value)
		}
	}
	d.ValueType, d.ValueDecoded = decodeOriginal(ctx, serde, dl.Value)
	return d
}

func writeDetail(w io.Writer, d dlqDetail) error {
	line := func(k, v string) { fmt.Fprintf(w, "%-14s %s\n", k, v) }
	line("DLQ record", fmt.Sprintf("%s %s", d.Topic, d.ID()))
	if d.DecodeError != "" {
		line("Decode error", d.DecodeError)
	}
	line("Time", d.Time.Format(time.RFC3339Nano))
	line("Stage", dash(d.Stage))
	line("Error class", dash(d.Class))
	line("Message", d.Message)
	line("Source", fmt.Sprintf("%s partition %d offset %d", dash(d.SourceTopic), d.SourcePartition, d.SourceOffset))
	line("Attempts", strconv.Itoa(int(d.Attempts)))
	line("Key", bytesText(d.Key, 200))
	keys := make([]string, 0, len(d.Headers))
	for k := range d.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		label := ""
		if i == 0 {
			label = "Headers"
		}
		line(label, k+"="+truncate(d.Headers[k], 200))
	}
	line("Value", fmt.Sprintf("%d bytes", d.Value.Len))
	if d.ValueType != "" {
		line("Decoded as", d.ValueType)
		fmt.Fprintf(w, "%+v\n", d.ValueDecoded)
	}
	switch {
	case d.Value.Text != "":
		fmt.Fprintln(w, d.Value.Text)
	case d.Value.Base64 != "":
		raw, err := base64.StdEncoding.DecodeString(d.Value.Base64)
		if err != nil {
			return err
		}
		fmt.Fprint(w, hex.Dump(raw))
	}
	return nil
}

func bytesText(s shownBytes, n int) string {
	switch {
	case s.Len == 0:
		return "(empty)"
	case s.Text != "":
		return truncate(s.Text, n)
	default:
		return "base64:" + truncate(s.Base64, n)
	}
}

// replayHeaders copies the original headers and sets vigil-attempts to the attempts so far, at
// least one more than the original header said, so the next dead letter counts on from there.
func replayHeaders(dl events.DeadLetter) []kgo.RecordHeader {
	prior := 0
	hs := make([]kgo.RecordHeader, 0, len(dl.Headers)+1)
	for _, h := range dl.Headers {
		if h.Key == stream.HeaderAttempts {
			prior, _ = strconv.Atoi(string(h.Value))
			continue
		}
		hs = append(hs, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	next := max(int(dl.Attempts), prior+1)
	return append(hs, kgo.RecordHeader{Key: stream.HeaderAttempts, Value: []byte(strconv.Itoa(next))})
}

// replayPlan splits matching dead letters into those to replay and those refused.
type replayPlan struct {
	Replay  []dlqEntry `json:"replay"`
	Refused []refusal  `json:"refused"`
	dls     []events.DeadLetter
}

type refusal struct {
	dlqEntry
	Reason string `json:"reason"`
}

func planReplay(entries []dlqEntry, dls []events.DeadLetter, maxAttempts int) replayPlan {
	plan := replayPlan{Replay: []dlqEntry{}, Refused: []refusal{}}
	for i, e := range entries {
		switch {
		case e.DecodeError != "":
			plan.Refused = append(plan.Refused, refusal{e, "undecodable dead letter"})
		case e.SourceTopic == "":
			plan.Refused = append(plan.Refused, refusal{e, "no source topic"})
		case int(e.Attempts) >= maxAttempts:
			plan.Refused = append(plan.Refused, refusal{e, fmt.Sprintf("attempts %d >= max %d", e.Attempts, maxAttempts)})
		default:
			plan.Replay = append(plan.Replay, e)
			plan.dls = append(plan.dls, dls[i])
		}
	}
	return plan
}

// replayReport is the outcome of `dlq replay`.
type replayReport struct {
	DryRun   bool       `json:"dry_run"`
	Replayed []dlqEntry `json:"replayed"`
	Refused  []refusal  `json:"refused"`
	Failed   []failure  `json:"failed"`
}

type failure struct {
	dlqEntry
	Error string `json:"error"`
}

func (a *app) dlqReplay(ctx context.Context, args []string) error {
	fs := a.flagSet("dlq replay", "vigilctl dlq replay [--stage S] [--reason CLASS] [--source TOPIC] [--since DUR] [--limit N] [--max-attempts 3] [--dry-run]",
		"Re-produces the original key, value and headers of matching dead letters to their source topic,\n"+
			"with header vigil-attempts set to the attempts so far; a record that fails again comes back\n"+
			"with a higher count. Dead letters whose attempts reached --max-attempts are refused, so no\n"+
			"record loops forever. Replay is not idempotent: running it twice re-produces twice (the\n"+
			"pipeline tolerates duplicates); narrow it with --since, --stage, --reason, --source.\n")
	f := dlqFilter{now: a.now()}
	f.bind(fs)
	limit := fs.Int("limit", 0, "replay at most the newest N matches (0 = all)")
	maxAttempts := fs.Int("max-attempts", 3, "refuse dead letters with this many attempts or more")
	dryRun := fs.Bool("dry-run", false, "show what would be replayed and refused; produce nothing")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *maxAttempts < 1 {
		return fmt.Errorf("%w: --max-attempts must be >= 1", errUsage)
	}
	entries, dls, res, err := a.listDLQ(ctx, f, *limit, true)
	if err != nil {
		return err
	}
	a.warnUnfinished(res)
	plan := planReplay(entries, dls, *maxAttempts)
	rep := replayReport{DryRun: *dryRun, Replayed: []dlqEntry{}, Refused: plan.Refused, Failed: []failure{}}
	if *dryRun {
		rep.Replayed = plan.Replay
	} else if len(plan.Replay) > 0 {
		if rep.Replayed, rep.Failed, err = a.produceReplay(ctx, plan); err != nil {
			return err
		}
	}
	if err := a.emit(rep, func(w io.Writer) error { return replayTable(w, rep) }); err != nil {
		return err
	}
	if len(rep.Failed) > 0 {
		return fmt.Errorf("replay: %d of %d records not produced", len(rep.Failed), len(plan.Replay))
	}
	return nil
}

// produceReplay produces the plan's records and waits for every acknowledgement.
func (a *app) produceReplay(ctx context.Context, plan replayPlan) ([]dlqEntry, []failure, error) {
	cl, err := a.kafkaClient(kgo.RecordDeliveryTimeout(a.cfg.Timeout))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	bar := newProgress(a.io.err, a.io.errTTY, "replay", len(plan.Replay))
	errs := make([]error, len(plan.Replay))
	for i, dl := range plan.dls {
		rec := &kgo.Record{Topic: dl.SourceTopic, Key: dl.Key, Value: dl.Value, Headers: replayHeaders(dl)}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			errs[i] = err // each callback writes its own index; Flush orders them before the read below
			bar.Add(1)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, nil, fmt.Errorf("flush replay: %w", err)
	}
	bar.Done()
	var ok []dlqEntry
	var failed []failure
	for i, e := range plan.Replay {
		if errs[i] != nil {
			failed = append(failed, failure{e, errs[i].Error()})
			continue
		}
		ok = append(ok, e)
	}
	if ok == nil {
		ok = []dlqEntry{}
	}
	if failed == nil {
		failed = []failure{}
	}
	return ok, failed, nil
}

func replayTable(w io.Writer, r replayReport) error {
	verb := "replayed"
	if r.DryRun {
		verb = "would replay"
	}
	fmt.Fprintf(w, "%s %d, refused %d, failed %d\n", verb, len(r.Replayed), len(r.Refused), len(r.Failed))
	var rows [][]string
	for _, e := range r.Replayed {
		rows = append(rows, []string{e.ID(), verb, e.SourceTopic, strconv.Itoa(int(e.Attempts)), ""})
	}
	for _, e := range r.Refused {
		rows = append(rows, []string{e.ID(), "refused", dash(e.SourceTopic), strconv.Itoa(int(e.Attempts)), e.Reason})
	}
	for _, e := range r.Failed {
		rows = append(rows, []string{e.ID(), "failed", e.SourceTopic, strconv.Itoa(int(e.Attempts)), truncate(e.Error, 80)})
	}
	if len(rows) == 0 {
		return nil
	}
	return writeTable(w, []string{"ID", "OUTCOME", "TO TOPIC", "ATTEMPTS", "REASON"}, rows)
}
