package events

import (
	"time"

	"github.com/linkedin/goavro/v2"
)

// The goavro native mapping that Encode* used before the direct encoder (fast.go); kept as the
// reference the tests compare the direct encoder with, byte for byte.

func ts(t time.Time) time.Time {
	if t.IsZero() {
		return time.UnixMilli(0).UTC()
	}
	return t
}

func optStr(s string) any {
	if s == "" {
		return nil
	}
	return goavro.Union("string", s)
}

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
func indicatorNative(i Indicator) map[string]any {
	return map[string]any{"type": i.Type, "value": i.Value}
}
func observationNative(o *Observation) map[string]any {
	var allow any
	if o.Allowlist != nil {
		allow = goavro.Union("io.vigil.events.ListMatch", map[string]any{"list": o.Allowlist.List, "reason": o.Allowlist.Reason})
	}
	count := o.Sighting.Count
	if count < 1 {
		count = 1
	}
	return map[string]any{
		"indicator":   indicatorNative(o.Indicator),
		"field":       o.Field,
		"event_time":  ts(o.EventTime),
		"ingest_time": ts(o.IngestTime),
		"producer": map[string]any{
			"topic": o.Producer.Topic, "partition": o.Producer.Partition, "offset": o.Producer.Offset,
			"format": o.Producer.Format, "vendor": optStr(o.Producer.Vendor), "product": optStr(o.Producer.Product),
		},
		"sighting": map[string]any{
			"asset_ip": optStr(o.Sighting.AssetIP), "asset_host": optStr(o.Sighting.AssetHost),
			"user": optStr(o.Sighting.User), "direction": o.Sighting.Direction, "action": o.Sighting.Action,
			"severity": o.Sighting.Severity, "rule": optStr(o.Sighting.Rule), "src_port": o.Sighting.SrcPort,
			"dst_port": o.Sighting.DstPort, "protocol": optStr(o.Sighting.Protocol), "count": count,
		},
		"allowlist": allow,
	}
}

func enrichmentNative(e *Enrichment) map[string]any {
	results := make([]any, len(e.Results))
	for i, r := range e.Results {
		fields := make(map[string]any, len(r.Fields))
		for k, v := range r.Fields {
			fields[k] = v
		}
		var cached time.Time
		if !r.CachedAt.IsZero() {
			cached = r.CachedAt
		}
		results[i] = map[string]any{
			"provider": r.Provider, "status": r.Status, "error": optStr(r.Error),
			"fetched_at": ts(r.FetchedAt), "cached_at": ts(cached), "ttl_seconds": int32(r.TTL / time.Second),
			"fields": fields,
		}
	}
	x := &e.Exposure
	ports := make([]any, len(x.OpenPorts))
	for i, p := range x.OpenPorts {
		ports[i] = map[string]any{"port": p.Port, "protocol": p.Protocol, "service": p.Service, "version": p.Version,
			"vulnerable": p.Vulnerable, "tags": strs(p.Tags)}
	}
	cves := make([]any, len(x.CVEs))
	for i, c := range x.CVEs {
		ps := make([]any, len(c.Ports))
		for j, p := range c.Ports {
			ps[j] = p
		}
		cves[i] = map[string]any{"id": c.ID, "cvss": c.CVSS, "ports": ps}
	}
	return map[string]any{
		"observation": observationNative(&e.Observation),
		"results":     results,
		"exposure": map[string]any{
			"malicious": x.Malicious, "inbound_score": x.InboundScore, "outbound_score": x.OutboundScore,
			"vpn": x.VPN, "proxy": x.Proxy, "tor": x.Tor, "hosting": x.Hosting, "cloud": x.Cloud,
			"scanner": x.Scanner, "mobile": x.Mobile, "darkweb": x.Darkweb,
			"open_ports": ports, "cves": cves, "asn": x.ASN, "as_name": optStr(x.ASName), "org": optStr(x.Org),
			"country": optStr(x.Country), "abuse_confidence": x.AbuseConfidence,
			"greynoise_class": optStr(x.GreyNoiseClass), "categories": strs(x.Categories),
			"first_seen": ts(x.FirstSeen), "last_seen": ts(x.LastSeen),
		},
		"enriched_at": ts(e.EnrichedAt),
	}
}

func verdictNative(v *Verdict) map[string]any {
	reasons := make([]any, len(v.Reasons))
	for i, r := range v.Reasons {
		reasons[i] = map[string]any{"code": r.Code, "text": r.Text, "weight": r.Weight}
	}
	attrs := make([]any, len(v.Attributes))
	for i, a := range v.Attributes {
		attrs[i] = map[string]any{"name": a.Name, "value": a.Value}
	}
	s := &v.Sightings
	return map[string]any{
		"indicator": indicatorNative(v.Indicator), "priority": v.Priority, "level": v.Level, "action": v.Action,
		"reasons": reasons, "policy_version": v.PolicyVersion, "previous_priority": v.PreviousPriority,
		"priority_without_exposure": v.PriorityWithoutExposure, "exposure_changed": v.ExposureChanged,
		"sightings": map[string]any{
			"count": s.Count, "count_1h": s.Count1h, "count_24h": s.Count24h, "count_7d": s.Count7d,
			"distinct_assets": s.DistinctAssets, "first_seen": ts(s.FirstSeen), "last_seen": ts(s.LastSeen),
			"allowed": s.Allowed, "blocked": s.Blocked, "alerted": s.Alerted, "blocked_share": s.BlockedShare,
			"max_severity": s.MaxSeverity,
		},
		"attributes": attrs, "tags": strs(v.Tags), "sources": strs(v.Sources), "set_score": v.SetScore,
		"description": v.Description, "event_time": ts(v.EventTime), "decided_at": ts(v.DecidedAt),
		"valid_until": ts(v.ValidUntil),
	}
}

func feedbackNative(f *Feedback) map[string]any {
	return map[string]any{
		"indicator": indicatorNative(f.Indicator), "threatq_id": f.ThreatQID, "kind": f.Kind,
		"new_status": optStr(f.NewStatus), "previous_status": optStr(f.PreviousStatus), "new_score": f.NewScore,
		"reason": optStr(f.Reason), "analyst": optStr(f.Analyst), "vigil_action": f.VigilAction,
		"vigil_priority": f.VigilPriority, "changed_at": ts(f.ChangedAt),
	}
}

func optBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return goavro.Union("bytes", b)
}

func deadLetterNative(d *DeadLetter) map[string]any {
	hs := make([]any, len(d.Headers))
	for i, h := range d.Headers {
		v := h.Value
		if v == nil {
			v = []byte{}
		}
		hs[i] = map[string]any{"key": h.Key, "value": v}
	}
	return map[string]any{
		"key": optBytes(d.Key), "value": optBytes(d.Value), "headers": hs, "source_topic": d.SourceTopic,
		"source_partition": d.SourcePartition, "source_offset": d.SourceOffset, "stage": d.Stage,
		"error_class": d.ErrorClass, "message": d.Message, "attempts": d.Attempts, "time": ts(d.Time),
	}
}
