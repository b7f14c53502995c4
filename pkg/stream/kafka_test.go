package stream

import (
	"strings"
	"testing"
	"time"

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
