// Package pipeline is ingest's stage: raw records in, Avro Observations out.
package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/ingest/internal/extract"
	"github.com/vigilsec/vigil/services/ingest/internal/parse"
)

// Outcome labels of the accounting metric: records in = observations + none(reason) + dead_lettered(reason).
const (
	OutcomeObservations = "observations"
	OutcomeNone         = "none"
	OutcomeDeadLettered = "dead_lettered"
)

// Reasons for a record that produced no observation (not an error).
const (
	NoneUnsupported  = "unsupported"   // well-formed, an event kind we do not read
	NoneNoIndicators = "no_indicators" // parsed, nothing external in it
	NoneCollapsed    = "collapsed"     // all its observations merged into an earlier identical one
)

// Config configures the Handler.
type Config struct {
	OutTopic       string
	Formats        map[string]string // topic -> parser name
	DefaultFormat  string
	MaxRecordBytes int
	Collapse       bool
}

// Accounting is the per-record outcome counter (a metric in the service, a map in tests).
type Accounting interface {
	Record(ctx context.Context, outcome, reason string)
}

// Handler parses, extracts and encodes a poll batch. It implements stream.BatchHandler.
type Handler struct {
	cfg   Config
	reg   *parse.Registry
	ext   *extract.Extractor
	serde *events.Serde
	acct  Accounting
	now   func() time.Time
	log   *slog.Logger
	obs   []events.Observation // the batch's observations, reused across batches
}

// New returns a Handler.
func New(cfg Config, reg *parse.Registry, ext *extract.Extractor, serde *events.Serde, acct Accounting, log *slog.Logger) *Handler {
	if cfg.DefaultFormat == "" {
		cfg.DefaultFormat = parse.FormatAuto
	}
	return &Handler{cfg: cfg, reg: reg, ext: ext, serde: serde, acct: acct, now: time.Now, log: log}
}

type collapseKey struct {
	typ, value, assetIP, assetHost, action string
}

// Handle implements stream.BatchHandler. It is not safe for concurrent use (the runner calls it
// from one goroutine).
func (h *Handler) Handle(ctx context.Context, recs []*kgo.Record) ([]stream.Result, error) {
	res := make([]stream.Result, len(recs))
	now := h.now().UTC()
	var seen map[collapseKey]int // index in all of the first observation with that key
	if h.cfg.Collapse {
		seen = map[collapseKey]int{}
	}
	type pending struct {
		rec int
		obs int // index in all
	}
	var outs []pending
	all := h.obs[:0]
	defer func() {
		clear(all) // keep no strings of this batch alive
		h.obs = all[:0]
	}()
	for i, r := range recs {
		format, ok := h.cfg.Formats[r.Topic]
		if !ok {
			format = h.cfg.DefaultFormat
		}
		ev, used, err := h.reg.Parse(format, r.Value, h.cfg.MaxRecordBytes)
		if err != nil {
			var pe *parse.Error
			if errors.As(err, &pe) && pe.Reason == parse.ReasonUnsupported {
				h.acct.Record(ctx, OutcomeNone, NoneUnsupported)
				continue
			}
			reason := parse.ReasonMalformed
			if pe != nil {
				reason = pe.Reason
			}
			res[i].Err = stream.Permanent(reason, err)
			h.acct.Record(ctx, OutcomeDeadLettered, reason)
			continue
		}
		start := len(all)
		all = h.ext.AppendExtract(all, ev, extract.Meta{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Format: used, IngestTime: now})
		if len(all) == start {
			h.acct.Record(ctx, OutcomeNone, NoneNoIndicators)
			continue
		}
		kept := 0
		for j := start; j < len(all); j++ {
			o := &all[j]
			if h.cfg.Collapse {
				ck := collapseKey{o.Indicator.Type, o.Indicator.Value, o.Sighting.AssetIP, o.Sighting.AssetHost, o.Sighting.Action}
				if first, dup := seen[ck]; dup {
					all[first].Sighting.Count += max(o.Sighting.Count, 1)
					continue
				}
				seen[ck] = j
			}
			outs = append(outs, pending{rec: i, obs: j})
			kept++
		}
		if kept == 0 {
			h.acct.Record(ctx, OutcomeNone, NoneCollapsed)
		} else {
			h.acct.Record(ctx, OutcomeObservations, "")
		}
	}
	// encode after collapsing so counts are final
	for _, p := range outs {
		o := &all[p.obs]
		val, err := h.serde.EncodeObservation(o)
		if err != nil {
			return nil, err // a bug in our own schema mapping: retry, then pause; never drop
		}
		key := make([]byte, 0, len(o.Indicator.Type)+1+len(o.Indicator.Value))
		key = append(append(append(key, o.Indicator.Type...), ':'), o.Indicator.Value...) // Indicator.Key()
		res[p.rec].Outputs = append(res[p.rec].Outputs, &kgo.Record{Topic: h.cfg.OutTopic, Key: key, Value: val})
	}
	return res, nil
}

// MetricAccounting records outcomes on an OTel counter vigil_ingest_records{outcome,reason}.
type MetricAccounting struct {
	c    metric.Int64Counter
	mu   sync.Mutex
	opts map[[2]string]metric.AddOption // attribute set per (outcome, reason): built once, not per record
}

// NewMetricAccounting creates the counter.
func NewMetricAccounting(m metric.Meter) (*MetricAccounting, error) {
	c, err := m.Int64Counter("vigil_ingest_records", metric.WithDescription("Raw records by outcome: observations, none (by reason) or dead_lettered (by reason). in = sum of all."))
	if err != nil {
		return nil, err
	}
	return &MetricAccounting{c: c, opts: map[[2]string]metric.AddOption{}}, nil
}

// Record implements Accounting.
func (a *MetricAccounting) Record(ctx context.Context, outcome, reason string) {
	k := [2]string{outcome, reason}
	a.mu.Lock()
	opt, ok := a.opts[k]
	if !ok {
		opt = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", outcome), attribute.String("reason", reason)))
		a.opts[k] = opt
	}
	a.mu.Unlock()
	a.c.Add(ctx, 1, opt)
}

// DefaultRegistry returns every parser: the JSON formats first, then the text formats.
func DefaultRegistry() (*parse.Registry, error) {
	return parse.NewRegistry(
		parse.NewSuricataEVE(), parse.NewZeek(), parse.NewSysmon(), parse.NewCrowdStrike(),
		parse.NewDefender(), parse.NewSentinelOne(), parse.NewOCSF(), parse.NewECS(),
		parse.NewCEF(), parse.NewFortiGate(), parse.NewPANOS(), parse.NewCiscoASA(),
	)
}
