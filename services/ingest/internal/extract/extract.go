// Package extract turns parsed Events into canonical indicator Observations.
//
// It decides what is an indicator: every external IP address, domain, URL and file hash of an
// Event becomes one Observation (deduplicated within the record by key). Internal addresses
// and names never become indicators; they describe the asset (Sighting.AssetIP/AssetHost).
package extract

import (
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
	"github.com/vigilsec/vigil/services/ingest/internal/parse"
)

// Reasons for dropping an indicator candidate, the keys of Extract's dropped map.
const (
	DropInternal = "internal" // internal address or name: it is the asset, not an indicator
	DropInvalid  = "invalid"  // not a valid IP, domain, URL or hash
)

// Matcher is an allow-list: it reports whether an indicator is listed. Implementations must be
// safe for concurrent use.
type Matcher interface {
	Match(ind events.Indicator) (events.ListMatch, bool)
}

// Config configures an Extractor. Nil fields take the defaults.
type Config struct {
	Internal         *indicator.Nets             // internal networks; nil: indicator.DefaultNets()
	InternalSuffixes *indicator.InternalSuffixes // internal DNS suffixes; nil: the defaults
	Allow            Matcher                     // optional allow-list; matches are tagged, not dropped
}

// Meta says where a record came from.
type Meta struct {
	Topic      string
	Partition  int32
	Offset     int64
	Format     string // parser name
	IngestTime time.Time
}

// Extractor turns Events into Observations. It is safe for concurrent use.
type Extractor struct {
	nets     *indicator.Nets
	suffixes *indicator.InternalSuffixes
	allow    Matcher
}

// New returns an Extractor.
func New(cfg Config) *Extractor {
	x := &Extractor{nets: cfg.Internal, suffixes: cfg.InternalSuffixes, allow: cfg.Allow}
	if x.nets == nil {
		x.nets = indicator.DefaultNets()
	}
	if x.suffixes == nil {
		x.suffixes = indicator.DefaultInternalSuffixes()
	}
	return x
}

// end is one side of a connection after classification.
type end struct {
	addr     netip.Addr
	valid    bool
	internal bool
}

func (x *Extractor) classifyIP(s string) (end, bool) {
	if s == "" {
		return end{}, false
	}
	a, err := indicator.ParseIP(s)
	if err != nil {
		return end{}, true
	}
	if a.IsUnspecified() { // 0.0.0.0 and :: stand for "no address"
		return end{}, false
	}
	return end{addr: a, valid: true, internal: x.nets.Contains(a)}, true
}

// Extract returns the observations of ev and how many candidates were dropped, by reason
// (nil when none were). Allow-listed indicators are kept with Observation.Allowlist set.
func (x *Extractor) Extract(ev parse.Event, meta Meta) ([]events.Observation, map[string]int) {
	var dropped map[string]int
	obs := x.appendExtract(nil, ev, meta, &dropped)
	return obs, dropped
}

// AppendExtract appends the observations of ev to dst, like Extract, without counting the
// dropped candidates. Reusing dst across records saves an allocation per record.
func (x *Extractor) AppendExtract(dst []events.Observation, ev parse.Event, meta Meta) []events.Observation {
	return x.appendExtract(dst, ev, meta, nil)
}

