package parse

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// sharedOCSFDir is the shared corpus's OCSF folder beside the checkout (../shared/testdata/logs/ocsf). Its
// files come from ocsf/examples, a repository without a licence file, so the project reads them in place
// instead of copying them into its own testdata (see testdata/json/SOURCES.md). VIGIL_SHARED_LOGS moves it.
func sharedOCSFDir() string {
	if d := os.Getenv("VIGIL_SHARED_LOGS"); d != "" {
		return filepath.Join(d, "ocsf")
	}
	return filepath.Join("..", "..", "..", "..", "..", "shared", "testdata", "logs", "ocsf")
}

// sharedOCSFWant are indicator candidates each example holds (read from the files): the endpoint IPs and
// the host names, SNI and evidence IPs that must come out of the parser as SrcIP/DstIP or Observables.
var sharedOCSFWant = map[string][]string{
	"ocsf-examples_zeek-http.json":                   {"172.70.175.90", "198.71.247.91", "lifeisnetwork.com"},
	"ocsf-examples_zeek-conn-v1.4.json":              {"37.120.182.208", "ip.anysrc.net"},
	"ocsf-examples_zeek-ssl.json":                    {"172.241.1.68", "code.yengo.com"},
	"ocsf-examples_zeek-ssh.json":                    {"3.18.161.242"},
	"ocsf-examples_aws-sechub-guardduty.json":        {"52.94.133.131"},
	"ocsf-examples_aws-route53-v1.5.json":            {"ip-127-0-0-62.alert.firewall.canary."},
	"ocsf-examples_o365-messagetrace-delivered.json": {"208.67.222.222"},
	"ocsf-examples_qradar-offense.json":              {"99.99.99.99", "88.88.88.88", "77.77.77.77"},
	"ocsf-examples_ssc-malware-infection-detected.json": {"1.183.190.110", "open-internet.nl", "59.11.81.231",
		"190.109.227.80", "open.kickasstracker.com", "38.7.186.198"},
}

// TestSharedOCSFSamples parses every real OCSF example of the shared corpus in place: every record must give
// an Event or an "unsupported" *Error (nothing malformed), OCSF's Detect must accept what it parses, no
// other JSON parser may claim an OCSF record, and the candidates of sharedOCSFWant must come out.
func TestSharedOCSFSamples(t *testing.T) {
	dir := sharedOCSFDir()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skipf("no shared OCSF corpus at %s (set VIGIL_SHARED_LOGS to the shared testdata/logs folder)", dir)
	}
	parsers := jsonParsers()
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			recs := readSampleRecords(t, file)
			if len(recs) == 0 {
				t.Fatal("no records")
			}
			seen := map[string]bool{}
			for i, rec := range recs {
				ev, err, out := parseSample(t, parsers, "ocsf", i, rec)
				switch out {
				case sampleParsed:
					seen[ev.SrcIP], seen[ev.DstIP] = true, true
					for _, o := range ev.Observables {
						seen[o.Value] = true
					}
				case sampleUnsupported:
					t.Logf("record %d: %v", i+1, err)
				default:
					t.Errorf("record %d: %v", i+1, err)
				}
			}
			for _, v := range sharedOCSFWant[filepath.Base(file)] {
				if !seen[v] {
					t.Errorf("candidate %q not found; parsed %v", v, slices.Sorted(maps.Keys(seen)))
				}
			}
		})
	}
	for name := range sharedOCSFWant {
		if !slices.Contains(files, filepath.Join(dir, name)) {
			t.Errorf("%s is missing from the shared corpus", name)
		}
	}
}
