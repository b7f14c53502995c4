package parse

import (
	"bytes"
	"testing"
)

func TestSuricataEVEParse(t *testing.T) {
	runParseCases(t, NewSuricataEVE(), []parseCase{
		{
			name: "alert blocked with sid only",
			raw:  `{"timestamp":"2024-01-02T03:04:05.5+0000","event_type":"alert","src_ip":"10.0.0.1","src_port":1234,"dest_ip":"203.0.113.5","dest_port":80,"proto":"TCP","alert":{"action":"blocked","signature_id":2019401,"severity":2}}`,
			want: `{"kind":"alert","vendor":"Suricata","product":"EVE","time":"2024-01-02T03:04:05.5Z","src":"10.0.0.1 1234","dst":"203.0.113.5 80","proto":"tcp","action":"blocked","severity":2,"rule":"sid:2019401"}`,
		},
		{
			name: "dns v2 answers and grouped",
			raw:  `{"timestamp":"2024-01-02T03:04:05Z","event_type":"dns","src_ip":"10.0.0.53","dest_ip":"10.0.0.1","proto":"UDP","dns":{"version":2,"type":"answer","rrname":"www.example.com","answers":[{"rrname":"www.example.com","rrtype":"CNAME","rdata":"edge.example.net"},{"rrname":"edge.example.net","rdata":"192.0.2.7","rrtype":"A"},{"rrtype":"TXT","rdata":"v=spf1"}],"grouped":{"AAAA":["2001:db8::7"],"TXT":["x"]}}}`,
			want: `{"kind":"dns","vendor":"Suricata","product":"EVE","time":"2024-01-02T03:04:05Z","src":"10.0.0.53","dst":"10.0.0.1","proto":"udp","obs":[["domain","www.example.com","dns.rrname"],["domain","edge.example.net","dns.answers.rdata"],["ip","192.0.2.7","dns.answers.rdata"],["ip","2001:db8::7","dns.grouped"]]}`,
		},
		{
			name: "dns v3 queries",
			raw:  `{"timestamp":"2024-01-02T03:04:05Z","event_type":"dns","src_ip":"10.0.0.1","dest_ip":"10.0.0.53","dns":{"queries":[{"rrname":"a.example.org","rrtype":"A"}]}}`,
			want: `{"kind":"dns","vendor":"Suricata","product":"EVE","time":"2024-01-02T03:04:05Z","src":"10.0.0.1","dst":"10.0.0.53","obs":[["domain","a.example.org","dns.rrname"]]}`,
		},
		{
			name: "http with port and IPv6 host",
			raw:  `{"timestamp":"2024-01-02T03:04:05Z","event_type":"http","src_ip":"2001:db8::1","dest_ip":"2001:db8::2","dest_port":8080,"proto":"TCP","http":{"hostname":"2001:db8::2","http_port":8080,"url":"/a?b=c"}}`,
			want: `{"kind":"http","vendor":"Suricata","product":"EVE","time":"2024-01-02T03:04:05Z","src":"2001:db8::1","dst":"2001:db8::2 8080","proto":"tcp","obs":[["url","http://[2001:db8::2]:8080/a?b=c","http.url"],["ip","2001:db8::2","http.hostname"]]}`,
		},
		{
			name: "drop and anomaly",
			raw:  `{"timestamp":"2024-01-02T03:04:05Z","event_type":"drop","src_ip":"198.51.100.1","dest_ip":"10.0.0.1","proto":"6","anomaly":{"event":"INVALID_IPV4_ADDRESS"}}`,
			want: `{"kind":"drop","vendor":"Suricata","product":"EVE","time":"2024-01-02T03:04:05Z","src":"198.51.100.1","dst":"10.0.0.1","proto":"tcp","action":"drop","rule":"INVALID_IPV4_ADDRESS"}`,
		},
		{
			name: "stats unsupported",
			raw:  `{"timestamp":"2024-01-02T03:04:05Z","event_type":"stats","stats":{"uptime":5}}`,
			want: `{"error":"suricata_eve: unsupported: event_type stats carries no addresses"}`,
		},
		{
			name: "port of wrong type",
			raw:  `{"timestamp":"2024-01-02T03:04:05Z","event_type":"flow","src_ip":"10.0.0.1","src_port":"abc"}`,
			want: `{"error":"suricata_eve: malformed: field src_port: want port number"}`,
		},
		{
			name: "object where text expected",
			raw:  `{"timestamp":"2024-01-02T03:04:05Z","event_type":{"x":1},"src_ip":"10.0.0.1"}`,
			want: `{"error":"suricata_eve: malformed: field event_type: want string"}`,
		},
		{
			name: "port out of range",
			raw:  `{"timestamp":"2024-01-02T03:04:05Z","event_type":"flow","src_ip":"10.0.0.1","dest_port":70000}`,
			want: `{"error":"suricata_eve: malformed: field dest_port: want port number"}`,
		},
	})
}

func TestSuricataEVEDetect(t *testing.T) {
	runDetectCases(t, NewSuricataEVE(), []detectCase{
		{`{"timestamp":"x","event_type":"alert","src_ip":"1.2.3.4"}`, true},
		{`{"timestamp" : "x", "event_type" : "stats"}`, true},
		{`{"@timestamp":"x","ecs":{"version":"8"},"suricata":{"eve":{"event_type":"alert","timestamp":"x"}}}`, false},
		{`{"ts":1.5,"uid":"C1","id.orig_h":"1.2.3.4"}`, false},
		{`<13>Jan 1 CEF:0|x|y|1|2|3|4|`, false},
	})
}

func FuzzSuricataEVE(f *testing.F) { fuzzParser(f, NewSuricataEVE(), "suricata_eve") }

// BenchmarkSuricataEVE measures the benchmark format on alert and flow lines.
func BenchmarkSuricataEVE(b *testing.B) {
	benchParser(b, NewSuricataEVE(), "suricata_eve", func(r []byte) bool {
		return bytes.Contains(r, []byte(`"event_type":"alert"`)) || bytes.Contains(r, []byte(`"event_type":"flow"`))
	})
}

// BenchmarkSuricataEVEAll parses every sample record (all event types).
func BenchmarkSuricataEVEAll(b *testing.B) { benchParser(b, NewSuricataEVE(), "suricata_eve", nil) }
