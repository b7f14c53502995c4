package allowlist

import (
	"sync/atomic"

	"github.com/vigilsec/vigil/pkg/events"
)

// Holder serves matches from the current Set and an optional overlay (for
// example analyst decisions) and swaps either atomically. The zero value
// matches nothing. It is safe for concurrent use.
type Holder struct {
	base    atomic.Pointer[Set]
	overlay atomic.Pointer[Set]
}

// NewHolder returns a Holder serving s.
func NewHolder(s *Set) *Holder {
	h := &Holder{}
	h.base.Store(s)
	return h
}

// Swap replaces the base Set; lookups in flight finish on the old one.
func (h *Holder) Swap(s *Set) { h.base.Store(s) }

// SetOverlay replaces the overlay Set, which is consulted before the base.
func (h *Holder) SetOverlay(s *Set) { h.overlay.Store(s) }

// Current returns the base Set.
func (h *Holder) Current() *Set { return h.base.Load() }

// Match checks the overlay, then the base Set.
func (h *Holder) Match(ind events.Indicator) (events.ListMatch, bool) {
	if m, ok := h.overlay.Load().Match(ind); ok {
		return m, true
	}
	return h.base.Load().Match(ind)
}

// MatchAll returns every matching list, overlay matches first.
func (h *Holder) MatchAll(ind events.Indicator) []events.ListMatch {
	out := h.overlay.Load().MatchAll(ind)
	return append(out, h.base.Load().MatchAll(ind)...)
}
