package allowlist

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

//go:embed lists/*.json lists/SOURCES.md
var shipped embed.FS

// All selects every shipped warninglist in [Embedded]; None selects none.
const (
	All  = "all"
	None = "none"
)

// EmbeddedNames returns the names of the shipped warninglists, sorted.
func EmbeddedNames() []string {
	files, err := fs.Glob(shipped, "lists/*.json")
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, strings.TrimSuffix(path.Base(f), ".json"))
	}
	slices.Sort(names)
	return names
}

// Embedded parses the shipped warninglists named in names ("all" selects
// every one) in the order given. An unknown name is an error.
func Embedded(names []string) ([]List, error) {
	var lists []List
	err := eachEmbedded(names, func(l List) error {
		lists = append(lists, l)
		return nil
	})
	return lists, err
}

// eachEmbedded parses the shipped warninglists named in names one at a time
// and hands each to fn.
func eachEmbedded(names []string, fn func(List) error) error {
	if slices.Contains(names, All) {
		names = EmbeddedNames()
	}
	if len(names) == 1 && strings.EqualFold(strings.TrimSpace(names[0]), None) {
		return nil
	}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		data, err := shipped.ReadFile("lists/" + n + ".json")
		if err != nil {
			return fmt.Errorf("warninglist %q: unknown: %w", n, ErrInvalidList)
		}
		l, err := ParseWarninglist(n, data)
		if err != nil {
			return err
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

// Config selects the lists to load: shipped warninglists by name (or "all")
// and local YAML files. Local lists take priority over warninglists.
type Config struct {
	Warninglists []string
	LocalFiles   []string
	Options      Options
}

// Load parses the configured lists and compiles them. Each warninglist is
// compiled as soon as it is parsed, so only one parsed list is held at a
// time.
func Load(cfg Config) (*Set, error) {
	b := newBuilder(cfg.Options)
	for _, f := range cfg.LocalFiles {
		lists, err := LoadLocalFile(f)
		if err != nil {
			return nil, err
		}
		for _, l := range lists {
			if err := b.add(l); err != nil {
				return nil, err
			}
		}
	}
	if err := eachEmbedded(cfg.Warninglists, b.add); err != nil {
		return nil, err
	}
	return b.finish(), nil
}
