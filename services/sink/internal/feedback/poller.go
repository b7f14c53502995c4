// Package feedback reads analysts' decisions back from ThreatQ: indicators Vigil wrote whose
// status or manual score was changed by someone else become events.Feedback.
package feedback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/sink/internal/threatq"
	"github.com/vigilsec/vigil/services/sink/internal/writer"
)

// Feedback kinds.
const (
	KindStatusChanged = "status_changed"
	KindScoreChanged  = "score_changed"
	KindRemoved       = "removed"
)

// ThreatQ is the part of the ThreatQ client the poller uses (*threatq.Client implements it).
type ThreatQ interface {
	QueryUpdatedSince(ctx context.Context, since time.Time, limit, offset int) ([]threatq.Indicator, int, error)
	GetByID(ctx context.Context, id int64) (threatq.Indicator, error)
}

// Scanner iterates the fingerprint store in bounded slices, round-robin (writer.MemoryStore and
// writer.RedisStore implement it). ScanMany returns about count records after cursor ("" starts)
// and the next cursor ("" when the round completed).
type Scanner interface {
	ScanMany(ctx context.Context, cursor string, count int) (map[string]writer.Record, string, error)
}

// Config configures a Poller. Zero fields take the documented defaults.
type Config struct {
	SourceName string        // source marking Vigil's indicators; default "Vigil"
	PageSize   int           // default 500
	MaxPages   int           // pages per Poll; default 20 (the rest is read on the next Poll)
	Settle     time.Duration // ignore changes newer than this, so Vigil's own in-flight writes have
	// recorded their decision first; default 30s
	StartAt time.Time // where to start when no cursor is stored; default: now (no backfill)
	// Leader, when set, lets only the replica holding the lease poll (nil: always poll).
	Leader Leader
	// RemovalCheck is how many of Vigil's recorded indicators each Poll looks up by id to detect
	// deletions (a deleted indicator never appears in an updated-since query); default 200,
	// negative disables. Needs a store implementing Scanner (otherwise disabled).
	RemovalCheck int
}

// removalLookups is how many removal look-ups run at once.
const removalLookups = 4

// Poller detects analyst changes. Poll and Commit must not be called concurrently.
type Poller struct {
	cfg    Config
	tq     ThreatQ
	store  writer.FingerprintStore
	cursor Cursor
	logger *slog.Logger
	now    func() time.Time

	staged *staged
}

// staged is what Commit persists after the feedback of a Poll was published.
type staged struct {
	pos  Position
	recs map[string]writer.Record
}

// New returns a Poller.
func New(cfg Config, tq ThreatQ, store writer.FingerprintStore, cursor Cursor, logger *slog.Logger) (*Poller, error) {
	if tq == nil || store == nil || cursor == nil {
		return nil, errors.New("feedback: threatq client, store and cursor are required")
	}
	if cfg.SourceName == "" {
		cfg.SourceName = "Vigil"
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 500
	}
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = 20
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 30 * time.Second
	}
	if cfg.RemovalCheck == 0 {
		cfg.RemovalCheck = 200
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if _, ok := store.(Scanner); !ok && cfg.RemovalCheck > 0 {
		logger.Warn("fingerprint store cannot be scanned: removal feedback disabled")
		cfg.RemovalCheck = -1
	}
	return &Poller{cfg: cfg, tq: tq, store: store, cursor: cursor, logger: logger, now: time.Now}, nil
}

