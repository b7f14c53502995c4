package state

import (
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

func TestMemoryContract(t *testing.T) {
	t.Parallel()
	runContract(t, func(t *testing.T, now func() time.Time) Store {
		s, err := NewMemory(Config{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestMemoryFeedbackContract(t *testing.T) {
	t.Parallel()
	runFeedbackContract(t, func(t *testing.T, now func() time.Time) Store {
		s, err := NewMemory(Config{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	bad := []Windows{
		{Short: 30 * time.Second},
		{Short: 7 * time.Hour},
		{Medium: 30 * time.Minute},
		{Long: 40 * 24 * time.Hour},
		{Medium: 48 * time.Hour, Long: 24 * time.Hour},
	}
	for _, w := range bad {
		if _, err := NewMemory(Config{Windows: w}); err == nil {
			t.Errorf("windows %+v accepted", w)
		}
	}
	c := Config{SeenTTL: time.Hour}
	if err := c.setDefaults(); err != nil || c.SeenTTL < 8*24*time.Hour {
		t.Errorf("seen TTL = %v, %v; want >= 8d", c.SeenTTL, err)
	}
}

func TestMemoryDirections(t *testing.T) {
	t.Parallel()
	m, _ := NewMemory(Config{})
	e := rec("192.0.2.1", 1, time.Now(), events.ActionAllowed, "", 0)
	e.Observation.Sighting.Direction = events.DirectionOutbound
	if _, err := m.Apply(t.Context(), []events.Enrichment{e}); err != nil {
		t.Fatal(err)
	}
	if d := m.Directions(e.Observation.Indicator.Key()); d[events.DirectionOutbound] != 1 {
		t.Errorf("directions = %v", d)
	}
}
