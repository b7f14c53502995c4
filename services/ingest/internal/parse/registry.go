package parse

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// FormatAuto asks Registry.Parse to detect the format of each record.
const FormatAuto = "auto"

// Registry errors returned by NewRegistry.
var (
	// ErrDuplicateParser is returned when two parsers share a name.
	ErrDuplicateParser = errors.New("duplicate parser name")
	// ErrInvalidParser is returned for a nil parser or one with an empty name.
	ErrInvalidParser = errors.New("invalid parser")
)

// Registry holds the parsers a service can use, looked up by name or detected per record.
// It is immutable after construction and safe for concurrent use.
type Registry struct {
	parsers []Parser
	byName  map[string]Parser
}

// NewRegistry returns a registry of parsers; detection tries them in the order given.
func NewRegistry(parsers ...Parser) (*Registry, error) {
	r := &Registry{byName: make(map[string]Parser, len(parsers))}
	for i, p := range parsers {
		if p == nil || p.Name() == "" || p.Name() == FormatAuto {
			return nil, fmt.Errorf("parser %d: %w", i, ErrInvalidParser)
		}
		if _, dup := r.byName[p.Name()]; dup {
			return nil, fmt.Errorf("parser %q: %w", p.Name(), ErrDuplicateParser)
		}
		r.byName[p.Name()] = p
		r.parsers = append(r.parsers, p)
	}
	return r, nil
}

// Names returns the parser names in detection order.
func (r *Registry) Names() []string {
	names := make([]string, len(r.parsers))
	for i, p := range r.parsers {
		names[i] = p.Name()
	}
	return names
}

// Lookup returns the parser with the given name.
func (r *Registry) Lookup(name string) (Parser, bool) {
	p, ok := r.byName[name]
	return p, ok
}

// Detect returns the first parser (in registry order) whose Detect accepts raw, or ErrNoParser.
func (r *Registry) Detect(raw []byte) (Parser, error) {
	for _, p := range r.parsers {
		if p.Detect(raw) {
			return p, nil
		}
	}
	return nil, ErrNoParser
}

// Parse reads one record. It first refuses records longer than maxSize bytes (when maxSize > 0;
// Reason too_large) and records that are not valid UTF-8 (Reason invalid_utf8), then parses
// with the named parser, or the detected one when format is "" or "auto". It returns the
// event, the name of the parser used, and a *Error for any record-level failure; a record no
// parser accepts, or a format name not in the registry, is Reason unknown_format.
func (r *Registry) Parse(format string, raw []byte, maxSize int) (Event, string, error) {
	if format == "" {
		format = FormatAuto
	}
	if maxSize > 0 && len(raw) > maxSize {
		return Event{}, "", &Error{Format: format, Reason: ReasonTooLarge,
			Detail: fmt.Sprintf("record is %d bytes, limit %d", len(raw), maxSize)}
	}
	if !utf8.Valid(raw) {
		return Event{}, "", &Error{Format: format, Reason: ReasonInvalidUTF8,
			Detail: fmt.Sprintf("invalid UTF-8 at byte %d", invalidUTF8At(raw))}
	}
	var p Parser
	if format == FormatAuto {
		var err error
		if p, err = r.Detect(raw); err != nil {
			return Event{}, "", &Error{Format: format, Reason: ReasonUnknownFormat, Detail: quotePrefix(raw, 64)}
		}
	} else {
		var ok bool
		if p, ok = r.byName[format]; !ok {
			return Event{}, "", &Error{Format: format, Reason: ReasonUnknownFormat,
				Detail: "no parser named " + strconv.Quote(format)}
		}
	}
	ev, err := p.Parse(raw)
	return ev, p.Name(), err
}

// invalidUTF8At returns the offset of the first invalid UTF-8 sequence.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// quotePrefix returns the first n bytes of b, Go-quoted.
func quotePrefix(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strconv.Quote(string(b))
}
