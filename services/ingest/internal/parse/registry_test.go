package parse

import (
	"errors"
	"strings"
	"testing"
)

// fakeParser accepts records that start with its prefix.
type fakeParser struct {
	name, prefix string
}

func (f fakeParser) Name() string { return f.name }
func (f fakeParser) Detect(raw []byte) bool {
	return strings.HasPrefix(string(raw), f.prefix)
}
func (f fakeParser) Parse(raw []byte) (Event, error) {
	return Event{Kind: f.name + ":" + string(raw)}, nil
}

func TestNewRegistry(t *testing.T) {
	t.Parallel()
	if _, err := NewRegistry(fakeParser{"a", "a"}, fakeParser{"a", "b"}); !errors.Is(err, ErrDuplicateParser) {
		t.Errorf("duplicate names: err = %v, want ErrDuplicateParser", err)
	}
	if _, err := NewRegistry(fakeParser{"", "a"}); !errors.Is(err, ErrInvalidParser) {
		t.Errorf("empty name: err = %v, want ErrInvalidParser", err)
	}
	if _, err := NewRegistry(nil); !errors.Is(err, ErrInvalidParser) {
		t.Errorf("nil parser: err = %v, want ErrInvalidParser", err)
	}
	r, err := NewRegistry(NewCEF(), NewCiscoASA(), NewPANOS(), NewFortiGate())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Names(), ","); got != "cef,cisco_asa,panos,fortigate" {
		t.Errorf("Names() = %s", got)
	}
	if p, ok := r.Lookup("panos"); !ok || p.Name() != "panos" {
		t.Errorf("Lookup(panos) = %v, %v", p, ok)
	}
	if _, ok := r.Lookup("nope"); ok {
		t.Error("Lookup(nope) found a parser")
	}
}

func TestRegistryDetectOrder(t *testing.T) {
	t.Parallel()
	r, err := NewRegistry(fakeParser{"first", "ab"}, fakeParser{"second", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := r.Detect([]byte("abc")); err != nil || p.Name() != "first" {
		t.Errorf("Detect(abc) = %v, %v; want first", p, err)
	}
	if p, err := r.Detect([]byte("ax")); err != nil || p.Name() != "second" {
		t.Errorf("Detect(ax) = %v, %v; want second", p, err)
	}
	if _, err := r.Detect([]byte("zzz")); !errors.Is(err, ErrNoParser) {
		t.Errorf("Detect(zzz) err = %v, want ErrNoParser", err)
	}
}

func TestRegistryParse(t *testing.T) {
	t.Parallel()
	r, err := NewRegistry(NewCEF(), NewCiscoASA(), NewPANOS(), NewFortiGate())
	if err != nil {
		t.Fatal(err)
	}
	asa := "%ASA-4-106023: Deny udp src in:10.0.0.1/1 dst out:81.2.69.1/53 by access-group \"acl\""
	long := strings.Repeat("x", 100)
	tests := []struct {
		name, format, raw string
		max               int
		wantParser        string
		wantReason        string
		wantDetail        string
	}{
		{"auto ASA", "auto", asa, 0, "cisco_asa", "", ""},
		{"empty format is auto", "", asa, 1000, "cisco_asa", "", ""},
		{"named format", "cisco_asa", asa, 0, "cisco_asa", "", ""},
		{"named format, other record", "cef", asa, 0, "cef", ReasonMalformed, "no CEF: marker"},
		{"too large first", "auto", "\xff" + long, 50, "", ReasonTooLarge, "record is 101 bytes, limit 50"},
		{"invalid UTF-8", "auto", "ok\xffno", 0, "", ReasonInvalidUTF8, "invalid UTF-8 at byte 2"},
		{"unknown format", "auto", long, 0, "", ReasonUnknownFormat, `"` + strings.Repeat("x", 64) + `"`},
		{"unknown parser name", "bogus", asa, 0, "", ReasonUnknownFormat, `no parser named "bogus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, name, err := r.Parse(tt.format, []byte(tt.raw), tt.max)
			if name != tt.wantParser {
				t.Errorf("parser = %q, want %q", name, tt.wantParser)
			}
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Reason != tt.wantReason || pe.Detail != tt.wantDetail && !strings.Contains(pe.Detail, tt.wantDetail) {
				t.Fatalf("err = %#v, want reason %s detail %q", err, tt.wantReason, tt.wantDetail)
			}
		})
	}
}
