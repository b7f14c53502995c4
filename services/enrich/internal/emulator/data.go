package emulator

import (
	"fmt"
	"strings"
)

// Documented JSON shapes (see /work/shared/specs/providers-api.md), filled per profile.

type cipList struct {
	Count int   `json:"count"`
	Data  []any `json:"data"`
}

func newList(items ...any) cipList {
	if items == nil {
		items = []any{}
	}
	return cipList{Count: len(items), Data: items}
}

type cipPort struct {
	AppName         string   `json:"app_name"`
	ConfirmedTime   string   `json:"confirmed_time"`
	Banner          string   `json:"banner"`
	AppVersion      string   `json:"app_version"`
	OpenPortNo      int      `json:"open_port_no"`
	PortStatus      string   `json:"port_status"`
	Protocol        string   `json:"protocol"`
	Socket          string   `json:"socket"`
	Tags            []string `json:"tags"`
	DNSNames        string   `json:"dns_names"`
	IsVulnerability bool     `json:"is_vulnerability"`
}

type cipVulnPort struct {
	Port   int    `json:"port"`
	Socket string `json:"socket"`
}

type cipVuln struct {
	CVEID          string           `json:"cve_id"`
	CVEDescription string           `json:"cve_description"`
	CVSSv2Vector   string           `json:"cvssv2_vector"`
	CVSSv2Score    float64          `json:"cvssv2_score"`
	CVSSv3Vector   string           `json:"cvssv3_vector"`
	CVSSv3Score    float64          `json:"cvssv3_score"`
	AppName        string           `json:"app_name"`
	AppVersion     string           `json:"app_version"`
	OpenPortNoList map[string][]int `json:"open_port_no_list"`
	HaveMorePorts  bool             `json:"have_more_ports"`
	OpenPortNo     []cipVulnPort    `json:"open_port_no"`
}

type cipIssues struct {
	IsVPN          bool `json:"is_vpn"`
	IsCloud        bool `json:"is_cloud"`
	IsTor          bool `json:"is_tor"`
	IsProxy        bool `json:"is_proxy"`
	IsHosting      bool `json:"is_hosting"`
	IsMobile       bool `json:"is_mobile"`
	IsDarkweb      bool `json:"is_darkweb"`
	IsScanner      bool `json:"is_scanner"`
	IsSnort        bool `json:"is_snort"`
	IsAnonymousVPN bool `json:"is_anonymous_vpn"`
}

type cipScore struct {
	Inbound  string `json:"inbound"`
	Outbound string `json:"outbound"`
}

// CriminalIPReport is the /v1/asset/ip/report answer shape.
type CriminalIPReport struct {
	IP              string    `json:"ip"`
	Issues          cipIssues `json:"issues"`
	Score           cipScore  `json:"score"`
	UserSearchCount int       `json:"user_search_count"`
	ProtectedIP     cipList   `json:"protected_ip"`
	Domain          cipList   `json:"domain"`
	Whois           cipList   `json:"whois"`
	Hostname        cipList   `json:"hostname"`
	IDS             cipList   `json:"ids"`
	VPN             cipList   `json:"vpn"`
	AnonymousVPN    cipList   `json:"anonymous_vpn"`
	Webcam          cipList   `json:"webcam"`
	Honeypot        cipList   `json:"honeypot"`
	IPCategory      cipList   `json:"ip_category"`
	Port            cipList   `json:"port"`
	Vulnerability   cipList   `json:"vulnerability"`
	Mobile          cipList   `json:"mobile"`
	Status          int       `json:"status"`
}

const confirmed = "2026-11-20 08:15:00"

var countries = []string{"us", "de", "nl", "fr", "sg", "br", "jp", "gb"}

// asNames is the AS name per profile.
var asNames = map[Kind]string{
	KindSafe: "EXAMPLE-BROADBAND", KindVPN: "EXAMPLE-VPN-HOSTING", KindHosting: "EXAMPLE-CLOUD",
	KindTor: "EXAMPLE-TOR-HOSTING", KindScanner: "EXAMPLE-BULLETPROOF", KindCritical: "EXAMPLE-COLO",
}

