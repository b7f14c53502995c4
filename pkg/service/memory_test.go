package service

import (
	"errors"
	"runtime/debug"
	"testing"
)

func TestLoadCompact(t *testing.T) {
	prev := debug.SetGCPercent(150)
	defer debug.SetGCPercent(prev)
	var during int
	got, err := LoadCompact(func() ([]byte, error) {
		during = debug.SetGCPercent(loadGCPercent) // read the value in effect (and keep it)
		return make([]byte, 10), nil
	})
	if err != nil || len(got) != 10 {
		t.Fatalf("LoadCompact = %d bytes, %v; want the load's result", len(got), err)
	}
	if during != loadGCPercent {
		t.Fatalf("GOGC during the load = %d, want %d", during, loadGCPercent)
	}
	if after := debug.SetGCPercent(150); after != 150 {
		t.Fatalf("GOGC after the load = %d, want the previous 150", after)
	}
	boom := errors.New("boom")
	if _, err := LoadCompact(func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("error not passed through: %v", err)
	}
}