// Poll reads the indicators changed since the committed cursor and returns the analyst changes
// among Vigil's indicators. Nothing is persisted: call Commit after the feedback was published
// (Run does). Polling again without Commit re-reads the same changes (at-least-once).
func (p *Poller) Poll(ctx context.Context) ([]events.Feedback, error) {
	p.staged = nil
	pos, err := p.cursor.Load(ctx)
	if err != nil {
		return nil, err
	}
	if pos.UpdatedAt.IsZero() {
		start := p.cfg.StartAt
		if start.IsZero() {
			start = p.now().Add(-p.cfg.Settle)
		}
		pos = Position{UpdatedAt: start.UTC().Truncate(time.Second)}
	}
	horizon := p.now().Add(-p.cfg.Settle)
	type seenKey struct {
		id int64
		at int64
	}
	seen := make(map[seenKey]bool, len(pos.IDs))
	for _, id := range pos.IDs {
		seen[seenKey{id, pos.UpdatedAt.Unix()}] = true
	}
	next := Position{UpdatedAt: pos.UpdatedAt, IDs: slices.Clone(pos.IDs), RemovalCursor: pos.RemovalCursor}
	var changed []threatq.Indicator
	since, offset := pos.UpdatedAt, 0
pages:
	for page := 0; page < p.cfg.MaxPages; page++ {
		items, _, err := p.tq.QueryUpdatedSince(ctx, since, p.cfg.PageSize, offset)
		if err != nil {
			return nil, fmt.Errorf("poll threatq: %w", err)
		}
		last := since
		for _, in := range items {
			if in.UpdatedAt.After(horizon) {
				break pages // too fresh; read on a later poll
			}
			if in.UpdatedAt.Before(since) {
				continue
			}
			if in.UpdatedAt.After(last) {
				last = in.UpdatedAt
			}
			if in.UpdatedAt.After(next.UpdatedAt) {
				next = Position{UpdatedAt: in.UpdatedAt, RemovalCursor: next.RemovalCursor}
			}
			sk := seenKey{in.ID, in.UpdatedAt.Unix()}
			if seen[sk] {
				continue
			}
			seen[sk] = true
			if in.UpdatedAt.Equal(next.UpdatedAt) && !slices.Contains(next.IDs, in.ID) {
				next.IDs = append(next.IDs, in.ID)
			}
			changed = append(changed, in)
		}
		if len(items) < p.cfg.PageSize {
			break
		}
		// Keyset paging on updated_at; offset only within one instant.
		atLast := 0
		for _, in := range items {
			if in.UpdatedAt.Equal(last) {
				atLast++
			}
		}
		if last.Equal(since) {
			offset += len(items)
		} else {
			since, offset = last, atLast
		}
	}
	fbs, recs, err := p.compare(ctx, changed)
	if err != nil {
		return nil, err
	}
	removed, nextScan, err := p.checkRemoved(ctx, pos.RemovalCursor, recs)
	if err != nil {
		return nil, err
	}
	fbs = append(fbs, removed...)
	next.RemovalCursor = nextScan
	p.staged = &staged{pos: next, recs: recs}
	return fbs, nil
}

// compare turns changed indicators into feedback against Vigil's recorded decisions.
func (p *Poller) compare(ctx context.Context, changed []threatq.Indicator) ([]events.Feedback, map[string]writer.Record, error) {
	keyOf := make(map[int]string, len(changed))
	var keys []string
	for i, in := range changed {
		if !in.HasSource(p.cfg.SourceName) {
			continue
		}
		typ := writer.TypeFromThreatQ(in.Type)
		if typ == "" {
			continue
		}
		k := events.Indicator{Type: typ, Value: in.Value}.Key()
		keyOf[i] = k
		keys = append(keys, k)
	}
	recs := map[string]writer.Record{}
	if len(keys) == 0 {
		return nil, recs, nil
	}
	have, err := p.store.GetMany(ctx, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("read vigil decisions: %w", err)
	}
	var out []events.Feedback
	for i, in := range changed {
		k, ok := keyOf[i]
		if !ok {
			continue
		}
		rec, ok := have[k]
		if !ok {
			continue // not (yet) recorded by this sink
		}
		baseStatus, baseScore := rec.Status, rec.Score
		if rec.Observed != nil {
			baseStatus, baseScore = rec.Observed.Status, rec.Observed.Score
		}
		now := writer.Observed{Status: in.Status, Score: in.Score.Manual}
		statusChanged := baseStatus != "" && !strings.EqualFold(now.Status, baseStatus)
		scoreChanged := now.Score != baseScore
		if !statusChanged && !scoreChanged {
			if baseStatus == "" && rec.Observed == nil {
				rec.Observed = &now // first sight of a status Vigil did not set: baseline only
				recs[k] = rec
			}
			continue
		}
		fb := events.Feedback{
			Indicator:     events.Indicator{Type: writer.TypeFromThreatQ(in.Type), Value: in.Value},
			ThreatQID:     in.ID,
			Kind:          KindScoreChanged,
			NewScore:      -1,
			VigilAction:   rec.Action,
			VigilPriority: rec.Priority,
			ChangedAt:     in.UpdatedAt,
		}
		var why []string
		if statusChanged {
			fb.Kind, fb.NewStatus, fb.PreviousStatus = KindStatusChanged, now.Status, baseStatus
			why = append(why, fmt.Sprintf("status %s -> %s", baseStatus, now.Status))
		}
		if scoreChanged {
			fb.NewScore = in.Score.Effective()
			why = append(why, fmt.Sprintf("manual score %s -> %s", scoreText(baseScore), scoreText(now.Score)))
		}
		fb.Reason = strings.Join(why, "; ")
		out = append(out, fb)
		rec.Observed = &now
		recs[k] = rec
	}
	return out, recs, nil
}

