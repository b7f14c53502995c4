package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
)

// ErrUnhealthy is returned by `status` after printing when Kafka could not be asked, a group could
// not be described, or a service is unreachable or not ready.
var ErrUnhealthy = errors.New("pipeline unhealthy")

// statusReport is everything `status` shows.
type statusReport struct {
	KafkaError string          `json:"kafka_error,omitempty"`
	Groups     []groupStatus   `json:"groups"`
	Services   []serviceStatus `json:"services"`
	Breakers   []breakerState  `json:"breakers"`
	Cache      []cacheRatio    `json:"cache"`
	Quotas     []quota         `json:"quotas"`
}

type groupStatus struct {
	Group      string         `json:"group"`
	State      string         `json:"state"`
	Protocol   string         `json:"protocol,omitempty"`
	Members    []memberInfo   `json:"members"`
	Lag        int64          `json:"lag"`
	Partitions []partitionLag `json:"partitions"`
	Error      string         `json:"error,omitempty"`
}

type memberInfo struct {
	MemberID string `json:"member_id"`
	ClientID string `json:"client_id"`
	Host     string `json:"host"`
	Assigned string `json:"assigned"` // "topic:0,1,2 topic2:3"
}

type partitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"` // -1 when unknown
	Member    string `json:"member,omitempty"`
	Error     string `json:"error,omitempty"`
}

type serviceStatus struct {
	Name   string            `json:"name"`
	URL    string            `json:"url"`
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks,omitempty"`
	Error  string            `json:"error,omitempty"`
}

type breakerState struct {
	Service string  `json:"service"`
	Breaker string  `json:"breaker"` // labels of the series
	State   string  `json:"state"`
	Value   float64 `json:"value"`
}

type cacheRatio struct {
	Service  string             `json:"service"`
	Provider string             `json:"provider"`
	Counts   map[string]float64 `json:"counts"`
	HitRatio float64            `json:"hit_ratio"` // -1 without lookups
}

type quota struct {
	Service   string  `json:"service"`
	Series    string  `json:"series"`
	Remaining float64 `json:"remaining"`
}

// Metric names status reads from the ops endpoints.
const (
	metricEnrichBreaker = "vigil_enrich_breaker_state"
	metricEnrichCache   = "vigil_enrich_cache_total"
	metricEnrichQuota   = "vigil_enrich_quota_remaining"
	metricSinkBreaker   = "vigil_sink_breaker_state"
)

func (a *app) cmdStatus(ctx context.Context, args []string) error {
	fs := a.flagSet("status", "vigilctl status [--group G,…] [--all-groups] [--partitions=false]",
		"Shows, per consumer group, its state, members and lag per topic/partition; then each service's\n"+
			"/readyz and, from its /metrics, circuit-breaker states, cache hit ratio per provider and\n"+
			"provider quotas. Exits 1 when Kafka, a group or a service is unreachable or not ready.\n")
	groups := fs.String("group", strings.Join(defaultGroups, ","), "consumer groups to show, comma list")
	all := fs.Bool("all-groups", false, "show every consumer group the cluster has")
	parts := fs.Bool("partitions", true, "show lag per topic/partition (false: per group only)")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	var names []string
	if !*all {
		names = splitList(*groups)
	}
	rep := statusReport{Groups: []groupStatus{}, Breakers: []breakerState{}, Cache: []cacheRatio{}, Quotas: []quota{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		gs, err := a.groupLag(ctx, names)
		if err != nil {
			rep.KafkaError = err.Error()
			return
		}
		rep.Groups = gs
	})
	svcs := make([]serviceStatus, len(a.cfg.Ops))
	fams := make([]families, len(a.cfg.Ops))
	for i, t := range a.cfg.Ops {
		wg.Go(func() { svcs[i], fams[i] = a.probe(ctx, t) })
	}
	wg.Wait()
	rep.Services = svcs
	for i, f := range fams {
		if f == nil {
			continue
		}
		b, c, q := opsMetrics(svcs[i].Name, f)
		rep.Breakers = append(rep.Breakers, b...)
		rep.Cache = append(rep.Cache, c...)
		rep.Quotas = append(rep.Quotas, q...)
	}
	if err := a.emit(rep, func(w io.Writer) error { return statusTables(w, rep, *parts) }); err != nil {
		return err
	}
	return rep.health()
}

// health says whether the report shows a problem.
func (r statusReport) health() error {
	var probs []string
	if r.KafkaError != "" {
		probs = append(probs, "kafka")
	}
	for _, g := range r.Groups {
		if g.Error != "" {
			probs = append(probs, "group "+g.Group)
		}
	}
	for _, s := range r.Services {
		if !s.Ready {
			probs = append(probs, s.Name)
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrUnhealthy, strings.Join(probs, ", "))
	}
	return nil
}