// asInfo is the deterministic AS number, name and country of an indicator.
type asInfo struct {
	asn  int64
	name string
	cc   string
}

// asOf returns a deterministic AS number, name and country for an indicator.
func asOf(ip string, k Kind) asInfo {
	h := hash64("as:" + ip)
	return asInfo{asn: int64(64500 + h%100), name: asNames[k], cc: countries[(h>>8)%uint64(len(countries))]}
}

func port(no int, sock, app, proto, version string, vuln bool, tags ...string) cipPort {
	if tags == nil {
		tags = []string{}
	}
	return cipPort{AppName: app, ConfirmedTime: confirmed, Banner: proto + " banner", AppVersion: version,
		OpenPortNo: no, PortStatus: "open", Protocol: proto, Socket: sock, Tags: tags, IsVulnerability: vuln}
}

// portsOf is the open-port set per profile (shared by Criminal IP and InternetDB).
func portsOf(k Kind) []cipPort {
	switch k {
	case KindSafe:
		return []cipPort{port(443, "tcp", "https", "HTTPS", "Unknown", false)}
	case KindVPN:
		return []cipPort{port(1194, "udp", "openvpn", "OpenVPN", "Unknown", false, "VPN")}
	case KindHosting:
		return []cipPort{port(22, "tcp", "ssh", "SSH", "OpenSSH 9.6", false), port(80, "tcp", "nginx", "HTTP", "1.24.0", false, "DevOps")}
	case KindTor:
		return []cipPort{port(9001, "tcp", "tor", "TOR", "Unknown", false)}
	case KindCritical:
		return []cipPort{
			port(22, "tcp", "ssh", "SSH", "OpenSSH 7.4", true),
			port(80, "tcp", "nginx", "HTTP", "1.14.0", true, "Data Leak"),
			port(3389, "tcp", "ms-wbt-server", "RDP", "N/A", false),
		}
	}
	return nil
}

// vulnsOf is the CVE set per profile.
func vulnsOf(k Kind) []cipVuln {
	if k != KindCritical {
		return nil
	}
	mk := func(id string, v3 float64, app, ver string, p int) cipVuln {
		return cipVuln{CVEID: id, CVEDescription: "emulated", CVSSv2Vector: "NETWORK", CVSSv2Score: v3 - 1,
			CVSSv3Vector: "NETWORK", CVSSv3Score: v3, AppName: app, AppVersion: ver,
			OpenPortNoList: map[string][]int{"TCP": {p}, "UDP": {}}, OpenPortNo: []cipVulnPort{{Port: p, Socket: "tcp"}}}
	}
	return []cipVuln{
		mk("CVE-2021-23017", 9.4, "nginx", "1.14.0", 80),
		mk("CVE-2018-15473", 5.3, "openssh", "7.4", 22),
	}
}

