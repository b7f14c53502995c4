package parse

import "testing"

func TestSysmonParse(t *testing.T) {
	runParseCases(t, NewSysmon(), []parseCase{
		{
			name: "inbound 5156 swaps ends",
			raw:  `{"EventID":5156,"Channel":"Security","Hostname":"SRV1","TimeCreated":"2024-01-02 03:04:05.000","Direction":"%%14592","SourceAddress":"10.0.0.10","SourcePort":"3389","DestAddress":"198.51.100.3","DestPort":"50000","Protocol":"6"}`,
			want: `{"kind":"security/5156","vendor":"Microsoft","product":"Windows","time":"2024-01-02T03:04:05Z","src":"198.51.100.3 50000","dst":"10.0.0.10 3389","proto":"tcp","action":"allowed","dst_host":"SRV1"}`,
		},
		{
			name: "sysmon 22 nested EventData with CNAME results",
			raw:  `{"EventID":"22","SourceName":"Microsoft-Windows-Sysmon","Computer":"WS1","EventData":{"UtcTime":"2024-01-02 03:04:05.123","QueryName":"www.example.com","QueryResults":"type:  5 edge.example.net;::ffff:192.0.2.8;","User":"CORP\\alice","RuleName":"-"}}`,
			want: `{"kind":"sysmon/22","vendor":"Microsoft","product":"Sysmon","time":"2024-01-02T03:04:05.123Z","user":"CORP\\alice","src_host":"WS1","obs":[["domain","www.example.com","QueryName"],["domain","edge.example.net","QueryResults"],["ip","::ffff:192.0.2.8","QueryResults"]]}`,
		},
		{
			name: "sysmon 3 inbound keeps initiator as source",
			raw:  `{"EventID":3,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"WS2","UtcTime":"2024-01-02 03:04:05.000","Initiated":"false","SourceIp":"203.0.113.4","SourcePort":"51000","DestinationIp":"10.0.0.20","DestinationPort":"445","Protocol":"tcp","DestinationHostname":"-","RuleName":"technique_id=T1021"}`,
			want: `{"kind":"sysmon/3","vendor":"Microsoft","product":"Sysmon","time":"2024-01-02T03:04:05Z","src":"203.0.113.4 51000","dst":"10.0.0.20 445","proto":"tcp","rule":"technique_id=T1021","dst_host":"WS2"}`,
		},
		{
			name: "no EventID",
			raw:  `{"Channel":"Security","Hostname":"x"}`,
			want: `{"error":"sysmon: unsupported: no EventID"}`,
		},
		{
			name: "EventID of wrong type",
			raw:  `{"EventID":[3],"Channel":"Security"}`,
			want: `{"error":"sysmon: malformed: field EventID: want integer"}`,
		},
	})
}

func TestSysmonDetect(t *testing.T) {
	runDetectCases(t, NewSysmon(), []detectCase{
		{`{"EventID":3,"Channel":"Microsoft-Windows-Sysmon/Operational"}`, true},
		{`{"SourceName":"Microsoft-Windows-Security-Auditing","EventID":4688}`, true},
		{`{"EventID":3}`, false},
		{`{"@timestamp":"x","ecs":{"version":"8"},"winlog":{"event_id":"3","channel":"x"},"EventID":3,"Channel":"x"}`, false},
	})
}

func FuzzSysmon(f *testing.F) { fuzzParser(f, NewSysmon(), "windows_sysmon") }

// BenchmarkSysmon parses every Windows event sample record.
func BenchmarkSysmon(b *testing.B) { benchParser(b, NewSysmon(), "windows_sysmon", nil) }
