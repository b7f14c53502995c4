package parse

import "testing"

func TestSentinelOneParse(t *testing.T) {
	runParseCases(t, NewSentinelOne(), []parseCase{
		{
			name: "threat",
			raw:  `{"threatInfo":{"threatName":"Trojan.X","sha1":"86f7e437faa5a7fce15d1ddcb9eaeaea377667b8","mitigationStatus":"mitigated","confidenceLevel":"malicious","createdAt":"2024-01-02T03:04:05.000Z"},"agentRealtimeInfo":{"agentComputerName":"WS9"},"agentDetectionInfo":{"agentIpV4":"10.0.0.9,10.0.1.9"}}`,
			want: `{"kind":"threat","vendor":"SentinelOne","product":"Singularity","time":"2024-01-02T03:04:05Z","src":"10.0.0.9","action":"mitigated","severity":3,"rule":"Trojan.X","src_host":"WS9","obs":[["sha1","86f7e437faa5a7fce15d1ddcb9eaeaea377667b8","threatInfo.sha1"]]}`,
		},
		{
			name: "alert with TI indicator",
			raw:  `{"alertInfo":{"createdAt":"2024-01-02T03:04:05Z","srcIp":"10.0.0.8","dstIp":"203.0.113.30","dstPort":"443","tiIndicatorType":"IPV4","tiIndicatorValue":"203.0.113.30","dnsRequest":"c2.example.org"},"ruleInfo":{"name":"TI match","severity":"High"}}`,
			want: `{"kind":"alert","vendor":"SentinelOne","product":"Singularity","time":"2024-01-02T03:04:05Z","src":"10.0.0.8","dst":"203.0.113.30 443","severity":3,"rule":"TI match","obs":[["domain","c2.example.org","alertInfo.dnsRequest"],["ip","203.0.113.30","alertInfo.tiIndicatorValue"]]}`,
		},
		{
			name: "port of wrong type",
			raw:  `{"alertInfo":{"srcPort":"http"},"ruleInfo":{}}`,
			want: `{"error":"sentinelone: malformed: field alertInfo.srcPort: want port number"}`,
		},
	})
}

func TestSentinelOneDetect(t *testing.T) {
	runDetectCases(t, NewSentinelOne(), []detectCase{
		{`{"alertInfo":{},"ruleInfo":{}}`, true},
		{`{"threatInfo":{},"agentRealtimeInfo":{}}`, true},
		{`{"threatInfo":{}}`, false},
	})
}

func FuzzSentinelOne(f *testing.F) { fuzzParser(f, NewSentinelOne(), "sentinelone") }

// BenchmarkSentinelOne parses every SentinelOne sample record.
func BenchmarkSentinelOne(b *testing.B) { benchParser(b, NewSentinelOne(), "sentinelone", nil) }
