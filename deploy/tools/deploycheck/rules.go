package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
)

// checkRules validates a Prometheus rule file with Prometheus' own parser, then Vigil's
// conventions: every alert waits (for), has a severity and a summary, and uses known metrics.
func checkRules(path string, out io.Writer) error {
	p := newPromQLParser()
	rgs, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	var probs problems
	for _, e := range errs {
		probs.addf("%v", e)
	}
	if rgs == nil {
		return probs.err("rules " + path)
	}
	alerts := 0
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if time.Duration(r.For) <= 0 {
				probs.addf("%s/%s: alert without a for: duration", g.Name, r.Alert)
			}
			switch r.Labels["severity"] {
			case "warning", "critical":
			default:
				probs.addf("%s/%s: severity label must be warning or critical", g.Name, r.Alert)
			}
			if strings.TrimSpace(r.Annotations["summary"]) == "" {
				probs.addf("%s/%s: summary annotation missing", g.Name, r.Alert)
			}
			names, err := metricNames(p, r.Expr)
			if err != nil {
				probs.addf("%s/%s: %v", g.Name, r.Alert, err)
				continue
			}
			for _, n := range names {
				if strings.HasPrefix(n, "vigil_") && !knownMetric(n) {
					probs.addf("%s/%s: unknown metric %s", g.Name, r.Alert, n)
				}
			}
		}
	}
	if alerts == 0 {
		probs.addf("no alerting rules")
	}
	if err := probs.err("rules " + path); err != nil {
		return err
	}
	fmt.Fprintf(out, "rules %s: %d groups, %d alerts valid (Prometheus rulefmt + PromQL parser)\n", path, len(rgs.Groups), alerts)
	return nil
}
