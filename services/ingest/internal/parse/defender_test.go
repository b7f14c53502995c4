package parse

import "testing"

func TestDefenderParse(t *testing.T) {
	runParseCases(t, NewDefender(), []parseCase{
		{
			name: "page with one graph v2 alert",
			raw:  `{"value":[{"id":"a1","title":"C2 connection","severity":"high","detectionSource":"microsoftDefenderForEndpoint","detectionStatus":"blocked","createdDateTime":"2024-01-02T03:04:05Z","firstActivityDateTime":"2024-01-02T03:00:00Z","evidence":[{"@odata.type":"#microsoft.graph.security.ipEvidence","ipAddress":"203.0.113.20"},{"@odata.type":"#microsoft.graph.security.urlEvidence","url":"https://bad.example.com/a"},{"@odata.type":"#microsoft.graph.security.fileEvidence","fileDetails":{"sha256":"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"}},{"@odata.type":"#microsoft.graph.security.userEvidence","userAccount":{"accountName":"carol"}}]}]}`,
			want: `{"kind":"alert","vendor":"Microsoft","product":"Defender for Endpoint","time":"2024-01-02T03:00:00Z","action":"blocked","severity":3,"rule":"C2 connection","user":"carol","obs":[["ip","203.0.113.20","evidence.ipAddress"],["url","https://bad.example.com/a","evidence.url"],["sha256","ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb","evidence.fileDetails.sha256"]]}`,
		},
		{
			name: "page with two alerts",
			raw:  `{"value":[{"title":"a","detectionSource":"x"},{"title":"b","detectionSource":"x"}]}`,
			want: `{"error":"ms_defender: unsupported: API page with 2 alerts"}`,
		},
		{
			name: "severity of wrong type",
			raw:  `{"title":"a","severity":{"x":1},"detectionSource":"x"}`,
			want: `{"error":"ms_defender: malformed: field severity: want string"}`,
		},
	})
}

func TestDefenderDetect(t *testing.T) {
	runDetectCases(t, NewDefender(), []detectCase{
		{`{"id":"x","detectionSource":"WindowsDefenderAv","alertCreationTime":"t"}`, true},
		{`{"value":[{"detectionSource":"x","createdDateTime":"t"}]}`, true},
		{`{"value":[]}`, false},
		{`{"alertInfo":{},"ruleInfo":{}}`, false},
	})
}

func FuzzDefender(f *testing.F) { fuzzParser(f, NewDefender(), "ms_defender") }

// BenchmarkDefender parses every Defender sample record.
func BenchmarkDefender(b *testing.B) { benchParser(b, NewDefender(), "ms_defender", nil) }
