// Package envconf reads typed configuration from environment variables and collects every
// problem with the name of the variable that caused it.
//
// Usage:
//
//	e := envconf.New(os.LookupEnv)
//	addr := e.String("VIGIL_OPS_ADDR", "127.0.0.1:9464")
//	n := e.Int("VIGIL_KAFKA_PARTITIONS", 12)
//	if err := e.Err(); err != nil { ... }
//
// Only a service's config.Load calls it; nothing else reads the environment.
package envconf

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Lookup reads one variable; os.LookupEnv fits, tests pass a map's lookup.
type Lookup func(string) (string, bool)

// FromMap returns a Lookup over a map (for tests).
func FromMap(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Env reads variables and accumulates errors.
type Env struct {
	lookup Lookup
	errs   []error
}

// New returns an Env over lookup.
func New(lookup Lookup) *Env { return &Env{lookup: lookup} }

// VarError names the variable whose value is wrong.
type VarError struct {
	Var    string
	Value  string // shown only for non-secret variables
	Reason string
}

func (e *VarError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Var, e.Reason)
	}
	return fmt.Sprintf("%s=%q: %s", e.Var, e.Value, e.Reason)
}

// Fail records a validation error for a variable (used by Validate methods).
func (e *Env) Fail(name, value, reason string) {
	e.errs = append(e.errs, &VarError{Var: name, Value: value, Reason: reason})
}

// Err returns all problems found so far, joined, or nil.
func (e *Env) Err() error { return errors.Join(e.errs...) }

func (e *Env) get(name string) (string, bool) {
	v, ok := e.lookup(name)
	if !ok {
		return "", false
	}
	v = strings.TrimSpace(v)
	return v, v != ""
}

// String returns the variable or def.
func (e *Env) String(name, def string) string {
	if v, ok := e.get(name); ok {
		return v
	}
	return def
}

// Secret returns a secret from NAME or from the file named by NAME_FILE (trailing newline trimmed).
// The value never appears in an error.
func (e *Env) Secret(name string) string {
	if v, ok := e.get(name); ok {
		return v
	}
	if path, ok := e.get(name + "_FILE"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			e.errs = append(e.errs, &VarError{Var: name + "_FILE", Value: path, Reason: "cannot read secret file: " + errors.Unwrap(err).Error()})
			return ""
		}
		return strings.TrimRight(string(b), "\r\n")
	}
	return ""
}

// Int returns an integer variable or def.
func (e *Env) Int(name string, def int) int {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.Fail(name, v, "not an integer")
		return def
	}
	return n
}

// Float returns a float variable or def.
func (e *Env) Float(name string, def float64) float64 {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		e.Fail(name, v, "not a number")
		return def
	}
	return f
}

// Bool returns a boolean variable (true/false/1/0/yes/no) or def.
func (e *Env) Bool(name string, def bool) bool {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	e.Fail(name, v, "not a boolean (true/false)")
	return def
}

// Duration returns a Go duration variable ("30s", "5m") or def.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.Fail(name, v, "not a duration (e.g. 30s, 5m)")
		return def
	}
	if d < 0 {
		e.Fail(name, v, "must not be negative")
		return def
	}
	return d
}

// List returns a comma-separated list variable (empty items dropped) or def.
func (e *Env) List(name string, def []string) []string {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// OneOf returns the variable if it is one of allowed, else records an error.
func (e *Env) OneOf(name, def string, allowed ...string) string {
	v := e.String(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	e.Fail(name, v, "must be one of "+strings.Join(allowed, ", "))
	return def
}
