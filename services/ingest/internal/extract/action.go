package extract

import (
	"strings"

	"github.com/vigilsec/vigil/pkg/events"
)

// actions maps vendor action words (lower-case) to sighting actions. Sources: Suricata
// (allowed/blocked), Fortinet (accept, close, deny, blocked, dropped, passthrough, timeout,
// server-rst, client-rst, pass), PAN-OS (allow, deny, drop, reset-*, alert, block-url, ...),
// Cisco ASA (Built, Teardown, Deny, permitted, discarded), CEF act values and EDR verbs.
var actions = map[string]string{
	// allowed
	"allowed": events.ActionAllowed, "allow": events.ActionAllowed, "accept": events.ActionAllowed,
	"accepted": events.ActionAllowed, "pass": events.ActionAllowed, "passed": events.ActionAllowed,
	"passthrough": events.ActionAllowed, "permit": events.ActionAllowed, "permitted": events.ActionAllowed,
	"est-allowed": events.ActionAllowed, "built": events.ActionAllowed, "teardown": events.ActionAllowed,
	"close": events.ActionAllowed, "closed": events.ActionAllowed, "timeout": events.ActionAllowed,
	"server-rst": events.ActionAllowed, "client-rst": events.ActionAllowed, "continue": events.ActionAllowed,
	"override": events.ActionAllowed, "bypass": events.ActionAllowed, "log": events.ActionAllowed,
	"success": events.ActionAllowed, "analytics": events.ActionAllowed, "start": events.ActionAllowed,
	// blocked
	"blocked": events.ActionBlocked, "block": events.ActionBlocked, "deny": events.ActionBlocked,
	"denied": events.ActionBlocked, "drop": events.ActionBlocked, "dropped": events.ActionBlocked,
	"reject": events.ActionBlocked, "rejected": events.ActionBlocked, "reset": events.ActionBlocked,
	"discard": events.ActionBlocked, "discarded": events.ActionBlocked, "refuse": events.ActionBlocked,
	"refused": events.ActionBlocked, "sinkhole": events.ActionBlocked, "block-url": events.ActionBlocked,
	"block-ip": events.ActionBlocked, "block-continue": events.ActionBlocked, "block-override": events.ActionBlocked,
	"override-lockout": events.ActionBlocked, "random-drop": events.ActionBlocked, "drop-icmp": events.ActionBlocked,
	"drop-all-packets": events.ActionBlocked, "syncookie-sent": events.ActionBlocked,
	"quarantined": events.ActionBlocked, "quarantine": events.ActionBlocked, "prevented": events.ActionBlocked,
	"prevent": events.ActionBlocked, "killed": events.ActionBlocked, "kill": events.ActionBlocked,
	"delete": events.ActionBlocked, "deleted": events.ActionBlocked, "clean": events.ActionBlocked,
	"cleaned": events.ActionBlocked, "transformed": events.ActionBlocked, "terminated": events.ActionBlocked,
	// alerted
	"alert": events.ActionAlerted, "alerted": events.ActionAlerted, "detected": events.ActionAlerted,
	"detect": events.ActionAlerted, "detectonly": events.ActionAlerted, "not blocked": events.ActionAlerted,
	"monitor": events.ActionAlerted, "monitored": events.ActionAlerted, "ids:reset": events.ActionAlerted,
	"warning": events.ActionAlerted, "notified": events.ActionAlerted,
}

// Action maps a vendor action word to events.ActionAllowed, ActionBlocked, ActionAlerted or
// ActionUnknown. Case and surrounding spaces are ignored; "reset-*", "drop-*" and "block-*"
// words are blocked.
func Action(word string) string {
	w := strings.ToLower(strings.TrimSpace(word))
	if a, ok := actions[w]; ok {
		return a
	}
	switch {
	case strings.HasPrefix(w, "reset-"), strings.HasPrefix(w, "drop-"), strings.HasPrefix(w, "block-"):
		return events.ActionBlocked
	}
	return events.ActionUnknown
}
