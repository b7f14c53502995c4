package parse

import "testing"

func TestOCSFParse(t *testing.T) {
	runParseCases(t, NewOCSF(), []parseCase{
		{
			name: "unknown class keeps its name, action_id denied",
			raw:  `{"class_uid":4013,"class_name":"NTP Activity","metadata":{"version":"1.3.0"},"time":1700000000000,"action_id":2,"severity_id":6,"src_endpoint":{"ip":"10.0.0.1"}}`,
			want: `{"kind":"ntp_activity","vendor":"OCSF","time":"2023-11-14T22:13:20Z","src":"10.0.0.1","action":"denied","severity":4}`,
		},
		{
			name: "no class",
			raw:  `{"metadata":{"version":"1.3.0"},"time":1700000000000}`,
			want: `{"error":"ocsf: unsupported: no class_uid"}`,
		},
		{
			name: "class of wrong type",
			raw:  `{"class_uid":"network","metadata":{}}`,
			want: `{"error":"ocsf: malformed: field class_uid: want integer"}`,
		},
	})
}

func TestOCSFDetect(t *testing.T) {
	runDetectCases(t, NewOCSF(), []detectCase{
		{`{"class_uid":4001,"metadata":{"version":"1.3.0"}}`, true},
		{`{"class_uid":4001,"category_uid":4}`, true},
		{`{"class_uid":4001}`, false},
		{`{"metadata":{"eventType":"x"},"event":{}}`, false},
	})
}

func FuzzOCSF(f *testing.F) { fuzzParser(f, NewOCSF(), "ocsf") }

// BenchmarkOCSF parses every OCSF sample record.
func BenchmarkOCSF(b *testing.B) { benchParser(b, NewOCSF(), "ocsf", nil) }
