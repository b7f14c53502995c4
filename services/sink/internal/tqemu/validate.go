package tqemu

import (
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Value rules per type are [I]: the spec lists the type names but not the
// server's validation. The emulator is deliberately strict on the types
// Vigil writes (IPs, domains, URLs, hashes) so client bugs surface in tests.
var (
	reHex      = regexp.MustCompile(`^[0-9a-fA-F]+$`)
	reLabel    = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$`)
	reCVE      = regexp.MustCompile(`^(?i)CVE-\d{4}-\d{4,}$`)
	reASN      = regexp.MustCompile(`^(?i)(AS)?\d{1,10}$`)
	reMAC      = regexp.MustCompile(`^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$`)
	hashLength = map[string]int{"MD5": 32, "SHA-1": 40, "SHA-256": 64, "SHA-384": 96, "SHA-512": 128}
)

// validateValue returns an error message when value is not acceptable for
// the named type, or "" when it is.
func validateValue(typeName, value string) string {
	if value == "" {
		return "The value field is required."
	}
	if n, ok := hashLength[typeName]; ok {
		if len(value) != n || !reHex.MatchString(value) {
			return "The value is not a valid " + typeName + " hash."
		}
		return ""
	}
	switch typeName {
	case "IP Address":
		a, err := netip.ParseAddr(value)
		if err != nil || !a.Is4() {
			return "The value must be a valid IPv4 address."
		}
	case "IPv6 Address":
		a, err := netip.ParseAddr(value)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "The value must be a valid IPv6 address."
		}
	case "CIDR Block":
		if _, err := netip.ParsePrefix(value); err != nil {
			return "The value must be a valid CIDR block."
		}
	case "FQDN":
		if !validFQDN(value) {
			return "The value must be a valid domain name."
		}
	case "URL":
		if strings.ContainsAny(value, " \t\r\n") {
			return "The value must be a valid URL."
		}
	case "Email Address":
		local, domain, ok := strings.Cut(value, "@")
		if !ok || local == "" || !validFQDN(domain) {
			return "The value must be a valid email address."
		}
	case "CVE":
		if !reCVE.MatchString(value) {
			return "The value must be a valid CVE identifier."
		}
	case "ASN":
		if !reASN.MatchString(value) {
			return "The value must be a valid ASN."
		}
	case "MAC Address":
		if !reMAC.MatchString(value) {
			return "The value must be a valid MAC address."
		}
	}
	return ""
}

func validFQDN(v string) bool {
	v = strings.TrimSuffix(v, ".")
	if len(v) == 0 || len(v) > 253 {
		return false
	}
	labels := strings.Split(v, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !reLabel.MatchString(l) {
			return false
		}
	}
	// An IP address is not a domain.
	_, err := netip.ParseAddr(v)
	return err != nil
}

// validDate reports whether s uses the "YYYY-MM-DD HH:MM:SS" format [V S4].
func validDate(s string) bool {
	_, err := time.Parse(TimeLayout, s)
	return err == nil
}
