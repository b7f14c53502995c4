//go:build integration

package securetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
)

// A stream.Runner configured from secure.env (SCRAM-SHA-512 over TLS with the broker's private
// CA) creates its topics, copies every record to the output topic and dead-letters a poison one.
func TestSecureRunnerRoundTrip(t *testing.T) {
	t.Parallel()
	se := loadSecureEnv(t)
	in, out, dlq := uniq("secure-in"), uniq("secure-out"), uniq("secure-dlq")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	admin := se.client(t)
	if err := stream.EnsureTopics(ctx, admin, 3, 1, in, out, dlq); err != nil {
		t.Fatalf("create topics over SASL_SSL: %v", err)
	}
	const n = 60
	recs := make([]*kgo.Record, 0, n+1)
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: in, Key: fmt.Appendf(nil, "k%02d", i), Value: fmt.Appendf(nil, "v%02d", i)})
	}
	recs = append(recs, &kgo.Record{Topic: in, Key: []byte("poison"), Value: []byte("poison")})
	if err := admin.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce over SASL_SSL: %v", err)
	}

	kc := se.kafka
	kc.DLQTopic = dlq
	serde, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	h := stream.HandlerFunc(func(_ context.Context, batch []*kgo.Record) ([]stream.Result, error) {
		res := make([]stream.Result, len(batch))
		for i, r := range batch {
			if string(r.Key) == "poison" {
				res[i].Err = stream.Permanent("validation", errors.New("poison record"))
				continue
			}
			res[i].Outputs = []*kgo.Record{{Topic: out, Key: r.Key, Value: r.Value}}
		}
		return res, nil
	})
	r, err := stream.NewRunner(stream.Config{Stage: "securetest", Group: uniq("g-secure"), Topics: []string{in}, Kafka: kc},
		h, serde, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("new runner: %v", err)
	}
	rctx, stop := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(rctx)
	g.Go(func() error { return r.Run(gctx) })

	got := map[string]string{}
	var dead []*kgo.Record
	deadline := time.Now().Add(45 * time.Second)
	for (len(got) < n || len(dead) < 1) && time.Now().Before(deadline) {
		got, dead = map[string]string{}, nil
		for _, rec := range readAll(t, se, out, dlq) {
			switch rec.Topic {
			case out:
				got[string(rec.Key)] = string(rec.Value)
			case dlq:
				dead = append(dead, rec)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !r.Ready() {
		t.Error("runner never reported ready")
	}
	stop()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("runner: %v", err)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ccancel()
	if err := r.Close(cctx); err != nil {
		t.Errorf("close runner: %v", err)
	}

	if len(got) != n {
		t.Fatalf("output topic has %d distinct keys, want %d", len(got), n)
	}
	for i := range n {
		if k, want := fmt.Sprintf("k%02d", i), fmt.Sprintf("v%02d", i); got[k] != want {
			t.Fatalf("output[%s] = %q, want %q", k, got[k], want)
		}
	}
	if len(dead) != 1 || string(dead[0].Key) != "poison" {
		t.Fatalf("dead letters = %d (first key %q), want exactly the poison record", len(dead), keyOf(dead))
	}
	if v := header(dead[0], stream.HeaderErrorClass); v != "validation" {
		t.Fatalf("dead letter class header = %q, want validation", v)
	}
}

func keyOf(recs []*kgo.Record) string {
	if len(recs) == 0 {
		return ""
	}
	return string(recs[0].Key)
}

func header(r *kgo.Record, name string) string {
	for _, h := range r.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}

// Clients that do not present the right credentials, or do not verify the broker with its CA,
// get a clear error quickly instead of hanging.
func TestSecureRejectsBadClients(t *testing.T) {
	t.Parallel()
	se := loadSecureEnv(t)
	wrongPassword := secret("wrong-kafka-password")
	tests := []struct {
		name string
		edit func(*stream.KafkaConfig)
		// wantErr lists substrings of which at least one must be in the error (case-insensitive)
		wantErr []string
	}{
		{
			name:    "wrong password",
			edit:    func(c *stream.KafkaConfig) { c.SASLPassword = wrongPassword },
			wantErr: []string{"authentication failed", "invalid credentials"},
		},
		{
			name:    "unknown user",
			edit:    func(c *stream.KafkaConfig) { c.SASLUser = "nobody" },
			wantErr: []string{"authentication failed", "invalid credentials"},
		},
		{
			name:    "tls without the CA: verification is on by default",
			edit:    func(c *stream.KafkaConfig) { c.TLSCAFile = "" },
			wantErr: []string{"certificate signed by unknown authority"},
		},
		{
			name:    "wrong SCRAM mechanism",
			edit:    func(c *stream.KafkaConfig) { c.SASLMechanism = "SCRAM-SHA-256" },
			wantErr: []string{"unsupported_sasl_mechanism"},
		},
		{
			name:    "tls without sasl",
			edit:    func(c *stream.KafkaConfig) { c.SASLMechanism, c.SASLUser, c.SASLPassword = "", "", "" },
			wantErr: []string{"is sasl missing"},
		},
		{
			name:    "plaintext client on the TLS port",
			edit:    func(c *stream.KafkaConfig) { c.TLS, c.TLSCAFile = false, "" },
			wantErr: []string{"plaintext connection speaking to a tls endpoint"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kc := se.kafka
			tt.edit(&kc)
			opts, err := kc.ClientOpts()
			if err != nil {
				t.Fatalf("client options: %v", err)
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatalf("new client: %v", err)
			}
			defer cl.Close()
			const bound = 20 * time.Second
			ctx, cancel := context.WithTimeout(t.Context(), bound)
			defer cancel()
			start := time.Now()
			err = cl.Ping(ctx)
			took := time.Since(start)
			if err == nil {
				t.Fatal("ping succeeded, want an error")
			}
			if errors.Is(err, context.DeadlineExceeded) || took >= bound {
				t.Fatalf("ping hung for %s (err %v), want a prompt error", took.Round(time.Millisecond), err)
			}
			msg := strings.ToLower(err.Error())
			if !containsAny(msg, tt.wantErr) {
				t.Fatalf("error %q mentions none of %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), se.password) || strings.Contains(err.Error(), wrongPassword) {
				t.Fatalf("error %q contains a password", err)
			}
			t.Logf("rejected after %s: %v", took.Round(time.Millisecond), err)
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, strings.ToLower(sub)) {
			return true
		}
	}
	return false
}
