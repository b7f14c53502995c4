package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
)

// fakeFetcher answers BrokerMetadata from a script of results, repeating the
// last one once the script runs out.
type fakeFetcher struct {
	results []fakeResult
	calls   int
}

type fakeResult struct {
	md  kadm.Metadata
	err error
}

func (f *fakeFetcher) BrokerMetadata(context.Context) (kadm.Metadata, error) {
	r := f.results[min(f.calls, len(f.results)-1)]
	f.calls++
	return r.md, r.err
}

func TestWaitReady(t *testing.T) {
	errRefused := errors.New("connection refused")
	ready := kadm.Metadata{Cluster: "c1", Brokers: kadm.BrokerDetails{{NodeID: 1}}}
	empty := kadm.Metadata{Cluster: "c1"}

	tests := []struct {
		name      string
		results   []fakeResult
		wantErr   error
		wantCause error
		minCalls  int
	}{
		{
			name:     "ready at once",
			results:  []fakeResult{{md: ready}},
			minCalls: 1,
		},
		{
			name:     "ready after refusals",
			results:  []fakeResult{{err: errRefused}, {err: errRefused}, {md: empty}, {md: ready}},
			minCalls: 4,
		},
		{
			name:      "never reachable",
			results:   []fakeResult{{err: errRefused}},
			wantErr:   ErrNotReady,
			wantCause: errRefused,
			minCalls:  2,
		},
		{
			name:      "answers without brokers",
			results:   []fakeResult{{md: empty}},
			wantErr:   ErrNotReady,
			wantCause: errNoBrokers,
			minCalls:  2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeFetcher{results: tt.results}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()

			md, err := waitReady(ctx, f, 5*time.Millisecond, 50*time.Millisecond)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, tt.wantCause) {
					t.Fatalf("err = %v, want %v wrapping %v", err, tt.wantErr, tt.wantCause)
				}
			} else {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				if md.Cluster != "c1" || len(md.Brokers) != 1 {
					t.Fatalf("metadata = %+v, want cluster c1 with 1 broker", md)
				}
			}
			if f.calls < tt.minCalls {
				t.Fatalf("calls = %d, want at least %d", f.calls, tt.minCalls)
			}
		})
	}
}

func TestRunAgainstFakeCluster(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	defer c.Close()

	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-brokers", strings.Join(c.ListenAddrs(), ","), "-timeout", "10s"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit = %d, want 0; stderr: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "ready after") {
		t.Fatalf("stdout = %q, want a ready line", out.String())
	}
}

func TestRunTimesOut(t *testing.T) {
	// Reserve a loopback port, then close it so nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	var out, errOut bytes.Buffer
	start := time.Now()
	code := run(context.Background(), []string{"-brokers", addr, "-timeout", "500ms", "-interval", "50ms"}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit = %d, want 1; stderr: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "not ready after") || !strings.Contains(errOut.String(), addr) {
		t.Fatalf("stderr = %q, want a not-ready message naming %s", errOut.String(), addr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s, want about the 500ms timeout", took)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "empty brokers", args: []string{"-brokers", " , "}},
		{name: "zero timeout", args: []string{"-timeout", "0s"}},
		{name: "unknown flag", args: []string{"-nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), tt.args, &out, &errOut); code != 2 {
				t.Fatalf("exit = %d, want 2", code)
			}
			if errOut.Len() == 0 {
				t.Fatal("want a message on stderr")
			}
		})
	}
}
