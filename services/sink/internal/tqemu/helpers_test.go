package tqemu_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t     *testing.T
	emu   *tqemu.Server
	url   string
	clock *clock
	token string
}

func newFixture(t *testing.T, opts tqemu.Options) *fixture {
	t.Helper()
	c := &clock{now: time.Date(2026, 9, 16, 10, 0, 0, 0, time.UTC)}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	if opts.Seed == 0 {
		opts.Seed = 42
	}
	emu := tqemu.New(opts)
	ts := httptest.NewServer(emu)
	t.Cleanup(ts.Close)
	return &fixture{t: t, emu: emu, url: ts.URL, clock: c, token: emu.IssueToken()}
}

type resp struct {
	code int
	hdr  http.Header
	body []byte
}

// json decodes the body into a generic value.
func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return m
}

// call sends a request with the fixture's bearer token. body may be nil, a
// string/[]byte (sent raw) or any value (JSON-encoded).
func (f *fixture) call(method, path string, body any) resp {
	f.t.Helper()
	return f.callAuth(method, path, body, "Bearer "+f.token)
}

func (f *fixture) callAuth(method, path string, body any, auth string) resp {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp{code: res.StatusCode, hdr: res.Header, body: b}
}

func (f *fixture) mustCall(method, path string, body any, wantCode int) map[string]any {
	f.t.Helper()
	r := f.call(method, path, body)
	if r.code != wantCode {
		f.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.code, wantCode, r.body)
	}
	if wantCode == http.StatusNoContent {
		if len(r.body) != 0 {
			f.t.Fatalf("%s %s: 204 with body %s", method, path, r.body)
		}
		return nil
	}
	return r.json(f.t)
}

// fixtureFile reads testdata/tqemu/name, replacing "{{Name}}" with the id
// of that type or status.
func (f *fixture) fixtureFile(name string) string {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "tqemu", name))
	if err != nil {
		f.t.Fatal(err)
	}
	s := string(b)
	for strings.Contains(s, "{{") {
		start := strings.Index(s, "{{")
		end := strings.Index(s[start:], "}}") + start
		key := s[start+2 : end]
		id, ok := f.emu.TypeID(key)
		if !ok {
			id, ok = f.emu.StatusID(key)
		}
		if !ok {
			f.t.Fatalf("fixture %s: unknown name %q", name, key)
		}
		s = s[:start] + strconv.Itoa(id) + s[end+2:]
	}
	return s
}

// dataList returns body["data"] as a list of objects.
func dataList(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	raw, ok := m["data"].([]any)
	if !ok {
		t.Fatalf("data is %T, want a list: %v", m["data"], m)
	}
	out := make([]map[string]any, 0, len(raw))
	for _, it := range raw {
		out = append(out, it.(map[string]any))
	}
	return out
}

// dataObj returns body["data"] as an object.
func dataObj(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	o, ok := m["data"].(map[string]any)
	if !ok {
		t.Fatalf("data is %T, want an object: %v", m["data"], m)
	}
	return o
}

// validationErrors returns the field→messages map of a 400 body.
func validationErrors(t *testing.T, r resp) map[string]any {
	t.Helper()
	if r.code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400; body %s", r.code, r.body)
	}
	errs, ok := dataObj(t, r.json(t))["errors"].(map[string]any)
	if !ok || len(errs) == 0 {
		t.Fatalf("no data.errors in %s", r.body)
	}
	return errs
}

func num(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case string:
		n, _ := strconv.Atoi(x)
		return n
	}
	return -1
}
