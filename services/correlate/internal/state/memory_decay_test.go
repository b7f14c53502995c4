package state

import (
	"testing"
	"time"
)

func TestMemoryDecayContract(t *testing.T) {
	t.Parallel()
	runDecayContract(t, func(t *testing.T, now func() time.Time) Store {
		s, err := NewMemory(Config{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, func(*testing.T, []int32) {})
}
