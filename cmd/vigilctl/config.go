package main

// Environment variables read by vigilctl (flags override them):
//
//	| Variable                       | Default                                   | Meaning                                                        |
//	|--------------------------------|-------------------------------------------|----------------------------------------------------------------|
//	| VIGIL_KAFKA_BROKERS            | 127.0.0.1:19092                           | Kafka seed brokers, comma list (--brokers)                      |
//	| VIGIL_KAFKA_SASL_MECHANISM     | (none)                                    | SCRAM-SHA-256 or SCRAM-SHA-512                                  |
//	| VIGIL_KAFKA_SASL_USER          | (none)                                    | SASL user                                                      |
//	| VIGIL_KAFKA_SASL_PASSWORD(_FILE)| (none)                                   | SASL password, or a file holding it                            |
//	| VIGIL_KAFKA_TLS                | false                                     | TLS to Kafka                                                   |
//	| VIGIL_KAFKA_TLS_CA_FILE        | (system roots)                            | CA bundle for Kafka                                            |
//	| VIGIL_KAFKA_TLS_CERT_FILE/KEY_FILE | (none)                                | client certificate for Kafka                                   |
//	| VIGIL_KAFKA_TLS_INSECURE_SKIP_VERIFY | false                               | skip Kafka certificate checks (dev only)                       |
//	| VIGIL_TOPIC_DLQ                | vigil.dlq                                 | dead-letter topic (--dlq-topic)                                 |
//	| VIGIL_REDIS_ADDR               | 127.0.0.1:6379                            | Redis of the enrichment cache (--redis)                         |
//	| VIGIL_REDIS_USERNAME           | (none)                                    | Redis ACL user                                                 |
//	| VIGIL_REDIS_PASSWORD(_FILE)    | (none)                                    | Redis password                                                 |
//	| VIGIL_REDIS_DB                 | 0                                         | Redis database                                                 |
//	| VIGIL_REDIS_TLS                | false                                     | TLS to Redis                                                   |
//	| VIGIL_REDIS_TLS_CA_FILE        | (system roots)                            | CA bundle for Redis                                            |
//	| VIGIL_CTL_OPS                  | http://127.0.0.1:9401,…:9402,…:9403,…:9404 | services' ops base URLs, comma list, NAME=URL allowed (--ops) |
//	| VIGIL_CTL_PROMETHEUS           | (none: live scrape)                       | Prometheus base URL for `kpi` (--prometheus)                    |
//	| VIGIL_CTL_TIMEOUT              | 15s                                       | bound on each network step (--timeout)                          |
//	| VIGIL_CTL_BIN_DIR              | (none)                                    | where to look first for the ingest/correlate binaries          |

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/service"
	"github.com/vigilsec/vigil/pkg/stream"
)

// defaultOps are the ops endpoints of the four services on one host, in pipeline order.
var defaultOps = []string{
	"ingest=http://127.0.0.1:9401",
	"enrich=http://127.0.0.1:9402",
	"correlate=http://127.0.0.1:9403",
	"sink=http://127.0.0.1:9404",
}

// defaultGroups are the consumer groups of the four services.
var defaultGroups = []string{"vigil-ingest", "vigil-enrich", "vigil-correlate", "vigil-sink"}

// OpsTarget is one service's ops server.
type OpsTarget struct {
	Name string // service name; derived from the URL when not given
	URL  string // base URL without trailing slash
}

// Config is everything vigilctl reads from the environment and its global flags.
type Config struct {
	Kafka      stream.KafkaConfig
	Redis      service.RedisConfig
	Ops        []OpsTarget
	Prometheus string
	Timeout    time.Duration
	BinDir     string
	JSON       bool
}

