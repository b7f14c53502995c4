package envconf

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestEveryVariableDocumented fails when a VIGIL_* variable read anywhere in the workspace is
// missing from the README's configuration tables.
func TestEveryVariableDocumented(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	varRe := regexp.MustCompile(`"(VIGIL_[A-Z0-9_]+)"`)
	provider := regexp.MustCompile(`^VIGIL_ENRICH_(CRIMINALIP|INTERNETDB|ABUSEIPDB|GREYNOISE)_`)
	missing := map[string]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "deploy") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range varRe.FindAllStringSubmatch(string(b), -1) {
			name := m[1]
			switch {
			case strings.HasPrefix(name, "VIGIL_TEST_"), strings.HasSuffix(name, "_"), strings.HasSuffix(name, "_FILE"):
				continue
			}
			doc := provider.ReplaceAllString(name, "VIGIL_ENRICH_<P>_")
			if !strings.Contains(string(readme), doc) {
				missing[name] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for n, p := range missing {
			names = append(names, n+" ("+p+")")
		}
		sort.Strings(names)
		t.Fatalf("variables read in code but not documented in README.md:\n%s", strings.Join(names, "\n"))
	}
}
