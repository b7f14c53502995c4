package parse

import "testing"

func TestCrowdStrikeParse(t *testing.T) {
	runParseCases(t, NewCrowdStrike(), []parseCase{
		{
			name: "FDR inbound connection swaps ends",
			raw:  `{"event_simpleName":"NetworkReceiveAcceptIP4","ContextTimeStamp":"1700000000.250","timestamp":"1700000001000","aip":"198.51.100.1","LocalAddressIP4":"10.0.0.5","LocalPort":"3389","RemoteAddressIP4":"203.0.113.9","RemotePort":"60000","Protocol":"6","ComputerName":"WS5"}`,
			want: `{"kind":"NetworkReceiveAcceptIP4","vendor":"CrowdStrike","product":"Falcon Data Replicator","time":"2023-11-14T22:13:20.25Z","src":"203.0.113.9 60000","dst":"10.0.0.5 3389","proto":"tcp","src_host":"WS5"}`,
		},
		{
			name: "streaming detection with 1-5 severity, network and dns",
			raw:  `{"metadata":{"eventType":"DetectionSummaryEvent","eventCreationTime":1700000000000,"customerIDString":"c"},"event":{"ComputerName":"WS6","UserName":"bob","Severity":4,"SeverityName":"High","DetectName":"Suspicious Activity","PatternDispositionDescription":"Detection, standard detection.","PatternDispositionFlags":{"Detect":true,"ProcessBlocked":false},"SHA256String":"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb","NetworkAccesses":[{"RemoteAddress":"203.0.113.10","RemotePort":443}],"DnsRequests":[{"DomainName":"c2.example.net"}],"IOCType":"domain","IOCValue":"c2.example.net"}}`,
			want: `{"kind":"DetectionSummaryEvent","vendor":"CrowdStrike","product":"Falcon","time":"2023-11-14T22:13:20Z","action":"detected","severity":3,"rule":"Suspicious Activity","user":"bob","src_host":"WS6","obs":[["sha256","ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb","SHA256String"],["ip","203.0.113.10","NetworkAccesses.RemoteAddress"],["domain","c2.example.net","DomainName"]]}`,
		},
		{
			name: "kill flag means blocked",
			raw:  `{"metadata":{"eventType":"EppDetectionSummaryEvent","eventCreationTime":1700000000000},"event":{"Severity":90,"PatternDispositionFlags":{"KillProcess":true},"Name":"x"}}`,
			want: `{"kind":"EppDetectionSummaryEvent","vendor":"CrowdStrike","product":"Falcon","time":"2023-11-14T22:13:20Z","action":"blocked","severity":4,"rule":"x"}`,
		},
		{
			name: "no event name",
			raw:  `{"metadata":{"customerIDString":"c"},"event":{}}`,
			want: `{"error":"crowdstrike: unsupported: no event_simpleName or metadata.eventType"}`,
		},
		{
			name: "user of wrong type",
			raw:  `{"event_simpleName":"UserLogon","UserName":["a"]}`,
			want: `{"error":"crowdstrike: malformed: field UserName: want string"}`,
		},
	})
}

func TestCrowdStrikeDetect(t *testing.T) {
	runDetectCases(t, NewCrowdStrike(), []detectCase{
		{`{"event_simpleName":"DnsRequest","aid":"x"}`, true},
		{`{"metadata":{"eventType":"DetectionSummaryEvent"},"event":{}}`, true},
		{`{"metadata":{"version":"1.1.0"},"class_uid":2004,"eventType":"x","event":{}}`, false},
		{`{"EventID":3,"Channel":"x"}`, false},
	})
}

func FuzzCrowdStrike(f *testing.F) { fuzzParser(f, NewCrowdStrike(), "crowdstrike") }

// BenchmarkCrowdStrike parses every CrowdStrike sample record.
func BenchmarkCrowdStrike(b *testing.B) { benchParser(b, NewCrowdStrike(), "crowdstrike", nil) }