// checkRemoved looks up the next slice of Vigil's recorded indicators by ThreatQ id and reports
// those ThreatQ no longer has (once: the record is marked Removed in recs). It returns the scan
// cursor to save with the poll position.
func (p *Poller) checkRemoved(ctx context.Context, cursor string, recs map[string]writer.Record) ([]events.Feedback, string, error) {
	if p.cfg.RemovalCheck < 0 {
		return nil, cursor, nil
	}
	slice, next, err := p.store.(Scanner).ScanMany(ctx, cursor, p.cfg.RemovalCheck)
	if err != nil {
		return nil, "", fmt.Errorf("scan vigil decisions: %w", err)
	}
	keys := make([]string, 0, len(slice))
	for k, rec := range slice {
		if rec.ThreatQID != 0 && !rec.Removed {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	gone := make([]bool, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(removalLookups)
	for i, k := range keys {
		g.Go(func() error {
			_, err := p.tq.GetByID(gctx, slice[k].ThreatQID)
			switch {
			case errors.Is(err, threatq.ErrNotFound):
				gone[i] = true
			case err != nil:
				return fmt.Errorf("check indicator %d: %w", slice[k].ThreatQID, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, "", err
	}
	var out []events.Feedback
	at := p.now().UTC()
	for i, k := range keys {
		if !gone[i] {
			continue
		}
		rec := slice[k]
		if staged, ok := recs[k]; ok {
			rec = staged
		}
		ind, ok := indicatorOf(k)
		if !ok {
			continue
		}
		out = append(out, events.Feedback{
			Indicator:     ind,
			ThreatQID:     rec.ThreatQID,
			Kind:          KindRemoved,
			NewScore:      -1,
			Reason:        "indicator deleted from ThreatQ",
			VigilAction:   rec.Action,
			VigilPriority: rec.Priority,
			ChangedAt:     at,
		})
		rec.Removed = true
		recs[k] = rec
	}
	return out, next, nil
}

// indicatorOf splits a store key "type:value" back into the indicator.
func indicatorOf(key string) (events.Indicator, bool) {
	typ, value, ok := strings.Cut(key, ":")
	if !ok || typ == "" || value == "" {
		return events.Indicator{}, false
	}
	return events.Indicator{Type: typ, Value: value}, true
}

func scoreText(s float64) string {
	if s < 0 {
		return "none"
	}
	return fmt.Sprintf("%g", s)
}

// Commit persists what the last Poll read: the analyst states reported (so they are not reported
// twice) and the cursor. Call it only after the feedback was published.
func (p *Poller) Commit(ctx context.Context) error {
	st := p.staged
	if st == nil {
		return nil
	}
	if err := p.store.SetMany(ctx, st.recs); err != nil {
		return fmt.Errorf("record observed feedback: %w", err)
	}
	if err := p.cursor.Save(ctx, st.pos); err != nil {
		return err
	}
	p.staged = nil
	return nil
}

// Run polls every interval until ctx ends: Poll, publish (when there is feedback), Commit.
// The cursor moves only after publish succeeded. Errors are logged and retried next tick;
// Run returns nil when ctx is cancelled.
func (p *Poller) Run(ctx context.Context, interval time.Duration, publish func(context.Context, []events.Feedback) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		lead := true
		if p.cfg.Leader != nil {
			var err error
			if lead, err = p.cfg.Leader.Acquire(ctx); err != nil && ctx.Err() == nil {
				p.logger.WarnContext(ctx, "feedback lease", "err", err)
			}
		}
		if lead {
			if err := p.runOnce(ctx, publish); err != nil && ctx.Err() == nil {
				p.logger.WarnContext(ctx, "feedback poll failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (p *Poller) runOnce(ctx context.Context, publish func(context.Context, []events.Feedback) error) error {
	fbs, err := p.Poll(ctx)
	if err != nil {
		return err
	}
	if len(fbs) > 0 {
		if err := publish(ctx, fbs); err != nil {
			p.staged = nil
			return fmt.Errorf("publish feedback: %w", err)
		}
	}
	return p.Commit(ctx)
}