// groupLag describes groups (all when names is empty) with their lag.
func (a *app) groupLag(ctx context.Context, names []string) ([]groupStatus, error) {
	cl, err := a.kafkaClient()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	lags, err := kadm.NewClient(cl).Lag(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe groups: %w", err)
	}
	return groupStatuses(lags), nil
}

// groupStatuses turns kadm's lag view into the report rows, sorted by group, topic, partition.
func groupStatuses(lags kadm.DescribedGroupLags) []groupStatus {
	out := []groupStatus{}
	for _, l := range lags.Sorted() {
		g := groupStatus{Group: l.Group, State: l.State, Protocol: l.Protocol, Members: []memberInfo{}, Partitions: []partitionLag{}}
		if err := l.Error(); err != nil {
			g.Error = err.Error()
		}
		if l.State == "Dead" && len(l.Lag) == 0 && g.Error == "" {
			g.Error = "group does not exist"
		}
		for _, m := range l.Members {
			mi := memberInfo{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
			if c, ok := m.Assigned.AsConsumer(); ok {
				var parts []string
				for _, t := range c.Topics {
					ps := make([]string, len(t.Partitions))
					for i, p := range t.Partitions {
						ps[i] = strconv.Itoa(int(p))
					}
					parts = append(parts, t.Topic+":"+strings.Join(ps, ","))
				}
				sort.Strings(parts)
				mi.Assigned = strings.Join(parts, " ")
			}
			g.Members = append(g.Members, mi)
		}
		for _, pl := range l.Lag.Sorted() {
			p := partitionLag{Topic: pl.Topic, Partition: pl.Partition, Committed: pl.Commit.At, End: pl.End.Offset, Lag: pl.Lag}
			if pl.Member != nil {
				p.Member = pl.Member.ClientID
			}
			if pl.Err != nil {
				p.Error = pl.Err.Error()
			}
			if pl.Lag > 0 {
				g.Lag += pl.Lag
			}
			g.Partitions = append(g.Partitions, p)
		}
		out = append(out, g)
	}
	return out
}

// probe asks one service's /readyz and scrapes its /metrics (nil families when that fails).
func (a *app) probe(ctx context.Context, t OpsTarget) (serviceStatus, families) {
	s := serviceStatus{Name: t.Name, URL: t.URL}
	code, body, err := a.httpGet(ctx, t.URL+"/readyz", "application/json")
	if err != nil {
		s.Error = err.Error()
		return s, nil
	}
	s.Ready = code == http.StatusOK
	if json.Unmarshal(body, &s.Checks) != nil && !s.Ready {
		s.Error = fmt.Sprintf("HTTP %d: %s", code, truncate(string(body), 120))
	}
	if !s.Ready && s.Error == "" {
		s.Error = fmt.Sprintf("HTTP %d", code)
	}
	f, err := a.scrape(ctx, t.URL)
	if err != nil {
		s.Error = strings.TrimPrefix(s.Error+"; "+err.Error(), "; ")
		return s, nil
	}
	return s, f
}

// breakerName maps gobreaker's state numbers (StateClosed 0, StateHalfOpen 1, StateOpen 2).
func breakerName(v float64) string {
	switch v {
	case 0:
		return "closed"
	case 1:
		return "half-open"
	case 2:
		return "open"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// opsMetrics extracts breaker states, cache ratios and quotas from one service's scrape.
func opsMetrics(svc string, f families) ([]breakerState, []cacheRatio, []quota) {
	var bs []breakerState
	for _, name := range []string{metricEnrichBreaker, metricSinkBreaker} {
		for _, s := range f.samples(name) {
			bs = append(bs, breakerState{Service: svc, Breaker: labelString(s.Labels, "state"), State: breakerName(s.Value), Value: s.Value})
		}
	}
	var cs []cacheRatio
	byProvider := map[string]map[string]float64{}
	for _, s := range f.samples(metricEnrichCache) {
		p := s.Labels["provider"]
		if byProvider[p] == nil {
			byProvider[p] = map[string]float64{}
		}
		byProvider[p][cacheOutcome(s.Labels)] += s.Value
	}
	for _, p := range sortedKeys(byProvider) {
		counts := byProvider[p]
		cs = append(cs, cacheRatio{Service: svc, Provider: dash(p), Counts: counts, HitRatio: hitRatio(counts)})
	}
	var qs []quota
	for _, s := range f.samples(metricEnrichQuota) {
		qs = append(qs, quota{Service: svc, Series: labelString(s.Labels), Remaining: s.Value})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Breaker < bs[j].Breaker })
	sort.Slice(qs, func(i, j int) bool { return qs[i].Series < qs[j].Series })
	return bs, cs, qs
}

// cacheOutcome is the value of the first outcome-like label of a cache series.
func cacheOutcome(ls map[string]string) string {
	for _, k := range []string{"result", "outcome", "status"} {
		if v, ok := ls[k]; ok {
			return v
		}
	}
	return "unknown"
}

// hitRatio is served-from-cache lookups (outcomes "hit…" and "negative", a cached not-found) over
// all lookups; -1 without lookups.
func hitRatio(counts map[string]float64) float64 {
	var hits, total float64
	for k, v := range counts {
		total += v
		if strings.HasPrefix(k, "hit") || k == "negative" {
			hits += v
		}
	}
	if total == 0 {
		return -1
	}
	return hits / total
}

func statusTables(w io.Writer, r statusReport, partitions bool) error {
	if r.KafkaError != "" {
		fmt.Fprintf(w, "Kafka: %s\n\n", r.KafkaError)
	}
	if len(r.Groups) > 0 {
		rows := make([][]string, 0, len(r.Groups))
		for _, g := range r.Groups {
			rows = append(rows, []string{g.Group, dash(g.State), strconv.Itoa(len(g.Members)), strconv.FormatInt(g.Lag, 10), dash(g.Error)})
		}
		if err := writeTable(w, []string{"GROUP", "STATE", "MEMBERS", "LAG", "ERROR"}, rows); err != nil {
			return err
		}
		var mrows, prows [][]string
		for _, g := range r.Groups {
			for _, m := range g.Members {
				mrows = append(mrows, []string{g.Group, m.ClientID, m.Host, dash(m.Assigned)})
			}
			for _, p := range g.Partitions {
				lag := strconv.FormatInt(p.Lag, 10)
				if p.Lag < 0 {
					lag = "?"
				}
				prows = append(prows, []string{g.Group, p.Topic, strconv.Itoa(int(p.Partition)),
					strconv.FormatInt(p.Committed, 10), strconv.FormatInt(p.End, 10), lag, dash(p.Member), dash(p.Error)})
			}
		}
		if len(mrows) > 0 {
			fmt.Fprintln(w)
			if err := writeTable(w, []string{"GROUP", "MEMBER", "HOST", "ASSIGNED"}, mrows); err != nil {
				return err
			}
		}
		if partitions && len(prows) > 0 {
			fmt.Fprintln(w)
			if err := writeTable(w, []string{"GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER", "ERROR"}, prows); err != nil {
				return err
			}
		}
		fmt.Fprintln(w)
	}
	srows := make([][]string, 0, len(r.Services))
	for _, s := range r.Services {
		ready := "ready"
		if !s.Ready {
			ready = "NOT READY"
		}
		checks := make([]string, 0, len(s.Checks))
		for _, k := range sortedKeys(s.Checks) {
			checks = append(checks, k+"="+truncate(s.Checks[k], 40))
		}
		srows = append(srows, []string{s.Name, s.URL, ready, dash(strings.Join(checks, " ")), dash(truncate(s.Error, 80))})
	}
	if err := writeTable(w, []string{"SERVICE", "URL", "READY", "CHECKS", "ERROR"}, srows); err != nil {
		return err
	}
	if len(r.Breakers) > 0 {
		fmt.Fprintln(w)
		rows := make([][]string, 0, len(r.Breakers))
		for _, b := range r.Breakers {
			rows = append(rows, []string{b.Service, b.Breaker, b.State})
		}
		if err := writeTable(w, []string{"SERVICE", "BREAKER", "STATE"}, rows); err != nil {
			return err
		}
	}
	if len(r.Cache) > 0 {
		fmt.Fprintln(w)
		rows := make([][]string, 0, len(r.Cache))
		for _, c := range r.Cache {
			counts := make([]string, 0, len(c.Counts))
			for _, k := range sortedKeys(c.Counts) {
				counts = append(counts, fmt.Sprintf("%s=%.0f", k, c.Counts[k]))
			}
			ratio := "-"
			if c.HitRatio >= 0 {
				ratio = fmt.Sprintf("%.1f%%", 100*c.HitRatio)
			}
			rows = append(rows, []string{c.Provider, ratio, strings.Join(counts, " ")})
		}
		if err := writeTable(w, []string{"CACHE PROVIDER", "HIT RATIO", "LOOKUPS"}, rows); err != nil {
			return err
		}
	}
	if len(r.Quotas) > 0 {
		fmt.Fprintln(w)
		rows := make([][]string, 0, len(r.Quotas))
		for _, q := range r.Quotas {
			rows = append(rows, []string{q.Series, strconv.FormatFloat(q.Remaining, 'f', -1, 64)})
		}
		if err := writeTable(w, []string{"QUOTA", "REMAINING"}, rows); err != nil {
			return err
		}
	}
	return nil
}
