package feedback

import (
	"context"
	"testing"
	"time"
)

func cursorContract(t *testing.T, c Cursor) {
	t.Helper()
	ctx := context.Background()
	p, err := c.Load(ctx)
	if err != nil || !p.UpdatedAt.IsZero() || len(p.IDs) != 0 {
		t.Fatalf("empty Load = %+v, %v", p, err)
	}
	want := Position{UpdatedAt: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), IDs: []int64{3, 9}}
	if err := c.Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	p, err = c.Load(ctx)
	if err != nil || !p.UpdatedAt.Equal(want.UpdatedAt) || len(p.IDs) != 2 || p.IDs[1] != 9 {
		t.Fatalf("Load = %+v, %v", p, err)
	}
}

func TestMemoryCursorContract(t *testing.T) {
	t.Parallel()
	cursorContract(t, &MemoryCursor{})
}