// criminalIPReport builds the report for ip (already canonical) with profile k and AS as.
func criminalIPReport(ip string, k Kind, as asInfo) CriminalIPReport {
	asn, asName, cc := as.asn, as.name, as.cc
	r := CriminalIPReport{
		IP: ip, Status: 200,
		Score:       cipScore{Inbound: "Safe", Outbound: "Safe"},
		ProtectedIP: newList(), Domain: newList(), Hostname: newList(), IDS: newList(), VPN: newList(),
		AnonymousVPN: newList(), Webcam: newList(), Honeypot: newList(), IPCategory: newList(), Mobile: newList(),
		Whois: newList(map[string]any{"as_name": asName, "as_no": asn, "city": "Example", "region": "Example",
			"org_name": asName + " Ltd", "postal_code": "", "longitude": 0.0, "latitude": 0.0,
			"org_country_code": cc, "confirmed_time": confirmed}),
	}
	var ports []any
	for _, p := range portsOf(k) {
		ports = append(ports, p)
	}
	r.Port = newList(ports...)
	var vulns []any
	for _, v := range vulnsOf(k) {
		vulns = append(vulns, v)
	}
	r.Vulnerability = newList(vulns...)
	ids := func(class, msg string) cipList {
		return newList(map[string]any{"classification": class, "url": "doc.emergingthreats.net", "message": msg,
			"confirmed_time": confirmed, "source_system": "./snort-2.9.0 9949"})
	}
	switch k {
	case KindVPN:
		r.Score = cipScore{Inbound: "Moderate", Outbound: "Low"}
		r.Issues.IsVPN, r.Issues.IsAnonymousVPN = true, true
		r.VPN = newList(map[string]any{"vpn_name": "vpngate", "vpn_url": "vpn.example", "vpn_source_url": "https://www.vpngate.net",
			"socket_type": "udp", "confirmed_time": confirmed})
	case KindHosting:
		r.Score = cipScore{Inbound: "Low", Outbound: "Low"}
		r.Issues.IsHosting, r.Issues.IsCloud = true, true
		r.IPCategory = newList(map[string]any{"detect_source": "", "type": "cloud service", "detect_info": map[string]any{}, "confirmed_time": confirmed})
	case KindTor:
		r.Score = cipScore{Inbound: "Dangerous", Outbound: "Dangerous"}
		r.Issues.IsTor, r.Issues.IsDarkweb = true, true
		r.IPCategory = newList(map[string]any{"detect_source": "", "type": "tor", "detect_info": map[string]any{}, "confirmed_time": confirmed})
	case KindScanner:
		r.Score = cipScore{Inbound: "Dangerous", Outbound: "Moderate"}
		r.Issues.IsScanner, r.Issues.IsSnort = true, true
		r.IDS = ids("attempted-recon", "ET SCAN Suspicious inbound to mySQL port 3306")
		r.Honeypot = newList(map[string]any{"ip_address": ip, "log_date": "2026-11-19", "dst_port": 22,
			"message": "SSH-2.0-Go", "user_agent": "-", "protocol_type": "tcp", "confirmed_time": "2026-11-19"})
		r.IPCategory = newList(map[string]any{"detect_source": "", "type": "scanner", "detect_info": map[string]any{}, "confirmed_time": confirmed})
	case KindCritical:
		r.Score = cipScore{Inbound: "Critical", Outbound: "Critical"}
		r.Issues.IsSnort = true
		r.IDS = ids("botcc", "ET CNC Feodo Tracker Reported CnC Server")
	}
	return r
}

// InternetDBAnswer is the InternetDB /{ip} answer shape.
type InternetDBAnswer struct {
	IP        string   `json:"ip"`
	Ports     []int    `json:"ports"`
	Hostnames []string `json:"hostnames"`
	CPEs      []string `json:"cpes"`
	Tags      []string `json:"tags"`
	Vulns     []string `json:"vulns"`
}

func internetDBAnswer(ip string, k Kind) InternetDBAnswer {
	a := InternetDBAnswer{IP: ip, Ports: []int{}, Hostnames: []string{}, CPEs: []string{}, Tags: []string{}, Vulns: []string{}}
	for _, p := range portsOf(k) {
		a.Ports = append(a.Ports, p.OpenPortNo)
	}
	for _, v := range vulnsOf(k) {
		a.Vulns = append(a.Vulns, v.CVEID)
	}
	switch k {
	case KindVPN:
		a.Tags = append(a.Tags, "vpn")
	case KindHosting:
		a.Tags = append(a.Tags, "cloud")
		a.Hostnames = append(a.Hostnames, "host-"+strings.ReplaceAll(ip, ".", "-")+".cloud.example")
	case KindTor:
		a.Tags = append(a.Tags, "tor")
	case KindScanner:
		a.Tags = append(a.Tags, "scanner")
	case KindCritical:
		a.Tags = append(a.Tags, "eol-product", "self-signed")
		a.CPEs = append(a.CPEs, "cpe:/a:openbsd:openssh:7.4", "cpe:/a:f5:nginx:1.14.0")
	}
	return a
}

