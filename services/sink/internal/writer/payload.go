package writer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	segjson "github.com/segmentio/encoding/json"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/sink/internal/threatq"
)

// Attribute names Vigil adds to every indicator besides Verdict.Attributes.
const (
	AttrPriority = "Vigil Priority"
	AttrLevel    = "Vigil Level"
	AttrAction   = "Vigil Action"
	AttrReason   = "Vigil Reason"
)

// TypeNames maps Vigil indicator types to ThreatQ type names.
var TypeNames = map[string]string{
	events.TypeIPv4:   "IP Address",
	events.TypeIPv6:   "IPv6 Address",
	events.TypeDomain: "FQDN",
	events.TypeURL:    "URL",
	events.TypeMD5:    "MD5",
	events.TypeSHA1:   "SHA-1",
	events.TypeSHA256: "SHA-256",
}

// TypeFromThreatQ maps a ThreatQ type name back to the Vigil type ("" when unknown).
func TypeFromThreatQ(name string) string {
	for k, v := range TypeNames {
		if strings.EqualFold(v, name) {
			return k
		}
	}
	return ""
}

// DefaultStatuses maps verdict actions to ThreatQ status names.
func DefaultStatuses() map[string]string {
	return map[string]string{
		events.VerdictBlock:    "Active",
		events.VerdictAlert:    "Active",
		events.VerdictReview:   "Review",
		events.VerdictSuppress: "Whitelisted",
		events.VerdictAnnotate: "Active",
	}
}

// payload is what one verdict turns into.
type payload struct {
	key       string
	ind       threatq.Indicator
	keep      bool    // keep the status of an existing indicator (annotate)
	score     float64 // manual score to set, -1 none
	attrNames []string
	attrsFP   string
	fp        string
}

// build turns a verdict into a ThreatQ indicator. It fails only for an unknown indicator type.
func (w *Writer) build(v events.Verdict) (payload, error) {
	typ, ok := TypeNames[v.Indicator.Type]
	if !ok {
		return payload{}, fmt.Errorf("indicator type %q has no ThreatQ type", v.Indicator.Type)
	}
	status, ok := w.cfg.Statuses[v.Action]
	if !ok {
		status = w.cfg.DefaultStatus
	}
	published := v.DecidedAt
	if published.IsZero() {
		published = w.now()
	}
	src := w.cfg.SourceName
	in := threatq.Indicator{
		Value:       v.Indicator.Value,
		Type:        typ,
		Status:      status,
		Description: v.Description,
		PublishedAt: published.UTC().Truncate(time.Second),
		Sources:     []threatq.Source{{Name: src, TLP: w.cfg.TLP}},
	}
	seen := map[string]bool{strings.ToLower(src): true}
	for _, p := range v.Sources {
		name := p
		if n, ok := w.cfg.SourceNames[strings.ToLower(p)]; ok {
			name = n
		}
		if name == "" || seen[strings.ToLower(name)] {
			continue
		}
		seen[strings.ToLower(name)] = true
		in.Sources = append(in.Sources, threatq.Source{Name: name, TLP: w.cfg.TLP})
	}
	attrs := make([]threatq.Attribute, 0, len(v.Attributes)+4+len(v.Reasons))
	add := func(name, value string) {
		if name == "" || value == "" || (len(w.omit) > 0 && w.omit[strings.ToLower(name)]) {
			return
		}
		attrs = append(attrs, threatq.Attribute{Name: name, Value: yesNo(value), Sources: []string{src}})
	}
	for _, a := range v.Attributes {
		add(a.Name, a.Value)
	}
	add(AttrPriority, strconv.Itoa(int(v.Priority)))
	add(AttrLevel, v.Level)
	add(AttrAction, v.Action)
	for _, r := range v.Reasons {
		add(AttrReason, r.Code)
	}
	attrs = dedupAttrs(attrs)
	in.Attributes = attrs
	tags := append(append([]string(nil), v.Tags...), w.cfg.Tags...)
	slices.Sort(tags)
	in.Tags = slices.Compact(tags)

	p := payload{key: v.Indicator.Key(), ind: in, keep: slices.Contains(w.cfg.KeepStatusActions, v.Action), score: -1}
	if v.SetScore {
		p.score = float64(min(max(v.Priority, 0), 10))
	}
	for _, a := range attrs {
		if !slices.Contains(p.attrNames, a.Name) {
			p.attrNames = append(p.attrNames, a.Name)
		}
	}
	p.attrsFP = hashJSON(attrs)
	p.fp = fingerprint(p)
	return p, nil
}

func yesNo(v string) string {
	switch strings.ToLower(v) {
	case "true":
		return "Yes"
	case "false":
		return "No"
	}
	return v
}

// dedupAttrs sorts attributes by (name, value) and drops repeats.
func dedupAttrs(as []threatq.Attribute) []threatq.Attribute {
	slices.SortFunc(as, func(a, b threatq.Attribute) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return slices.CompactFunc(as, func(a, b threatq.Attribute) bool { return a.Name == b.Name && a.Value == b.Value })
}

// fingerprint is the sha256 of a canonical encoding of everything that would be sent, except
// published_at (it changes with every verdict and does not change the indicator's meaning).
func fingerprint(p payload) string {
	srcs := make([]string, 0, len(p.ind.Sources))
	for _, s := range p.ind.Sources {
		srcs = append(srcs, s.Name+"|"+s.TLP)
	}
	slices.Sort(srcs)
	return hashJSON(struct {
		V       int
		Type    string
		Value   string
		Status  string
		Keep    bool
		Desc    string
		Sources []string
		AttrsFP string
		Tags    []string
		Score   float64
	}{1, p.ind.Type, p.ind.Value, p.ind.Status, p.keep, p.ind.Description, srcs, p.attrsFP, p.ind.Tags, p.score})
}

// hashBufs holds hashJSON's encoding buffers.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// hashJSON is the hex sha256 of v's JSON encoding. The bytes are exactly encoding/json.Marshal's
// (fingerprints are stored, so they must not change); the segmentio encoder makes them for less CPU.
func hashJSON(v any) string {
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	b, err := segjson.Append((*bp)[:0], v, segjson.EscapeHTML|segjson.SortMapKeys)
	if err != nil { // plain structs and strings: cannot fail
		return ""
	}
	*bp = b[:0]
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
