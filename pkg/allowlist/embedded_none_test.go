package allowlist

import "testing"

func TestEmbeddedNone(t *testing.T) {
	t.Parallel()
	lists, err := Embedded([]string{"none"})
	if err != nil || len(lists) != 0 {
		t.Fatalf("Embedded(none) = %d lists, %v; want none, nil", len(lists), err)
	}
	if _, err := Embedded([]string{"no-such-list"}); err == nil {
		t.Fatal("an unknown list name must be an error")
	}
}
