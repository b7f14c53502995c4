package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/services/correlate/internal/assets"
)

// PolicyReloader swaps in a validated policy file (*correlator.Correlator
// satisfies it); on error the policy in force stays.
type PolicyReloader interface {
	Reload(path string) error
}

// Reloader re-reads the policy file, the allow-lists and the asset inventory
// (on SIGHUP). Each part is validated before it is swapped in, so a bad file
// leaves the one in force untouched; the parts are independent. Swaps are
// atomic: a batch in flight finishes with the policy and lists it started
// with, nothing is dropped or paused.
type Reloader struct {
	PolicyFile string // empty: the embedded default policy, nothing to reload
	Policy     PolicyReloader
	Lists      *allowlist.Holder // nil: lists are not reloaded
	ListConfig allowlist.Config
	AssetsFile string         // empty: no inventory to reload
	Assets     *assets.Holder // nil: assets are not reloaded
	Metrics    *Metrics       // may be nil
	Log        *slog.Logger
}

// Reload reloads every configured part and returns the problems joined (a
// policy error names file, line and field). It is safe to call while the
// stage runs.
func (r *Reloader) Reload(ctx context.Context) error {
	var errs []error
	if r.PolicyFile != "" && r.Policy != nil {
		if err := r.Policy.Reload(r.PolicyFile); err != nil {
			r.Metrics.reload(ctx, ReloadRejected)
			errs = append(errs, fmt.Errorf("policy rejected, previous policy stays: %w", err))
		} else {
			r.Metrics.reload(ctx, ReloadOK)
		}
	}
	if r.Lists != nil {
		set, err := allowlist.Load(r.ListConfig)
		if err != nil {
			errs = append(errs, fmt.Errorf("allow-lists rejected, previous lists stay: %w", err))
		} else {
			r.Lists.Swap(set)
			r.Log.InfoContext(ctx, "allow-lists reloaded", "lists", len(set.Lists()), "entries", set.Len())
		}
	}
	if r.AssetsFile != "" && r.Assets != nil {
		inv, err := assets.Load(r.AssetsFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("asset inventory rejected, previous inventory stays: %w", err))
		} else {
			r.Assets.Swap(inv)
			r.Log.InfoContext(ctx, "asset inventory reloaded", "file", r.AssetsFile, "entries", inv.Len())
		}
	}
	return errors.Join(errs...)
}

// Run reloads on every value from sig until ctx ends, logging the outcome;
// it returns nil. Run it under the service's errgroup with a channel from
// signal.Notify(ch, syscall.SIGHUP).
func (r *Reloader) Run(ctx context.Context, sig <-chan os.Signal) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-sig:
			r.Log.InfoContext(ctx, "reloading", "signal", s.String())
			if err := r.Reload(ctx); err != nil {
				r.Log.ErrorContext(ctx, "reload", "err", err)
			}
		}
	}
}
