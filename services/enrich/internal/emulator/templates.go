package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// The normal answers of the IP routes depend on the address only through the profile, the AS data and the
// address itself, so each is rendered once per template key with marker addresses and then served by
// splicing the real address in: no struct building or JSON encoding per request.

// ipMark stands for the address in a template; ipMarkDashed for the address with dots as dashes (host
// names). Both are plain ASCII, so JSON keeps them as they are.
const (
	ipMark       = "@IP.MARK@"
	ipMarkDashed = "@IP-MARK@"
)

// Constant answers, rendered once.
var (
	bodyInvalidIPCriminal   = mustJSON(map[string]any{"status": 400, "message": "Invalid IP Address."})
	bodyNotFoundCriminal    = mustJSON(map[string]any{"status": 404, "message": "no data"})
	bodyInvalidIPInternetDB = mustJSON(map[string]any{"detail": "Invalid IP"})
	bodyNotFoundInternetDB  = mustJSON(map[string]any{"detail": "No information available"})
)

// mustJSON renders v exactly as writeJSON does (json.Encoder: HTML escaping, trailing newline).
func mustJSON(v any) []byte {
	var b strings.Builder
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		return []byte("{}\n") // the answer types always encode
	}
	return []byte(b.String())
}

// tmplKey identifies one template: everything an answer depends on except the address.
type tmplKey struct {
	route string
	kind  Kind
	asn   int64
	cc    string
	v6    bool
}

// segment is a literal piece of a template followed by an address marker (none after the last piece).
type segment struct {
	lit    string
	dashed bool // the marker after lit is the dashed form
}

// template is a rendered answer split at its address markers.
type template struct {
	segs []segment
	size int // literal bytes
}

func newTemplate(body string) *template {
	t := &template{}
	for {
		i, j := strings.Index(body, ipMark), strings.Index(body, ipMarkDashed)
		if i < 0 && j < 0 {
			t.segs = append(t.segs, segment{lit: body})
			t.size += len(body)
			return t
		}
		dashed := i < 0 || (j >= 0 && j < i)
		if dashed {
			i = j
		}
		t.segs = append(t.segs, segment{lit: body[:i], dashed: dashed})
		t.size += i
		body = body[i+len(ipMark):] // both markers have the same length
	}
}

// render returns the answer for ip.
func (t *template) render(ip string) []byte {
	dashed := strings.ReplaceAll(ip, ".", "-")
	b := make([]byte, 0, t.size+len(t.segs)*len(ip))
	for i, s := range t.segs {
		b = append(b, s.lit...)
		if i == len(t.segs)-1 {
			break
		}
		if s.dashed {
			b = append(b, dashed...)
		} else {
			b = append(b, ip...)
		}
	}
	return b
}

// templates caches templates by key; there are a few thousand at most (profiles × AS numbers × countries).
type templates struct {
	m sync.Map // tmplKey -> *template
}

// get returns the template of k, rendering build's answer (built with ipMark as the address) the first time.
func (ts *templates) get(k tmplKey, build func() any) *template {
	if t, ok := ts.m.Load(k); ok {
		return t.(*template)
	}
	t := newTemplate(string(mustJSON(build())))
	ts.m.Store(k, t)
	return t
}

// writeRaw writes a pre-rendered JSON answer.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
