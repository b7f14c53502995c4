package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

type dashboard struct {
	Title  string  `json:"title"`
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int      `json:"id"`
	Type    string   `json:"type"`
	Title   string   `json:"title"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // collapsed rows
}

type target struct {
	RefID string `json:"refId"`
	Expr  string `json:"expr"`
}

// checkDashboard parses the dashboard JSON and every query in it.
func checkDashboard(path string, out io.Writer) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read dashboard: %w", err)
	}
	n, err := validateDashboard(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Fprintf(out, "dashboard %s: %d queries parse as PromQL and use known vigil_ metrics\n", path, n)
	return nil
}

// validateDashboard returns the number of queries checked.
func validateDashboard(b []byte) (int, error) {
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return 0, fmt.Errorf("parse JSON: %w", err)
	}
	var probs problems
	if d.Title == "" || d.UID == "" {
		probs.addf("dashboard needs a title and a uid")
	}
	p := newPromQLParser()
	queries := 0
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, pn := range ps {
			if ids[pn.ID] {
				probs.addf("panel id %d used twice", pn.ID)
			}
			ids[pn.ID] = true
			walk(pn.Panels)
			if pn.Type == "row" {
				continue
			}
			if len(pn.Targets) == 0 {
				probs.addf("panel %q has no query", pn.Title)
			}
			for _, t := range pn.Targets {
				queries++
				names, err := metricNames(p, t.Expr)
				if err != nil {
					probs.addf("panel %q %s: %v", pn.Title, t.RefID, err)
					continue
				}
				vigil := 0
				for _, n := range names {
					if !strings.HasPrefix(n, "vigil_") {
						continue
					}
					vigil++
					if !knownMetric(n) {
						probs.addf("panel %q %s: unknown metric %s", pn.Title, t.RefID, n)
					}
				}
				if vigil == 0 {
					probs.addf("panel %q %s: query uses no vigil_ metric: %s", pn.Title, t.RefID, t.Expr)
				}
			}
		}
	}
	walk(d.Panels)
	if queries == 0 {
		probs.addf("dashboard has no queries")
	}
	return queries, probs.err("dashboard")
}
