package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// providerEnvNames are the HTTP providers of the enrich service.
var providerEnvNames = []string{"CRIMINALIP", "INTERNETDB", "ABUSEIPDB", "GREYNOISE"}

// startEmulators starts the provider and ThreatQ emulators on free loopback ports.
func (b *bench) startEmulators(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := startProc("provider-emulator", filepath.Join(b.cfg.BinDir, "provider-emulator"), []string{"-addr", addr, "-key", "dev-key"}, nil, b.logDir, addr)
	if err != nil {
		return err
	}
	b.procs = append(b.procs, p)
	if err := p.waitHTTP(ctx, "/_emulator/stats", 30*time.Second); err != nil {
		return err
	}
	b.provEmu = p
	addr, err = freeAddr()
	if err != nil {
		return err
	}
	t, err := startProc("threatq-emulator", filepath.Join(b.cfg.BinDir, "threatq-emulator"), []string{"-addr", addr, "-seed", "1"}, nil, b.logDir, addr)
	if err != nil {
		return err
	}
	b.procs = append(b.procs, t)
	if err := t.waitHTTP(ctx, "/_emulator/stats", 30*time.Second); err != nil {
		return err
	}
	b.tqEmu = t
	return nil
}

// topics names one pipeline's topics.
type topics struct {
	Raw, Observed, Enriched, Verdicts, Feedback, DLQ string
}

func (b *bench) topicSet(tag string) topics {
	return topics{Raw: b.name(tag, "raw"), Observed: b.name(tag, "observed"), Enriched: b.name(tag, "enriched"),
		Verdicts: b.name(tag, "verdicts"), Feedback: b.name(tag, "feedback"), DLQ: b.name(tag, "dlq")}
}

func (t topics) all() []string {
	return []string{t.Raw, t.Observed, t.Enriched, t.Verdicts, t.Feedback, t.DLQ}
}

// svcOpts tune one service start.
type svcOpts struct {
	offlineOnly bool // enrich: no HTTP providers
}

// serviceEnv is the complete environment of one service process (nothing is inherited).
func (b *bench) serviceEnv(svc, group, opsAddr string, t topics, o svcOpts) []string {
	env := []string{
		"VIGIL_KAFKA_BROKERS=" + strings.Join(b.cfg.Brokers, ","),
		"VIGIL_KAFKA_PARTITIONS=" + strconv.Itoa(b.cfg.Partitions),
		"VIGIL_REDIS_ADDR=" + b.cfg.RedisAddr,
		"VIGIL_REDIS_DB=" + strconv.Itoa(b.cfg.RedisDB),
		"VIGIL_GROUP=" + group,
		"VIGIL_OPS_ADDR=" + opsAddr,
		"VIGIL_LOG_LEVEL=warn",
		"VIGIL_SHUTDOWN_TIMEOUT=10s",
		"VIGIL_TOPIC_OBSERVED=" + t.Observed,
		"VIGIL_TOPIC_ENRICHED=" + t.Enriched,
		"VIGIL_TOPIC_VERDICTS=" + t.Verdicts,
		"VIGIL_TOPIC_FEEDBACK=" + t.Feedback,
		"VIGIL_TOPIC_DLQ=" + t.DLQ,
	}
	switch svc {
	case "ingest":
		env = append(env, "VIGIL_INGEST_TOPICS="+t.Raw)
	case "enrich":
		base := "http://" + b.provEmu.opsAddr
		for _, p := range providerEnvNames {
			pre := "VIGIL_ENRICH_" + p + "_"
			if o.offlineOnly {
				env = append(env, pre+"ENABLED=false")
				continue
			}
			env = append(env, pre+"ENABLED=true", pre+"BASE_URL="+base, pre+"API_KEY=dev-key",
				pre+"RATE=0", pre+"QUOTAS=none", pre+"MAX_CONCURRENT=8")
		}
	case "sink":
		env = append(env, "VIGIL_THREATQ_URL=http://"+b.tqEmu.opsAddr, "VIGIL_THREATQ_ALLOW_INSECURE_HTTP=true",
			"VIGIL_THREATQ_CLIENT_ID=vigil-dev", "VIGIL_THREATQ_EMAIL=analyst@vigil.local", "VIGIL_THREATQ_PASSWORD=vigil-dev")
	}
	return append(env, b.cfg.Set[svc]...)
}

// startService starts one service binary with its own ops port and group.
func (b *bench) startService(svc, group string, t topics, o svcOpts) (*proc, error) {
	ops, err := freeAddr()
	if err != nil {
		return nil, err
	}
	b.nproc++
	p, err := startProc(fmt.Sprintf("%02d-%s", b.nproc, strings.TrimPrefix(group, b.name("g")+".")), filepath.Join(b.cfg.BinDir, svc),
		nil, b.serviceEnv(svc, group, ops, t, o), b.logDir, ops)
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, p)
	return p, nil
}

// stopProc stops p and forgets it.
func (b *bench) stopProc(p *proc) error {
	err := p.stop(20 * time.Second)
	for i, q := range b.procs {
		if q == p {
			b.procs = append(b.procs[:i], b.procs[i+1:]...)
			break
		}
	}
	return err
}

// getJSON fetches a control endpoint into v.
func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", url, err)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", url, err)
	}
	return nil
}

// getBody fetches url.
func getBody(ctx context.Context, url string, timeout time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", url, err)
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: status %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	return body, nil
}

// post sends an empty POST to a control endpoint.
func post(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", url, err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// providerStats is the provider emulator's /_emulator/stats body.
type providerStats struct {
	Routes map[string]struct {
		Calls       int64            `json:"calls"`
		ByIndicator map[string]int64 `json:"by_indicator"`
	} `json:"routes"`
}

// threatqStats is the ThreatQ emulator's /_emulator/stats body.
type threatqStats struct {
	Calls     map[string]int `json:"calls"`
	Responses map[string]int `json:"responses"`
	Created   int            `json:"created"`
	Updated   int            `json:"updated"`
	Writes    int            `json:"writes"`
	// AttributesDeleted: attribute values deleted by name (emulator-only counter)
	AttributesDeleted map[string]int `json:"attributes_deleted"`
}

func (s threatqStats) total() int {
	n := 0
	for _, c := range s.Calls {
		n += c
	}
	return n
}

// tqDelta returns per-route call differences and the total.
// mapDelta is after - before per key, without the keys that did not change.
func mapDelta(before, after map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range after {
		if x := v - before[k]; x != 0 {
			d[k] = x
		}
	}
	return d
}

func tqDelta(before, after threatqStats) (map[string]int, int) {
	d := mapDelta(before.Calls, after.Calls)
	total := 0
	for _, x := range d {
		total += x
	}
	return d, total
}
