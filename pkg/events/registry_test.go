package events

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
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

// TestRegistryFastPath: with a registry, Encode* writes 0 + id + the same Avro body goavro
// writes; a reader that looks the current schema up by id decodes it with the direct decoder,
// and a record written with another registered schema goes through goavro.
func TestRegistryFastPath(t *testing.T) {
	t.Parallel()
	fr := &fakeRegistry{ids: map[string]int{}, texts: map[int]string{}}
	srv := httptest.NewServer(fr)
	defer srv.Close()
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	writer := newSerde(t)
	if err := writer.UseRegistry(t.Context(), cl); err != nil {
		t.Fatal(err)
	}
	reader := newSerde(t)
	reader.reg = cl
	g := newGen(42)
	for _, rec := range records {
		for range 50 {
			v := rec.gen(g)
			got := mustEncode(t, writer, rec, v)
			id := writer.ids[rec.name]
			want, err := writer.current[rec.name].BinaryFromNative(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), rec.native(v))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: registry framing differs\n got % x\nwant % x", rec.name, got, want)
			}
			dec, err := rec.decode(reader, got)
			if err != nil {
				t.Fatalf("%s: decode via registry: %v", rec.name, err)
			}
			ref, err := goavroDecode(writer, rec, append(make([]byte, 10), got[5:]...))
			if err != nil || !reflect.DeepEqual(dec, ref) {
				t.Fatalf("%s: registry decode differs from goavro (%v)\n got %#v\nwant %#v", rec.name, err, dec, ref)
			}
		}
		ws, err := reader.lookupID(t.Context(), writer.ids[rec.name])
		if err != nil || !ws.fast {
			t.Fatalf("%s: current schema fetched from the registry is not on the fast path (%v)", rec.name, err)
		}
	}

	// another writer schema registered under its own id: decoded by goavro with defaults
	old, err := os.ReadFile("testdata/observation.older.avsc")
	if err != nil {
		t.Fatal(err)
	}
	oldID, err := cl.RegisterSchema(t.Context(), "io.vigil.events.Observation", sr.Schema{Schema: string(old), Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := reader.lookupID(t.Context(), oldID)
	if err != nil || ws.fast {
		t.Fatalf("older schema: fast=%v err=%v, want goavro path", ws.fast, err)
	}
	native := map[string]any{
		"indicator": map[string]any{"type": "ipv4", "value": "192.0.2.9"}, "event_time": t0, "ingest_time": t0,
		"producer": map[string]any{"topic": "raw.x", "partition": int32(2), "offset": int64(3), "format": "cef"},
		"sighting": map[string]any{"direction": "inbound", "action": "allowed"},
	}
	b, err := ws.codec.BinaryFromNative(binary.BigEndian.AppendUint32([]byte{0}, uint32(oldID)), native)
	if err != nil {
		t.Fatal(err)
	}
	o, err := reader.DecodeObservation(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	if o.Indicator.Value != "192.0.2.9" || o.Sighting.Count != 1 || o.Producer.Partition != 2 || !o.EventTime.Equal(t0) {
		t.Fatalf("older record via registry: %+v", o)
	}
}