// AbuseIPDBData is the data object of the AbuseIPDB /api/v2/check answer.
type AbuseIPDBData struct {
	IPAddress            string   `json:"ipAddress"`
	IsPublic             bool     `json:"isPublic"`
	IPVersion            int      `json:"ipVersion"`
	IsWhitelisted        *bool    `json:"isWhitelisted"`
	AbuseConfidenceScore int      `json:"abuseConfidenceScore"`
	CountryCode          *string  `json:"countryCode"`
	UsageType            *string  `json:"usageType"`
	ISP                  string   `json:"isp"`
	Domain               *string  `json:"domain"`
	Hostnames            []string `json:"hostnames"`
	IsTor                bool     `json:"isTor"`
	TotalReports         int      `json:"totalReports"`
	NumDistinctUsers     int      `json:"numDistinctUsers"`
	LastReportedAt       *string  `json:"lastReportedAt"`
}

func abuseIPDBData(ip string, is4 bool, k Kind, as asInfo) AbuseIPDBData {
	asName, cc := as.name, as.cc
	ver := 4
	if !is4 {
		ver = 6
	}
	score := map[Kind]int{KindSafe: 0, KindVPN: 25, KindHosting: 10, KindTor: 100, KindScanner: 80, KindCritical: 100}[k]
	reports := map[Kind]int{KindVPN: 3, KindHosting: 1, KindTor: 250, KindScanner: 120, KindCritical: 40}[k]
	usage := "Fixed Line ISP"
	if k == KindHosting || k == KindVPN || k == KindCritical {
		usage = "Data Center/Web Hosting/Transit"
	}
	upper := strings.ToUpper(cc)
	domain := strings.ToLower(asName) + ".example"
	white := false
	d := AbuseIPDBData{IPAddress: ip, IsPublic: true, IPVersion: ver, IsWhitelisted: &white, AbuseConfidenceScore: score,
		CountryCode: &upper, UsageType: &usage, ISP: asName + " Ltd", Domain: &domain, Hostnames: []string{},
		IsTor: k == KindTor, TotalReports: reports, NumDistinctUsers: (reports + 1) / 2}
	if k == KindNotFound {
		d.CountryCode, d.UsageType, d.Domain, d.ISP = nil, nil, nil, ""
	}
	if reports > 0 {
		last := "2026-11-30T12:00:00+00:00"
		d.LastReportedAt = &last
	}
	return d
}

// GreyNoiseAnswer is the GreyNoise /v3/community/{ip} answer shape (200 and 404).
type GreyNoiseAnswer struct {
	IP             string `json:"ip"`
	Noise          bool   `json:"noise"`
	RIOT           bool   `json:"riot"`
	Classification string `json:"classification,omitempty"`
	Name           string `json:"name,omitempty"`
	Link           string `json:"link,omitempty"`
	LastSeen       string `json:"last_seen,omitempty"`
	Message        string `json:"message"`
}

// greyNoiseNotObserved is the documented 404 message.
const greyNoiseNotObserved = "IP not observed scanning the internet or contained in RIOT data set."

// greyNoiseAnswer returns the answer and whether GreyNoise has observed the IP.
func greyNoiseAnswer(ip string, k Kind) (GreyNoiseAnswer, bool) {
	link := fmt.Sprintf("https://viz.greynoise.io/ip/%s", ip)
	switch k {
	case KindHosting:
		return GreyNoiseAnswer{IP: ip, RIOT: true, Classification: "benign", Name: "Example Cloud", Link: link, LastSeen: "2026-11-28", Message: "Success"}, true
	case KindTor:
		return GreyNoiseAnswer{IP: ip, Noise: true, Classification: "unknown", Name: "Tor", Link: link, LastSeen: "2026-11-29", Message: "Success"}, true
	case KindScanner, KindCritical:
		return GreyNoiseAnswer{IP: ip, Noise: true, Classification: "malicious", Name: "unknown", Link: link, LastSeen: "2026-11-30", Message: "Success"}, true
	}
	return GreyNoiseAnswer{IP: ip, Message: greyNoiseNotObserved}, false
}
