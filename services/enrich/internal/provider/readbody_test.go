package provider

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestGetReadsBodies: bodies with and without Content-Length arrive whole, and a body over MaxBody is
// refused.
func TestGetReadsBodies(t *testing.T) {
	big := strings.Repeat("x", MaxBody+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `{"answer":"` + strings.Repeat("a", 3000) + `"}`
		switch r.URL.Path {
		case "/chunked":
			w.(http.Flusher).Flush() // no Content-Length: chunked
			_, _ = w.Write([]byte(body))
		case "/big":
			w.Header().Set("Content-Length", "4194305")
			_, _ = w.Write([]byte(big))
		default:
			_, _ = w.Write([]byte(body))
		}
	}))
	t.Cleanup(srv.Close)
	base, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := srv.Client()
	want := []byte(`{"answer":"` + strings.Repeat("a", 3000) + `"}`)
	for _, path := range []string{"/length", "/chunked", "/length"} {
		resp, err := Get(t.Context(), client, time.Second, base, path, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !bytes.Equal(resp.Body, want) {
			t.Fatalf("%s: got %d bytes, want %d", path, len(resp.Body), len(want))
		}
	}
	if _, err := Get(t.Context(), client, time.Second, base, "/big", nil, nil); err == nil {
		t.Fatal("body over MaxBody accepted")
	}
}
