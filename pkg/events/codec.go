package events

import (
	"context"
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Schema names, one per record type.
const (
	SchemaObservation = "Observation"
	SchemaEnrichment  = "Enrichment"
	SchemaVerdict     = "Verdict"
	SchemaFeedback    = "Feedback"
	SchemaDeadLetter  = "DeadLetter"
)

//go:embed schemas/*.avsc schemas/history
var schemaFS embed.FS

// schemaFiles maps each record to its current .avsc file (generated from ../../schemas).
var schemaFiles = map[string]string{
	SchemaObservation: "schemas/observation.avsc",
	SchemaEnrichment:  "schemas/enrichment.avsc",
	SchemaVerdict:     "schemas/verdict.avsc",
	SchemaFeedback:    "schemas/feedback.avsc",
	SchemaDeadLetter:  "schemas/deadletter.avsc",
}

// ErrUnknownSchema means the writer's schema (fingerprint or registry id) is not known to this reader.
var ErrUnknownSchema = errors.New("unknown writer schema")

// ErrCorrupt means the bytes are not a valid encoding of a known record.
var ErrCorrupt = errors.New("corrupt record")

// ErrWrongRecord means the bytes hold another record type than the one asked for.
var ErrWrongRecord = errors.New("wrong record type")

// DecodeError is returned for input that cannot be decoded. It wraps ErrUnknownSchema,
// ErrCorrupt or ErrWrongRecord; the stage runtime dead-letters such records.
type DecodeError struct {
	Schema string // record asked for
	Err    error
	Detail string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode %s: %v: %s", e.Schema, e.Err, e.Detail)
}

// Unwrap returns the kind.
func (e *DecodeError) Unwrap() error { return e.Err }

type writerSchema struct {
	name   string
	codec  *goavro.Codec
	source string // schema text as loaded
	fast   bool   // same canonical schema as the current one: decoded by the direct decoder (fast.go)
}

// Serde encodes and decodes Vigil's records. Without a registry it writes Avro Single Object
// Encoding (C3 01 + Rabin fingerprint); with one it writes Confluent framing (0 + schema id).
// Readers always decode with the writer's schema, looked up by fingerprint or id.
// A Serde is safe for concurrent use.
type Serde struct {
	current map[string]*goavro.Codec // name -> current writer codec
	byFP    map[uint64]writerSchema  // every known schema (current and history) by fingerprint

	reg  *sr.Client
	ids  map[string]int // name -> registered id of the current schema
	mu   sync.RWMutex
	byID map[int]writerSchema
}

// NewSerde compiles the embedded schemas (current and every released version in schemas/history).
func NewSerde() (*Serde, error) {
	s := &Serde{
		current: make(map[string]*goavro.Codec),
		byFP:    make(map[uint64]writerSchema),
		byID:    make(map[int]writerSchema),
		ids:     make(map[string]int),
	}
	for name := range schemaFiles {
		c, err := compile(name)
		if err != nil {
			return nil, err
		}
		if fp := directFingerprints[name]; c.Rabin != fp {
			return nil, fmt.Errorf("schema %s has fingerprint %016x, the direct codec (fast.go) implements %016x: update fast.go", name, c.Rabin, fp)
		}
		s.current[name] = c
		s.byFP[c.Rabin] = writerSchema{name: name, codec: c, fast: true}
	}
	hist, err := schemaFS.ReadDir("schemas/history")
	if err != nil {
		return nil, fmt.Errorf("read schema history: %w", err)
	}
	for _, e := range hist {
		// history files are named <name>.v<N>.avsc and are self-contained
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".avsc") {
			continue
		}
		raw, err := schemaFS.ReadFile("schemas/history/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.Name(), err)
		}
		if err := s.addHistory(e.Name(), raw); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// addHistory makes an older (released) writer schema known to the reader.
func (s *Serde) addHistory(file string, raw []byte) error {
	c, err := goavro.NewCodec(string(raw))
	if err != nil {
		return fmt.Errorf("compile %s: %w", file, err)
	}
	if _, ok := s.byFP[c.Rabin]; !ok {
		name := recordName(raw)
		s.byFP[c.Rabin] = writerSchema{name: name, codec: c, source: string(raw), fast: s.isCurrent(name, c)}
	}
	return nil
}

// UseRegistry registers the current schemas in a Confluent-compatible Schema Registry under
// the record-name subject strategy ("io.vigil.events.<Record>") and switches encoding to
// Confluent framing (magic 0 + 4-byte schema id). Reading looks unknown ids up in the registry.
func (s *Serde) UseRegistry(ctx context.Context, cl *sr.Client) error {
	for name, c := range s.current {
		subject := "io.vigil.events." + name
		id, err := cl.RegisterSchema(ctx, subject, sr.Schema{Schema: c.Schema(), Type: sr.TypeAvro}, -1, -1)
		if err != nil {
			return fmt.Errorf("register %s: %w", subject, err)
		}
		s.mu.Lock()
		s.ids[name] = id
		s.byID[id] = writerSchema{name: name, codec: c, fast: true}
		s.mu.Unlock()
	}
	s.reg = cl
	return nil
}

// Schema returns the current schema text of a record (self-contained, named types inlined).
func (s *Serde) Schema(name string) (string, bool) {
	c, ok := s.current[name]
	if !ok {
		return "", false
	}
	return c.Schema(), true
}

// Fingerprint returns the Rabin fingerprint of the current schema of a record.
func (s *Serde) Fingerprint(name string) uint64 { return s.current[name].Rabin }

// isCurrent reports whether c is the current schema of the record name (same canonical form,
// hence the same binary layout), so that the direct decoder can read its records.
func (s *Serde) isCurrent(name string, c *goavro.Codec) bool {
	cur, ok := s.current[name]
	return ok && cur.Rabin == c.Rabin
}

// header appends the framing of a record of the current schema name: Confluent (0 + schema id)
// when a registry is in use and the schema is registered, else Single Object Encoding
// (C3 01 + little-endian Rabin fingerprint).
func (s *Serde) header(b []byte, name string) []byte {
	if s.reg != nil {
		s.mu.RLock()
		id, ok := s.ids[name]
		s.mu.RUnlock()
		if ok {
			b = append(b, 0)
			return binary.BigEndian.AppendUint32(b, uint32(id))
		}
	}
	b = append(b, 0xC3, 0x01)
	return binary.LittleEndian.AppendUint64(b, s.current[name].Rabin)
}

// writerOf reads the framing of b, finds the writer's schema and checks that it is a want record.
// It returns the schema and the Avro body.
func (s *Serde) writerOf(ctx context.Context, want string, b []byte) (writerSchema, []byte, error) {
	var ws writerSchema
	var body []byte
	switch {
	case len(b) >= 10 && b[0] == 0xC3 && b[1] == 0x01:
		fp := binary.LittleEndian.Uint64(b[2:10])
		var ok bool
		ws, ok = s.byFP[fp]
		if !ok {
			return ws, nil, &DecodeError{Schema: want, Err: ErrUnknownSchema, Detail: fmt.Sprintf("fingerprint %016x", fp)}
		}
		body = b[10:]
	case len(b) >= 5 && b[0] == 0:
		id := int(binary.BigEndian.Uint32(b[1:5]))
		var err error
		ws, err = s.lookupID(ctx, id)
		if err != nil {
			return ws, nil, err
		}
		body = b[5:]
	default:
		n := min(len(b), 8)
		return ws, nil, &DecodeError{Schema: want, Err: ErrCorrupt, Detail: fmt.Sprintf("no Avro framing (first bytes %x)", b[:n])}
	}
	if ws.name != want {
		return ws, nil, &DecodeError{Schema: want, Err: ErrWrongRecord, Detail: "record is " + ws.name}
	}
	return ws, body, nil
}

// native decodes body with the writer's goavro codec (older writer schemas) into the native datum.
func native(ws writerSchema, want string, body []byte) (map[string]any, error) {
	datum, rest, err := ws.codec.NativeFromBinary(body)
	if err != nil {
		return nil, &DecodeError{Schema: want, Err: ErrCorrupt, Detail: err.Error()}
	}
	if len(rest) != 0 {
		return nil, &DecodeError{Schema: want, Err: ErrCorrupt, Detail: fmt.Sprintf("%d trailing bytes", len(rest))}
	}
	m, ok := datum.(map[string]any)
	if !ok {
		return nil, &DecodeError{Schema: want, Err: ErrCorrupt, Detail: "not a record"}
	}
	return m, nil
}

func (s *Serde) lookupID(ctx context.Context, id int) (writerSchema, error) {
	s.mu.RLock()
	ws, ok := s.byID[id]
	s.mu.RUnlock()
	if ok {
		return ws, nil
	}
	if s.reg == nil {
		return writerSchema{}, &DecodeError{Err: ErrUnknownSchema, Detail: fmt.Sprintf("schema id %d and no registry configured", id)}
	}
	sch, err := s.reg.SchemaByID(ctx, id)
	if err != nil {
		return writerSchema{}, &DecodeError{Err: ErrUnknownSchema, Detail: fmt.Sprintf("schema id %d: %v", id, err)}
	}
	c, err := goavro.NewCodec(sch.Schema)
	if err != nil {
		return writerSchema{}, &DecodeError{Err: ErrUnknownSchema, Detail: fmt.Sprintf("schema id %d: %v", id, err)}
	}
	name := recordName([]byte(sch.Schema))
	ws = writerSchema{name: name, codec: c, fast: s.isCurrent(name, c)}
	s.mu.Lock()
	s.byID[id] = ws
	s.mu.Unlock()
	return ws, nil
}

// compile loads a current schema and inlines the named types it references from other files
// (Enrichment uses Observation, Verdict uses Indicator), so that each compiled schema stands alone.
func compile(name string) (*goavro.Codec, error) {
	text, err := resolved(name)
	if err != nil {
		return nil, err
	}
	c, err := goavro.NewCodec(text)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", name, err)
	}
	return c, nil
}

// resolved returns the schema JSON of name with references to other files' records inlined.
func resolved(name string) (string, error) {
	defs := map[string]any{} // full name -> definition, from every current file
	docs := map[string]any{}
	for n, f := range schemaFiles {
		raw, err := schemaFS.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("read schema %s: %w", n, err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", fmt.Errorf("parse schema %s: %w", n, err)
		}
		docs[n] = v
		collectNamed(v, "", defs)
	}
	root := docs[name]
	seen := map[string]bool{}
	collectDefined(root, "", seen)
	out := inline(root, "", defs, seen)
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("marshal schema %s: %w", name, err)
	}
	return string(b), nil
}

