package emulator

import (
	"net/http"
	"net/netip"
	"regexp"
	"strings"
)

// otherIP returns an address different from ip, used by ModeWrongIP.
func otherIP(ip string) string {
	if ip == "192.0.2.1" {
		return "192.0.2.2"
	}
	return "192.0.2.1"
}

// parseIP accepts what a real provider would: any textual IP (returned canonical).
func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func (e *Emulator) criminalIP(w http.ResponseWriter, _ *http.Request, ind string, f Fault) {
	addr, ok := parseIP(ind)
	if !ok {
		writeRaw(w, 200, bodyInvalidIPCriminal)
		return
	}
	ip := addr.String()
	k := Profile(ip)
	if k == KindNotFound {
		writeRaw(w, http.StatusNotFound, bodyNotFoundCriminal)
		return
	}
	as := asOf(ip, k)
	if f.Mode == ModeWrongIP {
		rep := criminalIPReport(ip, k, as)
		rep.IP = otherIP(ip)
		writeJSON(w, 200, rep)
		return
	}
	t := e.bodies.get(tmplKey{route: RouteCriminalIP, kind: k, asn: as.asn, cc: as.cc}, func() any {
		return criminalIPReport(ipMark, k, as)
	})
	writeRaw(w, 200, t.render(ip))
}

var domainRE = regexp.MustCompile(`^([a-z0-9-]{1,63}\.)+[a-z0-9-]{1,63}$`)

func (e *Emulator) criminalIPDomain(w http.ResponseWriter, _ *http.Request, ind string, f Fault) {
	d := strings.ToLower(ind)
	if !domainRE.MatchString(d) {
		writeJSON(w, 200, map[string]any{"status": 400, "message": "Invalid Domain."})
		return
	}
	k := Profile(d)
	if k == KindNotFound {
		writeJSON(w, 200, map[string]any{"status": 200, "message": "api success", "data": map[string]any{}})
		return
	}
	result := map[Kind]string{KindSafe: "safe", KindVPN: "safe", KindHosting: "safe", KindTor: "suspicious",
		KindScanner: "malicious", KindCritical: "malicious"}[k]
	if f.Mode == ModeWrongIP {
		d = "other-" + d
	}
	writeJSON(w, 200, map[string]any{"status": 200, "message": "api success", "data": map[string]any{
		"domain": d, "type": "domain", "result": result, "reg_dtime": confirmed, "call_count": 1,
	}})
}

func (e *Emulator) internetDB(w http.ResponseWriter, _ *http.Request, ind string, f Fault) {
	addr, ok := parseIP(ind)
	if !ok {
		writeRaw(w, http.StatusBadRequest, bodyInvalidIPInternetDB)
		return
	}
	ip := addr.String()
	k := Profile(ip)
	if k == KindNotFound {
		writeRaw(w, http.StatusNotFound, bodyNotFoundInternetDB)
		return
	}
	if f.Mode == ModeWrongIP {
		a := internetDBAnswer(ip, k)
		a.IP = otherIP(ip)
		writeJSON(w, 200, a)
		return
	}
	t := e.bodies.get(tmplKey{route: RouteInternetDB, kind: k}, func() any { return internetDBAnswer(ipMark, k) })
	writeRaw(w, 200, t.render(ip))
}

func (e *Emulator) abuseIPDB(w http.ResponseWriter, _ *http.Request, ind string, f Fault) {
	addr, ok := parseIP(ind)
	if !ok {
		writeJSON(w, http.StatusUnprocessableEntity, abuseErr(422, "The ip address must be a valid IPv4 or IPv6 address (e.g. 8.8.8.8 or 2001:4860:4860::8888)."))
		return
	}
	ip := addr.String()
	k := Profile(ip)
	as := asOf(ip, k)
	if f.Mode == ModeWrongIP {
		d := abuseIPDBData(ip, addr.Is4(), k, as)
		d.IPAddress = otherIP(d.IPAddress)
		writeJSON(w, 200, map[string]any{"data": d})
		return
	}
	t := e.bodies.get(tmplKey{route: RouteAbuseIPDB, kind: k, cc: as.cc, v6: !addr.Is4()}, func() any {
		return map[string]any{"data": abuseIPDBData(ipMark, addr.Is4(), k, as)}
	})
	writeRaw(w, 200, t.render(ip))
}

func (e *Emulator) greyNoise(w http.ResponseWriter, _ *http.Request, ind string, f Fault) {
	addr, ok := parseIP(ind)
	if !ok || !addr.Is4() {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Request is not a valid routable IPv4 address"})
		return
	}
	ip := addr.String()
	k := Profile(ip)
	a, observed := greyNoiseAnswer(ipMark, k)
	status := 200
	if !observed {
		status = http.StatusNotFound
	}
	if f.Mode == ModeWrongIP {
		a, _ = greyNoiseAnswer(ip, k)
		a.IP = otherIP(ip)
		writeJSON(w, status, a)
		return
	}
	t := e.bodies.get(tmplKey{route: RouteGreyNoise, kind: k}, func() any { return a })
	writeRaw(w, status, t.render(ip))
}
