package config

import (
	"strings"
	"testing"

	"github.com/vigilsec/vigil/pkg/envconf"
)

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(envconf.New(envconf.FromMap(nil)))
	if err != nil {
		t.Fatalf("defaults must load: %v", err)
	}
	if c.OutTopic != "indicators.observed" || c.MaxRecordBytes != 1<<20 || c.DefaultFormat != "auto" || len(c.Topics) == 0 {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if c.Common.Kafka.Partitions != 12 || c.Common.Kafka.DLQTopic != "vigil.dlq" || c.Common.OpsAddr != "127.0.0.1:9401" {
		t.Fatalf("unexpected common defaults: %+v", c.Common)
	}
}

func TestLoadBadEnv(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"format entry", map[string]string{"VIGIL_INGEST_FORMATS": "raw.x"}, `VIGIL_INGEST_FORMATS="raw.x": entries must be topic=format`},
		{"max bytes", map[string]string{"VIGIL_INGEST_MAX_RECORD_BYTES": "10"}, `VIGIL_INGEST_MAX_RECORD_BYTES="10": must be at least 64`},
		{"max bytes type", map[string]string{"VIGIL_INGEST_MAX_RECORD_BYTES": "lots"}, `VIGIL_INGEST_MAX_RECORD_BYTES="lots": not an integer`},
		{"nets", map[string]string{"VIGIL_INTERNAL_NETS": "10.0.0.0/33"}, `VIGIL_INTERNAL_NETS`},
		{"partitions", map[string]string{"VIGIL_KAFKA_PARTITIONS": "0"}, `VIGIL_KAFKA_PARTITIONS="0": must be >= 1`},
		{"sasl", map[string]string{"VIGIL_KAFKA_SASL_MECHANISM": "PLAIN"}, `VIGIL_KAFKA_SASL_MECHANISM="PLAIN": must be SCRAM-SHA-256 or SCRAM-SHA-512`},
		{"sasl creds", map[string]string{"VIGIL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"}, `SASL needs VIGIL_KAFKA_SASL_USER and VIGIL_KAFKA_SASL_PASSWORD`},
		{"reset", map[string]string{"VIGIL_KAFKA_RESET_OFFSET": "middle"}, `VIGIL_KAFKA_RESET_OFFSET="middle": must be one of earliest, latest`},
		{"log level", map[string]string{"VIGIL_LOG_LEVEL": "loud"}, `VIGIL_LOG_LEVEL="loud": must be one of debug, info, warn, error`},
		{"duration", map[string]string{"VIGIL_SHUTDOWN_TIMEOUT": "soon"}, `VIGIL_SHUTDOWN_TIMEOUT="soon": not a duration`},
		{"bool", map[string]string{"VIGIL_INGEST_COLLAPSE": "maybe"}, `VIGIL_INGEST_COLLAPSE="maybe": not a boolean`},
		{"secret file", map[string]string{"VIGIL_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw"}, `VIGIL_KAFKA_SASL_PASSWORD_FILE="/nonexistent/pw": cannot read secret file`},
		{"collapse window", map[string]string{"VIGIL_INGEST_COLLAPSE_WINDOW": "5m"}, `VIGIL_INGEST_COLLAPSE_WINDOW="5m0s": must be at most 1m`},
		{"batch", map[string]string{"VIGIL_MAX_BATCH": "0"}, `VIGIL_MAX_BATCH="0": must be between 1 and 100000`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(envconf.New(envconf.FromMap(tc.env)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestSecretNotInError(t *testing.T) {
	t.Parallel()
	_, err := Load(envconf.New(envconf.FromMap(map[string]string{
		"VIGIL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "VIGIL_KAFKA_SASL_PASSWORD": "hunter2-secret",
	})))
	if err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Fatalf("want an error without the secret, got %v", err)
	}
}
