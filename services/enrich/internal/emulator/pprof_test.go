package emulator_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPprofRoutes: the emulator serves its own profiles, and the pprof routes do not shadow InternetDB's
// GET /{ip}.
func TestPprofRoutes(t *testing.T) {
	t.Parallel()
	_, base := startEmulator(t)
	for path, want := range map[string]string{
		"/debug/pprof/goroutine?debug=1": "goroutine profile",
		"/debug/pprof/":                  "Types of profiles available",
		"/45.33.37.1":                    `"ip":"45.33.37.1"`,
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %d %v, body without %q: %.200s", path, resp.StatusCode, err, want, body)
		}
	}
}