func fullName(m map[string]any, ns string) (string, string) {
	name, _ := m["name"].(string)
	if n, ok := m["namespace"].(string); ok {
		ns = n
	}
	if name == "" {
		return "", ns
	}
	if ns == "" {
		return name, ns
	}
	return ns + "." + name, ns
}

func collectNamed(v any, ns string, defs map[string]any) {
	switch t := v.(type) {
	case map[string]any:
		if typ, _ := t["type"].(string); typ == "record" || typ == "enum" || typ == "fixed" {
			fn, nns := fullName(t, ns)
			defs[fn] = t
			ns = nns
		}
		for _, c := range t {
			collectNamed(c, ns, defs)
		}
	case []any:
		for _, c := range t {
			collectNamed(c, ns, defs)
		}
	}
}

func collectDefined(v any, ns string, seen map[string]bool) {
	switch t := v.(type) {
	case map[string]any:
		if typ, _ := t["type"].(string); typ == "record" || typ == "enum" || typ == "fixed" {
			fn, nns := fullName(t, ns)
			seen[fn] = true
			ns = nns
		}
		for _, c := range t {
			collectDefined(c, ns, seen)
		}
	case []any:
		for _, c := range t {
			collectDefined(c, ns, seen)
		}
	}
}

// inline replaces a string type reference that is not defined in the document by its definition.
func inline(v any, ns string, defs map[string]any, seen map[string]bool) any {
	switch t := v.(type) {
	case string:
		fn := t
		if ns != "" && !containsDot(t) {
			fn = ns + "." + t
		}
		if d, ok := defs[fn]; ok && !seen[fn] {
			seen[fn] = true
			collectDefined(d, ns, seen)
			return inline(d, ns, defs, seen)
		}
		return t
	case map[string]any:
		if typ, _ := t["type"].(string); typ == "record" || typ == "enum" || typ == "fixed" {
			_, ns = fullName(t, ns)
		}
		out := make(map[string]any, len(t))
		for k, c := range t {
			if k == "type" || k == "items" || k == "values" || k == "fields" {
				out[k] = inline(c, ns, defs, seen)
			} else {
				out[k] = c
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, c := range t {
			out[i] = inline(c, ns, defs, seen)
		}
		return out
	}
	return v
}

func containsDot(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return true
		}
	}
	return false
}

// recordName returns the short record name of a schema's top-level record.
func recordName(raw []byte) string {
	var m struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(raw, &m)
	name := m.Name
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			return name[i+1:]
		}
	}
	return name
}