// loadEnv reads the environment into a Config with defaults. Global flags are applied on top by
// bindGlobal; Validate then checks the result.
func loadEnv(lookup envconf.Lookup) (Config, error) {
	e := envconf.New(lookup)
	c := Config{
		Kafka: stream.LoadKafka(e, "vigilctl"),
		Redis: service.RedisConfig{
			Addr:       e.String("VIGIL_REDIS_ADDR", "127.0.0.1:6379"),
			Username:   e.String("VIGIL_REDIS_USERNAME", ""),
			Password:   e.Secret("VIGIL_REDIS_PASSWORD"),
			DB:         e.Int("VIGIL_REDIS_DB", 0),
			TLS:        e.Bool("VIGIL_REDIS_TLS", false),
			TLSCAFile:  e.String("VIGIL_REDIS_TLS_CA_FILE", ""),
			PoolSize:   4,
			MaxRetries: 1,
		},
		Prometheus: e.String("VIGIL_CTL_PROMETHEUS", ""),
		Timeout:    e.Duration("VIGIL_CTL_TIMEOUT", 15*time.Second),
		BinDir:     e.String("VIGIL_CTL_BIN_DIR", ""),
	}
	ops, err := parseOps(e.List("VIGIL_CTL_OPS", defaultOps))
	if err != nil {
		e.Fail("VIGIL_CTL_OPS", "", err.Error())
	}
	c.Ops = ops
	if c.Timeout == 0 {
		e.Fail("VIGIL_CTL_TIMEOUT", "0", "must be positive")
	}
	return c, e.Err()
}

// Validate checks the configuration after flags were applied.
func (c Config) Validate() error {
	var errs []error
	if len(c.Kafka.Brokers) == 0 {
		errs = append(errs, errors.New("--brokers: at least one broker is required"))
	}
	if c.Kafka.DLQTopic == "" {
		errs = append(errs, errors.New("--dlq-topic: must not be empty"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("--timeout: must be positive"))
	}
	if c.Prometheus != "" {
		if _, err := checkURL(c.Prometheus); err != nil {
			errs = append(errs, fmt.Errorf("--prometheus: %w", err))
		}
	}
	return errors.Join(errs...)
}

// bindGlobal registers the global flags on fs, writing into c. Every subcommand binds them too, so
// `vigilctl --json dlq list` and `vigilctl dlq list --json` both work.
func bindGlobal(fs *flag.FlagSet, c *Config) {
	fs.Func("brokers", "Kafka seed brokers, comma list (env VIGIL_KAFKA_BROKERS; default 127.0.0.1:19092)", func(s string) error {
		c.Kafka.Brokers = splitList(s)
		if len(c.Kafka.Brokers) == 0 {
			return errors.New("empty broker list")
		}
		return nil
	})
	fs.StringVar(&c.Redis.Addr, "redis", c.Redis.Addr, "Redis address of the enrichment cache (env VIGIL_REDIS_ADDR)")
	fs.Func("ops", "services' ops base URLs, comma list, NAME=URL allowed (env VIGIL_CTL_OPS; default ports 9401-9404)", func(s string) error {
		ops, err := parseOps(splitList(s))
		if err != nil {
			return err
		}
		c.Ops = ops
		return nil
	})
	fs.StringVar(&c.Kafka.DLQTopic, "dlq-topic", c.Kafka.DLQTopic, "dead-letter topic (env VIGIL_TOPIC_DLQ)")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "bound on each network step (env VIGIL_CTL_TIMEOUT)")
	fs.BoolVar(&c.JSON, "json", c.JSON, "print JSON instead of tables")
}

// parseOps turns "NAME=URL" or "URL" items into targets. Without a name, a default port 940N maps
// to its service and anything else is named by host:port.
func parseOps(items []string) ([]OpsTarget, error) {
	known := map[string]string{"9401": "ingest", "9402": "enrich", "9403": "correlate", "9404": "sink"}
	out := make([]OpsTarget, 0, len(items))
	for _, it := range items {
		name, raw, hasName := strings.Cut(it, "=")
		if !hasName {
			raw, name = it, ""
		}
		u, err := checkURL(raw)
		if err != nil {
			return nil, fmt.Errorf("ops %q: %w", it, err)
		}
		if name == "" {
			name = u.Host
			if n, ok := known[u.Port()]; ok {
				name = n
			}
		}
		out = append(out, OpsTarget{Name: name, URL: strings.TrimRight(raw, "/")})
	}
	if len(out) == 0 {
		return nil, errors.New("no ops URL")
	}
	return out, nil
}

func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", raw)
	}
	return u, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
