package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// tqDump is the part of the ThreatQ emulator's GET /_emulator/dump that vigil-run reads.
type tqDump struct {
	Indicators []tqIndicator `json:"indicators"`
}

type tqIndicator struct {
	ID          int           `json:"id"`
	Value       string        `json:"value"`
	Type        string        `json:"type"`
	Status      string        `json:"status"`
	Description string        `json:"description"`
	Score       int           `json:"score"`
	ManualScore *int          `json:"manual_score"`
	Attributes  []tqAttribute `json:"attributes"`
	Sources     []tqSource    `json:"sources"`
	Tags        []string      `json:"tags"`
	Comments    []string      `json:"comments"`
}

type tqAttribute struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type tqSource struct {
	Name string `json:"name"`
	TLP  string `json:"tlp,omitempty"`
}

// tqStats is GET /_emulator/stats.
type tqStats struct {
	Created    int `json:"created"`
	Updated    int `json:"updated"`
	Writes     int `json:"writes"`
	Indicators int `json:"indicators"`
}

// getJSON fetches url, decodes it into v and returns the raw body.
func getJSON(ctx context.Context, hc *http.Client, url string, v any) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: status %d", url, resp.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", url, err)
	}
	return body, nil
}
