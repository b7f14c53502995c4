package parse

import "testing"

func TestECSParse(t *testing.T) {
	runParseCases(t, NewECS(), []parseCase{
		{
			name: "flattened keys, type denied, host context only without source",
			raw:  `{"@timestamp":"2024-01-02T03:04:05Z","ecs.version":"8.0.0","event.type":["connection","denied"],"destination.ip":"203.0.113.40","destination.port":"22","network.iana_number":"6","host.name":"h1"}`,
			want: `{"kind":"event","vendor":"Elastic","product":"ECS","time":"2024-01-02T03:04:05Z","dst":"203.0.113.40 22","proto":"tcp","action":"denied","src_host":"h1"}`,
		},
		{
			name: "no fields read",
			raw:  `{"@timestamp":"2024-01-02T03:04:05Z","ecs":{"version":"8.0.0"},"message":"x"}`,
			want: `{"error":"ecs: unsupported: no ECS field this parser reads"}`,
		},
		{
			name: "port of wrong type",
			raw:  `{"@timestamp":"2024-01-02T03:04:05Z","ecs":{"version":"8.0.0"},"source":{"port":true}}`,
			want: `{"error":"ecs: malformed: field source.port: want port number"}`,
		},
	})
}

func TestECSDetect(t *testing.T) {
	runDetectCases(t, NewECS(), []detectCase{
		{`{"@timestamp":"x","ecs":{"version":"8"}}`, true},
		{`{"@timestamp":"x","ecs.version":"8"}`, true},
		{`{"@timestamp":"x","event_type":"alert","timestamp":"x"}`, false},
	})
}

func FuzzECS(f *testing.F) { fuzzParser(f, NewECS(), "ecs") }

// BenchmarkECS parses every ECS sample record.
func BenchmarkECS(b *testing.B) { benchParser(b, NewECS(), "ecs", nil) }
