package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrNoInput means no replayable file was found.
var ErrNoInput = errors.New("no input records")

// sampleTopics maps a sample directory (named after the parser) to the raw topic its records
// go to: ingest's default VIGIL_INGEST_TOPICS.
var sampleTopics = map[string]string{
	"suricata_eve":   "raw.suricata",
	"zeek":           "raw.zeek",
	"cef":            "raw.cef",
	"fortigate":      "raw.fortigate",
	"panos":          "raw.panos",
	"cisco_asa":      "raw.asa",
	"windows_sysmon": "raw.sysmon",
	"crowdstrike":    "raw.edr",
	"ms_defender":    "raw.edr",
	"sentinelone":    "raw.edr",
	"ocsf":           "raw.ocsf",
	"ecs":            "raw.ecs",
}

// source is one input file and the raw topic its records are replayed onto.
type source struct {
	Topic   string
	Path    string
	Records [][]byte
}

// loadSamples reads the bundled samples under root (services/ingest/testdata): every file in
// {json,text}/<format>/ except golden files and notes. A directory without a known format is
// an error, so a new sample format is not silently skipped.
func loadSamples(root string, topic func(string) string, now time.Time) ([]source, error) {
	var out []source
	for _, kind := range []string{"json", "text"} {
		dir := filepath.Join(root, kind)
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("read samples: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			base, ok := sampleTopics[e.Name()]
			if !ok {
				return nil, fmt.Errorf("samples %s: no raw topic for format %q", dir, e.Name())
			}
			files, err := sampleFiles(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				recs, err := readRecords(f, now)
				if err != nil {
					return nil, err
				}
				out = append(out, source{Topic: topic(base), Path: f, Records: recs})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("samples %s: %w", root, ErrNoInput)
	}
	return out, nil
}

func sampleFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n := d.Name()
		if d.IsDir() || strings.HasSuffix(n, ".golden.jsonl") || strings.HasSuffix(n, ".md") || strings.HasPrefix(n, ".") {
			return nil
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list samples: %w", err)
	}
	sort.Strings(files)
	return files, nil
}

// loadInput reads DIR/<name>.log files; each file's records go to raw.<name>.
func loadInput(dir string, topic func(string) string, now time.Time) ([]source, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, fmt.Errorf("list input: %w", err)
	}
	sort.Strings(files)
	var out []source
	for _, f := range files {
		recs, err := readRecords(f, now)
		if err != nil {
			return nil, err
		}
		out = append(out, source{Topic: topic("raw." + strings.TrimSuffix(filepath.Base(f), ".log")), Path: f, Records: recs})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("input %s: %w", dir, ErrNoInput)
	}
	return out, nil
}

// NowToken in an input file is replaced by the replay time, so hand-written records can be
// fresh sightings (old sample data decays to priority 0 in correlate's policy). The form is
// RFC 3339 with microseconds and a numeric zone, as Suricata writes it.
const NowToken = "@NOW@"

// nowLayout is the time format that replaces NowToken.
const nowLayout = "2006-01-02T15:04:05.000000-0700"

func readRecords(path string, now time.Time) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	data = bytes.ReplaceAll(data, []byte(NowToken), []byte(now.UTC().Format(nowLayout)))
	recs, err := splitRecords(data)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", path, err)
	}
	return recs, nil
}

// splitRecords splits a file into records. A file whose first line is not a whole JSON object
// but starts a JSON value is a stream of JSON documents (pretty-printed files, arrays, and
// {"expected": [...]} fixture wrappers): each document becomes one compact record. Any other
// file is one record per non-empty line, kept byte for byte (broken lines included: ingest
// must dead-letter them, not us).
func splitRecords(data []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	first, _, _ := bytes.Cut(trimmed, []byte("\n"))
	first = bytes.TrimSpace(first)
	wholeLine := len(first) > 1 && first[0] == '{' && first[len(first)-1] == '}'
	if (trimmed[0] == '{' || trimmed[0] == '[') && !wholeLine {
		return jsonStream(trimmed)
	}
	var recs [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			recs = append(recs, append([]byte(nil), line...))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return recs, nil
}

func jsonStream(data []byte) ([][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var out [][]byte
	for dec.More() {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("json stream: %w", err)
		}
		docs, err := unwrap(v)
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	return out, nil
}

// unwrap turns an array into its elements and an {"expected": …} wrapper into what it holds.
func unwrap(v json.RawMessage) ([][]byte, error) {
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(v, &elems); err != nil {
			return nil, fmt.Errorf("json array: %w", err)
		}
		var out [][]byte
		for _, e := range elems {
			docs, err := unwrap(e)
			if err != nil {
				return nil, err
			}
			out = append(out, docs...)
		}
		return out, nil
	}
	var wrapper map[string]json.RawMessage
	if err := json.Unmarshal(v, &wrapper); err == nil && len(wrapper) == 1 {
		if inner, ok := wrapper["expected"]; ok {
			return unwrap(inner)
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	return [][]byte{buf.Bytes()}, nil
}
