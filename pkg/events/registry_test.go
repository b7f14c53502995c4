package events

import (
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// fakeRegistry implements the two Schema Registry routes the serde uses.
type fakeRegistry struct {
	mu    sync.Mutex
	ids   map[string]int // schema text -> id
	texts map[int]string
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/subjects/") && strings.HasSuffix(r.URL.Path, "/versions"):
		var body struct {
			Schema string `json:"schema"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, ok := f.ids[body.Schema]
		if !ok {
			id = 100 + len(f.ids)
			f.ids[body.Schema] = id
			f.texts[id] = body.Schema
		}
		_ = json.NewEncoder(w).Encode(map[string]int{"id": id})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/schemas/ids/"):
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/schemas/ids/"))
		text, ok := f.texts[id]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error_code":40403,"message":"Schema not found"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"schema": text})
	default:
		http.NotFound(w, r)
	}
}

func TestConfluentFramingWithRegistry(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&fakeRegistry{ids: map[string]int{}, texts: map[int]string{}})
	defer srv.Close()
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	writer := newSerde(t)
	if err := writer.UseRegistry(t.Context(), cl); err != nil {
		t.Fatal(err)
	}
	v := sampleVerdict()
	b, err := writer.EncodeVerdict(&v)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || binary.BigEndian.Uint32(b[1:5]) < 100 {
		t.Fatalf("want Confluent framing with a registry id, got % x", b[:5])
	}
	// a reader that never registered anything looks the writer's schema up by id
	reader := newSerde(t)
	reader.reg = cl
	got, err := reader.DecodeVerdict(t.Context(), b)
	if err != nil {
		t.Fatalf("decode via registry: %v", err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("registry round trip mismatch")
	}
	// an id the registry does not know is a typed error
	bad := append([]byte{0, 0, 0, 0x7f, 0x7f}, b[5:]...)
	if _, err := reader.DecodeVerdict(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "unknown writer schema") {
		t.Fatalf("unknown id: got %v", err)
	}
}
