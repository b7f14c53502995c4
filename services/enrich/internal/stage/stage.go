// Package stage is enrich's stream stage: Avro Observations in, Avro Enrichments out, one per input,
// keyed by the input's key.
//
// A poll batch is enriched with ONE EnrichBatch call, so the cache is looked up in one round trip and an
// indicator seen many times in the batch is fetched at most once. Outcomes:
//
//   - an undecodable record is dead-lettered (stream.Permanent, class "decode");
//   - a provider that fails yields a per-provider status in the Enrichment (partial enrichment), never
//     an error;
//   - a Required provider whose breaker is open makes Handle return an error wrapping stream.ErrPause
//     (and enricher.ErrRequiredProviderDown): the runner rewinds and pauses the batch's partitions;
//   - any other batch error (e.g. ctx ended) is returned; the runner retries the batch, then pauses.
package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/enrich/internal/enricher"
)

// Error classes of dead-lettered records.
const (
	ClassDecode = "decode"
	ClassEncode = "encode"
)

// Enricher enriches a batch of observations (*enricher.Enricher). It returns one Enrichment per
// observation, in order, or an error and none; sorted, when not nil, holds per enrichment and result the
// result's Fields as events.SortedFields (nil where unknown), which the encoder writes instead of sorting
// the map.
type Enricher interface {
	EnrichBatchSorted(ctx context.Context, obs []events.Observation) (ens []events.Enrichment, sorted [][]events.SortedFields, err error)
}

// Recorder is told about the Enrichments the handler returns, once per batch (*otelmetrics.Metrics counts
// results and coverage gaps). It is called before the runner produces the outputs, so a batch that is later
// re-delivered (failed produce, pause) is counted again. It must not block nor keep ens.
type Recorder interface {
	Enriched(ctx context.Context, ens []events.Enrichment)
}

var _ Enricher = (*enricher.Enricher)(nil)

// Config configures a Handler.
type Config struct {
	OutTopic string // indicators.enriched
}

// Handler implements stream.BatchHandler. Handle is called from one goroutine at a time.
type Handler struct {
	cfg   Config
	enr   Enricher
	serde *events.Serde
	rec   Recorder
	log   *slog.Logger
}

var _ stream.BatchHandler = (*Handler)(nil)

// New returns a Handler. rec and log may be nil.
func New(cfg Config, enr Enricher, serde *events.Serde, rec Recorder, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, enr: enr, serde: serde, rec: rec, log: log}
}

// Handle implements stream.BatchHandler: one Result per record, one Enrichment output per decoded record.
func (h *Handler) Handle(ctx context.Context, recs []*kgo.Record) ([]stream.Result, error) {
	res := make([]stream.Result, len(recs))
	obs := make([]events.Observation, 0, len(recs))
	idx := make([]int, 0, len(recs)) // obs[j] came from recs[idx[j]]
	for i, r := range recs {
		o, err := h.serde.DecodeObservation(ctx, r.Value)
		if err != nil {
			var de *events.DecodeError
			if errors.As(err, &de) {
				res[i].Err = stream.Permanent(ClassDecode, err)
			} else {
				res[i].Err = fmt.Errorf("decode observation: %w", err) // e.g. registry unreachable: retried
			}
			continue
		}
		obs = append(obs, o)
		idx = append(idx, i)
	}
	if len(obs) == 0 {
		return res, nil
	}
	ens, sorted, err := h.enr.EnrichBatchSorted(ctx, obs)
	switch {
	case errors.Is(err, enricher.ErrRequiredProviderDown):
		return nil, fmt.Errorf("enrich: %w: %w", stream.ErrPause, err)
	case err != nil:
		return nil, fmt.Errorf("enrich: %w", err)
	case len(ens) != len(obs):
		return nil, fmt.Errorf("enrich: %d enrichments for %d observations", len(ens), len(obs))
	}
	// emitted collects the encoded enrichments only once one failed to encode (rare); until then all are.
	var emitted []events.Enrichment
	encErr := false
	for j := range ens {
		i := idx[j]
		var fields []events.SortedFields
		if j < len(sorted) {
			fields = sorted[j]
		}
		val, err := h.serde.EncodeEnrichmentSorted(&ens[j], fields)
		if err != nil {
			res[i].Err = stream.Permanent(ClassEncode, err)
			if !encErr {
				encErr = true
				emitted = append(emitted, ens[:j]...)
			}
			continue
		}
		key := recs[i].Key
		if len(key) == 0 {
			key = []byte(ens[j].Observation.Indicator.Key())
		}
		res[i].Outputs = []*kgo.Record{{Topic: h.cfg.OutTopic, Key: key, Value: val}}
		if encErr {
			emitted = append(emitted, ens[j])
		}
	}
	if h.rec != nil {
		if !encErr {
			emitted = ens
		}
		h.rec.Enriched(ctx, emitted)
	}
	return res, nil
}
