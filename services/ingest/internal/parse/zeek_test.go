package parse

import "testing"

func TestZeekParse(t *testing.T) {
	runParseCases(t, NewZeek(), []parseCase{
		{
			name: "nested id object and ISO ts",
			raw:  `{"_path":"conn","ts":"2024-01-02T03:04:05.25Z","uid":"C1","id":{"orig_h":"10.0.0.1","orig_p":5000,"resp_h":"198.51.100.9","resp_p":22},"proto":"tcp","conn_state":"S0"}`,
			want: `{"kind":"conn","vendor":"Zeek","product":"Zeek","time":"2024-01-02T03:04:05.25Z","src":"10.0.0.1 5000","dst":"198.51.100.9 22","proto":"tcp"}`,
		},
		{
			name: "wrapped http infers tcp",
			raw:  `{"http": {"ts":1402307733.473,"uid":"C2","id.orig_h":"10.0.0.2","id.orig_p":40000,"id.resp_h":"203.0.113.80","id.resp_p":8080,"method":"GET","host":"evil.example:8080","uri":"/x"}}`,
			want: `{"kind":"http","vendor":"Zeek","product":"Zeek","time":"2014-06-09T09:55:33.473Z","src":"10.0.0.2 40000","dst":"203.0.113.80 8080","proto":"tcp","dst_host":"evil.example:8080","obs":[["domain","evil.example:8080","host"],["url","http://evil.example:8080/x","host+uri"]]}`,
		},
		{
			name: "intel domain and file hash",
			raw:  `{"ts":1573030980.5,"uid":"C3","id.orig_h":"10.0.0.3","id.orig_p":1,"id.resp_h":"10.0.0.53","id.resp_p":53,"seen.indicator":"bad.example.org","seen.indicator_type":"Intel::DOMAIN","sources":["feed-a","feed-b"]}`,
			want: `{"kind":"intel","vendor":"Zeek","product":"Zeek","time":"2019-11-06T09:03:00.5Z","src":"10.0.0.3 1","dst":"10.0.0.53 53","rule":"feed-a","obs":[["domain","bad.example.org","seen.indicator"]]}`,
		},
		{
			name: "notice with drop action",
			raw:  `{"ts":1.0,"note":"Scan::Address_Scan","src":"203.0.113.1","p":23,"actions":["Notice::ACTION_LOG","Notice::ACTION_DROP"]}`,
			want: `{"kind":"notice","vendor":"Zeek","product":"Zeek","time":"1970-01-01T00:00:01Z","src":"203.0.113.1","dst":" 23","action":"drop","rule":"Scan::Address_Scan"}`,
		},
		{
			name: "files with sha256",
			raw:  `{"_path":"files","ts":1.0,"fuid":"F1","tx_hosts":["198.51.100.7","198.51.100.8"],"rx_hosts":["10.0.0.9"],"sha256":"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"}`,
			want: `{"kind":"files","vendor":"Zeek","product":"Zeek","time":"1970-01-01T00:00:01Z","src":"198.51.100.7","dst":"10.0.0.9","obs":[["sha256","ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb","sha256"]]}`,
		},
		{
			name: "splunk envelope",
			raw:  `{"preview":false,"result":{"_raw":"{\"ts\":2.0,\"uid\":\"C4\",\"id.orig_h\":\"10.0.0.4\",\"id.resp_h\":\"10.0.0.5\",\"query\":\"x.example\"}","host":"h"}}`,
			want: `{"kind":"dns","vendor":"Zeek","product":"Zeek","time":"1970-01-01T00:00:02Z","src":"10.0.0.4","dst":"10.0.0.5","obs":[["domain","x.example","query"]]}`,
		},
		{
			name: "stats unsupported",
			raw:  `{"_path":"stats","ts":1.0,"peer":"zeek","mem":5}`,
			want: `{"error":"zeek: unsupported: log stats is not read"}`,
		},
		{
			name: "no ts unsupported",
			raw:  `{"uid":"C5","id.orig_h":"10.0.0.1"}`,
			want: `{"error":"zeek: unsupported: no ts member"}`,
		},
		{
			name: "ts of wrong type",
			raw:  `{"ts":[1],"uid":"C6","id.orig_h":"10.0.0.1"}`,
			want: `{"error":"zeek: malformed: field ts: want timestamp"}`,
		},
	})
}

func TestZeekDetect(t *testing.T) {
	runDetectCases(t, NewZeek(), []detectCase{
		{`{"ts":1.5,"uid":"C1","id.orig_h":"1.2.3.4"}`, true},
		{`{"@stream":"conn","ts":1.5,"id_orig_h":"1.2.3.4"}`, true},
		{`{"conn": {"ts":1.5,"uid":"C1"}}`, true},
		{`{"ts":1.5,"note":"Scan::Port_Scan"}`, true},
		{`{"timestamp":"x","event_type":"flow","src_ip":"1.2.3.4","uid":"u","ts":1}`, false},
		{`{"@timestamp":"x","ecs":{"version":"8"},"zeek":{"session_id":"C1"},"ts":1,"uid":"C1"}`, false},
		{`{"ts":1.5}`, false},
	})
}

func FuzzZeek(f *testing.F) { fuzzParser(f, NewZeek(), "zeek") }

// BenchmarkZeek parses every Zeek sample record.
func BenchmarkZeek(b *testing.B) { benchParser(b, NewZeek(), "zeek", nil) }