// appendExtract appends the observations of ev to obs; dropped (when not nil) counts the
// dropped candidates by reason.
func (x *Extractor) appendExtract(obs []events.Observation, ev parse.Event, meta Meta, dropped *map[string]int) []events.Observation {
	first := len(obs)
	drop := func(reason string) {
		if dropped == nil {
			return
		}
		if *dropped == nil {
			*dropped = make(map[string]int, 2)
		}
		(*dropped)[reason]++
	}

	src, hasSrc := x.classifyIP(ev.SrcIP)
	dst, hasDst := x.classifyIP(ev.DstIP)

	direction := events.DirectionUnknown
	if src.valid && dst.valid {
		switch {
		case src.internal && !dst.internal:
			direction = events.DirectionOutbound
		case !src.internal && dst.internal:
			direction = events.DirectionInbound
		case src.internal && dst.internal:
			direction = events.DirectionInternal
		}
	}

	sighting := events.Sighting{
		User:      ev.User,
		Direction: direction,
		Action:    Action(ev.Action),
		Severity:  int32(min(max(ev.Severity, 0), 4)),
		Rule:      ev.Rule,
		SrcPort:   int32(ev.SrcPort),
		DstPort:   int32(ev.DstPort),
		Protocol:  strings.ToLower(ev.Protocol),
		Count:     1,
	}
	// The asset is the internal end; its host name describes the asset and is never an
	// indicator. Without addresses, the source host (an EDR's device) is the asset.
	srcHost, dstHost := ev.SrcHost, ev.DstHost
	switch {
	case src.valid && src.internal:
		sighting.AssetIP = src.addr.String()
		sighting.AssetHost = x.assetHost(srcHost)
		srcHost = ""
	case dst.valid && dst.internal:
		sighting.AssetIP = dst.addr.String()
		sighting.AssetHost = x.assetHost(dstHost)
		dstHost = ""
	case !hasSrc && !hasDst:
		sighting.AssetHost = x.assetHost(srcHost)
		srcHost = ""
	}

	eventTime := ev.Time
	if eventTime.IsZero() {
		eventTime = meta.IngestTime
	}
	base := events.Observation{
		EventTime:  eventTime,
		IngestTime: meta.IngestTime,
		Producer: events.Producer{
			Topic: meta.Topic, Partition: meta.Partition, Offset: meta.Offset,
			Format: meta.Format, Vendor: ev.Vendor, Product: ev.Product,
		},
		Sighting: sighting,
	}

	emit := func(ind events.Indicator, field string) {
		for i := first; i < len(obs); i++ {
			if obs[i].Indicator == ind {
				return
			}
		}
		o := base
		o.Indicator = ind
		o.Field = field
		if x.allow != nil {
			if m, ok := x.allow.Match(ind); ok {
				o.Allowlist = &m
			}
		}
		obs = append(obs, o)
	}
	ipEnd := func(e end, present bool, field string) {
		switch {
		case !present:
		case !e.valid:
			drop(DropInvalid)
		case e.internal:
			drop(DropInternal)
		default:
			emit(events.Indicator{Type: indicator.IPType(e.addr), Value: e.addr.String()}, field)
		}
	}
	ipEnd(src, hasSrc, "src_ip")
	ipEnd(dst, hasDst, "dst_ip")

	candidate := func(kind, value, field string) {
		ind, reason := x.canonical(kind, value)
		if reason != "" {
			drop(reason)
			return
		}
		emit(ind, field)
	}
	if srcHost != "" {
		candidate("host", srcHost, "src_host")
	}
	if dstHost != "" {
		candidate("host", dstHost, "dst_host")
	}
	for _, o := range ev.Observables {
		candidate(o.Kind, o.Value, o.Field)
	}
	return obs
}

// assetHost returns name when it is usable as the asset's host name.
func (x *Extractor) assetHost(name string) string {
	name = strings.TrimSpace(name)
	if name == "" || strings.ContainsAny(name, " /") {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// canonical canonicalises one candidate, or says why it is dropped. Kind "host" is an IP
// literal or a domain.
func (x *Extractor) canonical(kind, value string) (events.Indicator, string) {
	switch kind {
	case "ip", events.TypeIPv4, events.TypeIPv6:
		e, _ := x.classifyIP(value)
		switch {
		case !e.valid:
			return events.Indicator{}, DropInvalid
		case e.internal:
			return events.Indicator{}, DropInternal
		}
		return events.Indicator{Type: indicator.IPType(e.addr), Value: e.addr.String()}, ""
	case "host", events.TypeDomain:
		if a, err := indicator.ParseIP(value); err == nil {
			return x.canonical("ip", a.String())
		}
		if x.internalName(value) {
			return events.Indicator{}, DropInternal
		}
		ind, err := indicator.Canonical(events.TypeDomain, value)
		if err != nil {
			return events.Indicator{}, DropInvalid
		}
		return ind, ""
	case events.TypeURL:
		ind, err := indicator.Canonical(events.TypeURL, value)
		if err != nil {
			if x.internalURL(value) {
				return events.Indicator{}, DropInternal
			}
			return events.Indicator{}, DropInvalid
		}
		if x.internalURL(ind.Value) {
			return events.Indicator{}, DropInternal
		}
		return ind, ""
	default:
		ind, err := indicator.Canonical(kind, value)
		if err != nil {
			return events.Indicator{}, DropInvalid
		}
		return ind, ""
	}
}

// internalName reports whether a host name is internal: a single label or an internal suffix.
func (x *Extractor) internalName(name string) bool {
	name = strings.TrimSuffix(indicator.Refang(name), ".")
	if name == "" {
		return false
	}
	return !strings.Contains(name, ".") || x.suffixes.Match(name)
}

// internalURL reports whether a URL's host is an internal address or name.
func (x *Extractor) internalURL(raw string) bool {
	u, err := url.Parse(indicator.Refang(raw))
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "" {
		return false
	}
	if a, err := indicator.ParseIP(h); err == nil {
		return x.nets.Contains(a)
	}
	return x.internalName(h)
}
