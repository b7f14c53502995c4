package main

import "testing"

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-addr", "0.0.0.0:0"},
		{"-addr", "example.org:80"},
		{"-addr", "127.0.0.1"},
		{"-nope"},
	} {
		if err := run(args); err == nil {
			t.Errorf("run(%v) = nil, want error", args)
		}
	}
}
