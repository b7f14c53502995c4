package allowlist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Entry types.
const (
	TypeCIDR      = "cidr"
	TypeHostname  = "hostname"
	TypeString    = "string"
	TypeSubstring = "substring"
	TypeRegex     = "regex"
)

// ErrInvalidList is returned (wrapped) when a list file cannot be used.
var ErrInvalidList = errors.New("invalid list")

// Entry is one value of a list.
type Entry struct {
	Value   string    `yaml:"value"`
	Type    string    `yaml:"type"`    // one of the Type* constants; defaults to the list type
	Reason  string    `yaml:"reason"`  // optional; defaults to the list description
	Expires time.Time `yaml:"expires"` // zero: never expires
}

// List is a named list of entries, either a MISP warninglist or a local list.
type List struct {
	Name        string   // short identifier reported in matches, e.g. "amazon-aws"
	Description string   // human-readable; used as the match reason when an entry has none
	Type        string   // default entry type
	Attributes  []string // MISP matching_attributes; empty means every indicator type
	Local       bool     // true for local (operator or analyst) lists
	Entries     []Entry
}

type mispFile struct {
	Name               string   `json:"name"`
	Description        string   `json:"description"`
	Type               string   `json:"type"`
	Version            int      `json:"version"`
	MatchingAttributes []string `json:"matching_attributes"`
	List               []string `json:"list"`
}

// ParseWarninglist parses one MISP warninglist JSON document. name is the
// short list identifier (the MISP folder name, e.g. "amazon-aws").
func ParseWarninglist(name string, data []byte) (List, error) {
	var f mispFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return List{}, fmt.Errorf("parse warninglist %s: %w", name, err)
	}
	if !validType(f.Type) {
		return List{}, fmt.Errorf("warninglist %s: type %q: %w", name, f.Type, ErrInvalidList)
	}
	desc := f.Name
	if desc == "" {
		desc = f.Description
	}
	l := List{Name: name, Description: desc, Type: f.Type, Attributes: f.MatchingAttributes}
	l.Entries = make([]Entry, 0, len(f.List))
	for _, v := range f.List {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		l.Entries = append(l.Entries, Entry{Value: v, Type: f.Type})
	}
	return l, nil
}

// LocalFile is the YAML shape of a local allow-list file:
//
//	lists:
//	  - name: partner-proxies
//	    description: Partner egress proxies
//	    entries:
//	      - {value: 198.51.100.0/24, type: cidr, reason: "ACME proxy", expires: 2027-01-01T00:00:00Z}
//	      - {value: partner.example, type: hostname, reason: "ACME portal"}
type LocalFile struct {
	Lists []LocalList `yaml:"lists"`
}

// LocalList is one list of a [LocalFile].
type LocalList struct {
	Name        string  `yaml:"name"`
	Description string  `yaml:"description"`
	Entries     []Entry `yaml:"entries"`
}

// ParseLocal parses a local allow-list YAML document. source names the file in errors.
func ParseLocal(source string, data []byte) ([]List, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("parse %s: %w", source, err)
	}
	var f LocalFile
	if err := root.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse %s: %w", source, err)
	}
	lists := make([]List, 0, len(f.Lists))
	for i, ll := range f.Lists {
		if ll.Name == "" {
			return nil, fmt.Errorf("%s: lists[%d].name: empty: %w", source, i, ErrInvalidList)
		}
		l := List{Name: ll.Name, Description: ll.Description, Type: TypeString, Local: true}
		for j, e := range ll.Entries {
			if e.Type == "" {
				e.Type = guessType(e.Value)
			}
			if !validType(e.Type) {
				return nil, fmt.Errorf("%s: lists[%d].entries[%d].type %q: %w", source, i, j, e.Type, ErrInvalidList)
			}
			if strings.TrimSpace(e.Value) == "" {
				return nil, fmt.Errorf("%s: lists[%d].entries[%d].value: empty: %w", source, i, j, ErrInvalidList)
			}
			l.Entries = append(l.Entries, e)
		}
		lists = append(lists, l)
	}
	return lists, nil
}

// LoadLocalFile reads and parses a local allow-list YAML file.
func LoadLocalFile(path string) ([]List, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read local list: %w", err)
	}
	return ParseLocal(filepath.Clean(path), data)
}

func validType(t string) bool {
	switch t {
	case TypeCIDR, TypeHostname, TypeString, TypeSubstring, TypeRegex:
		return true
	}
	return false
}

// guessType picks cidr for addresses and prefixes, hostname otherwise.
func guessType(v string) string {
	if _, err := parsePrefix(v); err == nil {
		return TypeCIDR
	}
	return TypeHostname
}
