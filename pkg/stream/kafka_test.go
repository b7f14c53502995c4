package stream

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/envconf"
)

func TestLoadKafkaFetchAndLinger(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		env      map[string]string
		minBytes int32
		maxWait  time.Duration
		linger   time.Duration
		errVar   string // variable named in the error, "" for none
	}{
		{"defaults", nil, 64 << 10, 50 * time.Millisecond, 5 * time.Millisecond, ""},
		{"set", map[string]string{"VIGIL_KAFKA_FETCH_MIN_BYTES": "1", "VIGIL_KAFKA_FETCH_MAX_WAIT": "250ms", "VIGIL_KAFKA_LINGER": "0s"},
			1, 250 * time.Millisecond, 0, ""},
		{"min bytes zero", map[string]string{"VIGIL_KAFKA_FETCH_MIN_BYTES": "0"}, 0, 0, 0, "VIGIL_KAFKA_FETCH_MIN_BYTES"},
		{"max wait too long", map[string]string{"VIGIL_KAFKA_FETCH_MAX_WAIT": "1m"}, 0, 0, 0, "VIGIL_KAFKA_FETCH_MAX_WAIT"},
		{"negative linger", map[string]string{"VIGIL_KAFKA_LINGER": "-1ms"}, 0, 0, 0, "VIGIL_KAFKA_LINGER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := envconf.New(envconf.FromMap(tc.env))
			c := LoadKafka(e, "test")
			err := e.Err()
			if tc.errVar != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errVar) {
					t.Fatalf("err = %v, want one naming %s", err, tc.errVar)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.FetchMinBytes != tc.minBytes || c.FetchMaxWait != tc.maxWait || c.Linger != tc.linger {
				t.Fatalf("min bytes %d, max wait %v, linger %v; want %d, %v, %v", c.FetchMinBytes, c.FetchMaxWait, c.Linger, tc.minBytes, tc.maxWait, tc.linger)
			}
		})
	}
}

// TestCompression: VIGIL_KAFKA_COMPRESSION picks the codec of produced
// batches (read back from the batch attributes a consumer sees); a codec
// franz-go does not know is refused by name.
func TestCompression(t *testing.T) {
	t.Parallel()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "c-", "c-none", "c-gzip", "c-snappy", "c-lz4", "c-zstd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	for _, tc := range []struct {
		value string
		want  uint8 // RecordAttrs.CompressionType
	}{{"", 2}, {"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}} {
		t.Run("codec "+tc.value, func(t *testing.T) {
			env := map[string]string{"VIGIL_KAFKA_BROKERS": fake.ListenAddrs()[0]}
			if tc.value != "" {
				env["VIGIL_KAFKA_COMPRESSION"] = tc.value
			}
			e := envconf.New(envconf.FromMap(env))
			c := LoadKafka(e, "test")
			if err := e.Err(); err != nil {
				t.Fatal(err)
			}
			opts, err := c.ClientOpts()
			if err != nil {
				t.Fatal(err)
			}
			topic := "c-" + tc.value // one topic per case: its first record is this case's
			cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			value := []byte(strings.Repeat("compress me ", 50))
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: value}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			for {
				fs := cl.PollRecords(ctx, 1)
				if err := ctx.Err(); err != nil {
					t.Fatal("no record consumed")
				}
				if recs := fs.Records(); len(recs) > 0 {
					if got := recs[0].Attrs.CompressionType(); got != tc.want {
						t.Fatalf("compression type %d, want %d", got, tc.want)
					}
					return
				}
			}
		})
	}
	e := envconf.New(envconf.FromMap(map[string]string{"VIGIL_KAFKA_COMPRESSION": "brotli"}))
	LoadKafka(e, "test")
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "VIGIL_KAFKA_COMPRESSION") {
		t.Fatalf("err = %v, want one naming VIGIL_KAFKA_COMPRESSION", err)
	}
}
