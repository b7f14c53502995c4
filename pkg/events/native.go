package events

import (
	"context"
	"encoding/binary"
	"time"
)

// Conversions from goavro's native form to the Go types, used to decode records written with an
// older writer schema. Decoders read with defaults, so a record written by an older schema
// (missing fields) decodes into zero values or the schema default. Records of the current
// schemas never get here: fast.go encodes and decodes them directly.

func fromTS(v any) time.Time {
	t, ok := v.(time.Time)
	if !ok || t.UnixMilli() == 0 {
		return time.Time{}
	}
	return t.UTC()
}

func fromOptStr(v any) string {
	switch t := v.(type) {
	case map[string]any:
		s, _ := t["string"].(string)
		return s
	case string:
		return t
	}
	return ""
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }
func i32(m map[string]any, k string, def int32) int32 {
	if v, ok := m[k].(int32); ok {
		return v
	}
	return def
}
func i64(m map[string]any, k string, def int64) int64 {
	if v, ok := m[k].(int64); ok {
		return v
	}
	return def
}
func f64(m map[string]any, k string, def float64) float64 {
	if v, ok := m[k].(float64); ok {
		return v
	}
	return def
}
func boolean(m map[string]any, k string) bool { b, _ := m[k].(bool); return b }
func rec(m map[string]any, k string) map[string]any {
	r, _ := m[k].(map[string]any)
	if r == nil {
		return map[string]any{}
	}
	return r
}
func arr(m map[string]any, k string) []any { a, _ := m[k].([]any); return a }

func fromStrs(a []any) []string {
	if len(a) == 0 {
		return nil
	}
	out := make([]string, 0, len(a))
	for _, v := range a {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func indicatorFrom(m map[string]any) Indicator {
	return Indicator{Type: str(m, "type"), Value: str(m, "value")}
}

func observationFrom(m map[string]any) Observation {
	p := rec(m, "producer")
	s := rec(m, "sighting")
	o := Observation{
		Indicator:  indicatorFrom(rec(m, "indicator")),
		Field:      str(m, "field"),
		EventTime:  fromTS(m["event_time"]),
		IngestTime: fromTS(m["ingest_time"]),
		Producer: Producer{
			Topic: str(p, "topic"), Partition: i32(p, "partition", 0), Offset: i64(p, "offset", 0),
			Format: str(p, "format"), Vendor: fromOptStr(p["vendor"]), Product: fromOptStr(p["product"]),
		},
		Sighting: Sighting{
			AssetIP: fromOptStr(s["asset_ip"]), AssetHost: fromOptStr(s["asset_host"]), User: fromOptStr(s["user"]),
			Direction: str(s, "direction"), Action: str(s, "action"), Severity: i32(s, "severity", 0),
			Rule: fromOptStr(s["rule"]), SrcPort: i32(s, "src_port", 0), DstPort: i32(s, "dst_port", 0),
			Protocol: fromOptStr(s["protocol"]), Count: i32(s, "count", 1),
		},
	}
	if u, ok := m["allowlist"].(map[string]any); ok {
		for _, v := range u {
			if lm, ok := v.(map[string]any); ok {
				o.Allowlist = &ListMatch{List: str(lm, "list"), Reason: str(lm, "reason")}
			}
		}
	}
	return o
}

func enrichmentFrom(m map[string]any) Enrichment {
	e := Enrichment{Observation: observationFrom(rec(m, "observation")), EnrichedAt: fromTS(m["enriched_at"])}
	for _, rv := range arr(m, "results") {
		r, _ := rv.(map[string]any)
		if r == nil {
			continue
		}
		var fields map[string]string
		if fm, ok := r["fields"].(map[string]any); ok && len(fm) > 0 {
			fields = make(map[string]string, len(fm))
			for k, v := range fm {
				fields[k], _ = v.(string)
			}
		}
		e.Results = append(e.Results, ProviderResult{
			Provider: str(r, "provider"), Status: str(r, "status"), Error: fromOptStr(r["error"]),
			FetchedAt: fromTS(r["fetched_at"]), CachedAt: fromTS(r["cached_at"]),
			TTL: time.Duration(i32(r, "ttl_seconds", 0)) * time.Second, Fields: fields,
		})
	}
	x := rec(m, "exposure")
	e.Exposure = Exposure{
		Malicious: boolean(x, "malicious"), InboundScore: i32(x, "inbound_score", 0), OutboundScore: i32(x, "outbound_score", 0),
		VPN: boolean(x, "vpn"), Proxy: boolean(x, "proxy"), Tor: boolean(x, "tor"), Hosting: boolean(x, "hosting"),
		Cloud: boolean(x, "cloud"), Scanner: boolean(x, "scanner"), Mobile: boolean(x, "mobile"), Darkweb: boolean(x, "darkweb"),
		ASN: i64(x, "asn", 0), ASName: fromOptStr(x["as_name"]), Org: fromOptStr(x["org"]), Country: fromOptStr(x["country"]),
		AbuseConfidence: i32(x, "abuse_confidence", -1), GreyNoiseClass: fromOptStr(x["greynoise_class"]),
		Categories: fromStrs(arr(x, "categories")), FirstSeen: fromTS(x["first_seen"]), LastSeen: fromTS(x["last_seen"]),
	}
	for _, pv := range arr(x, "open_ports") {
		p, _ := pv.(map[string]any)
		if p == nil {
			continue
		}
		e.Exposure.OpenPorts = append(e.Exposure.OpenPorts, Port{Port: i32(p, "port", 0), Protocol: str(p, "protocol"),
			Service: str(p, "service"), Version: str(p, "version"), Vulnerable: boolean(p, "vulnerable"), Tags: fromStrs(arr(p, "tags"))})
	}
	for _, cv := range arr(x, "cves") {
		c, _ := cv.(map[string]any)
		if c == nil {
			continue
		}
		cve := CVE{ID: str(c, "id"), CVSS: f64(c, "cvss", 0)}
		for _, p := range arr(c, "ports") {
			if n, ok := p.(int32); ok {
				cve.Ports = append(cve.Ports, n)
			}
		}
		e.Exposure.CVEs = append(e.Exposure.CVEs, cve)
	}
	return e
}

func verdictFrom(m map[string]any) Verdict {
	s := rec(m, "sightings")
	v := Verdict{
		Indicator: indicatorFrom(rec(m, "indicator")), Priority: i32(m, "priority", 0), Level: str(m, "level"),
		Action: str(m, "action"), PolicyVersion: str(m, "policy_version"), PreviousPriority: i32(m, "previous_priority", -1),
		PriorityWithoutExposure: i32(m, "priority_without_exposure", 0), ExposureChanged: boolean(m, "exposure_changed"),
		Sightings: SightingSummary{
			Count: i64(s, "count", 0), Count1h: i64(s, "count_1h", 0), Count24h: i64(s, "count_24h", 0),
			Count7d: i64(s, "count_7d", 0), DistinctAssets: i64(s, "distinct_assets", 0),
			FirstSeen: fromTS(s["first_seen"]), LastSeen: fromTS(s["last_seen"]), Allowed: i64(s, "allowed", 0),
			Blocked: i64(s, "blocked", 0), Alerted: i64(s, "alerted", 0), BlockedShare: f64(s, "blocked_share", 0),
			MaxSeverity: i32(s, "max_severity", 0),
		},
		Tags: fromStrs(arr(m, "tags")), Sources: fromStrs(arr(m, "sources")), SetScore: boolean(m, "set_score"),
		Description: str(m, "description"), EventTime: fromTS(m["event_time"]), DecidedAt: fromTS(m["decided_at"]),
		ValidUntil: fromTS(m["valid_until"]),
	}
	for _, rv := range arr(m, "reasons") {
		if r, ok := rv.(map[string]any); ok {
			v.Reasons = append(v.Reasons, Reason{Code: str(r, "code"), Text: str(r, "text"), Weight: f64(r, "weight", 0)})
		}
	}
	for _, av := range arr(m, "attributes") {
		if a, ok := av.(map[string]any); ok {
			v.Attributes = append(v.Attributes, Attribute{Name: str(a, "name"), Value: str(a, "value")})
		}
	}
	return v
}

func feedbackFrom(m map[string]any) Feedback {
	return Feedback{
		Indicator: indicatorFrom(rec(m, "indicator")), ThreatQID: i64(m, "threatq_id", 0), Kind: str(m, "kind"),
		NewStatus: fromOptStr(m["new_status"]), PreviousStatus: fromOptStr(m["previous_status"]),
		NewScore: f64(m, "new_score", -1), Reason: fromOptStr(m["reason"]), Analyst: fromOptStr(m["analyst"]),
		VigilAction: str(m, "vigil_action"), VigilPriority: i32(m, "vigil_priority", -1), ChangedAt: fromTS(m["changed_at"]),
	}
}

func fromOptBytes(v any) []byte {
	if m, ok := v.(map[string]any); ok {
		b, _ := m["bytes"].([]byte)
		return b
	}
	return nil
}

func deadLetterFrom(m map[string]any) DeadLetter {
	d := DeadLetter{
		Key: fromOptBytes(m["key"]), Value: fromOptBytes(m["value"]), SourceTopic: str(m, "source_topic"),
		SourcePartition: i32(m, "source_partition", 0), SourceOffset: i64(m, "source_offset", 0),
		Stage: str(m, "stage"), ErrorClass: str(m, "error_class"), Message: str(m, "message"),
		Attempts: i32(m, "attempts", 1), Time: fromTS(m["time"]),
	}
	for _, hv := range arr(m, "headers") {
		if h, ok := hv.(map[string]any); ok {
			b, _ := h["value"].([]byte)
			d.Headers = append(d.Headers, Header{Key: str(h, "key"), Value: b})
		}
	}
	return d
}

// EncodeObservation encodes an Observation.
func (s *Serde) EncodeObservation(o *Observation) ([]byte, error) {
	bp := getBuf()
	return detach(bp, appendObservation(s.header(*bp, SchemaObservation), o)), nil
}

// DecodeObservation decodes an Observation written by any known schema version.
func (s *Serde) DecodeObservation(ctx context.Context, b []byte) (Observation, error) {
	ws, body, err := s.writerOf(ctx, SchemaObservation, b)
	if err != nil {
		return Observation{}, err
	}
	if ws.fast {
		var o Observation
		r := reader{b: body}
		r.observation(&o)
		if err := r.done(SchemaObservation); err != nil {
			return Observation{}, err
		}
		return o, nil
	}
	m, err := native(ws, SchemaObservation, body)
	if err != nil {
		return Observation{}, err
	}
	return observationFrom(m), nil
}

// DecodeObservationBody is DecodeObservation that also returns the record's Avro body (the bytes after
// the framing, aliasing b) when it can be reused verbatim inside an Enrichment (see
// EncodeEnrichmentSpliced): written with the current Observation schema and with a sighting count of at
// least 1 (the encoder writes max(count, 1)). Otherwise the body is nil and the caller re-encodes.
func (s *Serde) DecodeObservationBody(ctx context.Context, b []byte) (Observation, []byte, error) {
	ws, body, err := s.writerOf(ctx, SchemaObservation, b)
	if err != nil {
		return Observation{}, nil, err
	}
	if !ws.fast {
		m, err := native(ws, SchemaObservation, body)
		if err != nil {
			return Observation{}, nil, err
		}
		return observationFrom(m), nil, nil
	}
	var o Observation
	r := reader{b: body}
	r.observation(&o)
	if err := r.done(SchemaObservation); err != nil {
		return Observation{}, nil, err
	}
	if o.Sighting.Count < 1 {
		body = nil
	}
	return o, body, nil
}

// AppendEnrichmentTail appends the Avro encoding of the Enrichment fields between the observation and
// enriched_at (the provider results and the merged exposure) to dst. sorted is as for
// EncodeEnrichmentSorted. The tail depends only on these values, so one indicator's tail can be encoded
// once and spliced into every Enrichment that carries the same results (EncodeEnrichmentSpliced).
func AppendEnrichmentTail(dst []byte, results []ProviderResult, sorted []SortedFields, x *Exposure) []byte {
	return appendEnrichmentTail(dst, results, sorted, x)
}

// EncodeEnrichmentSpliced encodes an Enrichment from its parts already in Avro: obsBody (an Observation
// body from DecodeObservationBody), tail (from AppendEnrichmentTail) and enrichedAt. The result is
// byte-identical to EncodeEnrichmentSorted of the same values.
func (s *Serde) EncodeEnrichmentSpliced(obsBody, tail []byte, enrichedAt time.Time) []byte {
	bp := getBuf()
	b := s.header(*bp, SchemaEnrichment)
	b = append(b, obsBody...)
	b = append(b, tail...)
	return detach(bp, appendTime(b, enrichedAt))
}

// EncodeEnrichment encodes an Enrichment.
func (s *Serde) EncodeEnrichment(e *Enrichment) ([]byte, error) {
	bp := getBuf()
	return detach(bp, appendEnrichment(s.header(*bp, SchemaEnrichment), e, nil)), nil
}

// EncodeEnrichmentSorted is EncodeEnrichment for a caller that has the results' fields also as
// SortedFields: sorted[i], when not nil, is written for e.Results[i].Fields instead of walking and sorting
// the map. It must hold exactly the map's pairs (the output is then byte-identical to EncodeEnrichment's);
// a sorted[i] whose length does not match the map's is ignored.
func (s *Serde) EncodeEnrichmentSorted(e *Enrichment, sorted []SortedFields) ([]byte, error) {
	bp := getBuf()
	return detach(bp, appendEnrichment(s.header(*bp, SchemaEnrichment), e, sorted)), nil
}

// DecodeEnrichment decodes an Enrichment written by any known schema version.
func (s *Serde) DecodeEnrichment(ctx context.Context, b []byte) (Enrichment, error) {
	ws, body, err := s.writerOf(ctx, SchemaEnrichment, b)
	if err != nil {
		return Enrichment{}, err
	}
	if ws.fast {
		var e Enrichment
		r := reader{b: body}
		r.enrichment(&e)
		if err := r.done(SchemaEnrichment); err != nil {
			return Enrichment{}, err
		}
		return e, nil
	}
	m, err := native(ws, SchemaEnrichment, body)
	if err != nil {
		return Enrichment{}, err
	}
	return enrichmentFrom(m), nil
}

// EncodeVerdict encodes a Verdict.
func (s *Serde) EncodeVerdict(v *Verdict) ([]byte, error) {
	bp := getBuf()
	return detach(bp, appendVerdict(s.header(*bp, SchemaVerdict), v)), nil
}

// DecodeVerdict decodes a Verdict written by any known schema version.
func (s *Serde) DecodeVerdict(ctx context.Context, b []byte) (Verdict, error) {
	ws, body, err := s.writerOf(ctx, SchemaVerdict, b)
	if err != nil {
		return Verdict{}, err
	}
	if ws.fast {
		var v Verdict
		r := reader{b: body}
		r.verdict(&v)
		if err := r.done(SchemaVerdict); err != nil {
			return Verdict{}, err
		}
		return v, nil
	}
	m, err := native(ws, SchemaVerdict, body)
	if err != nil {
		return Verdict{}, err
	}
	return verdictFrom(m), nil
}

// EncodeFeedback encodes a Feedback.
func (s *Serde) EncodeFeedback(f *Feedback) ([]byte, error) {
	bp := getBuf()
	return detach(bp, appendFeedback(s.header(*bp, SchemaFeedback), f)), nil
}

// DecodeFeedback decodes a Feedback written by any known schema version.
func (s *Serde) DecodeFeedback(ctx context.Context, b []byte) (Feedback, error) {
	ws, body, err := s.writerOf(ctx, SchemaFeedback, b)
	if err != nil {
		return Feedback{}, err
	}
	if ws.fast {
		var f Feedback
		r := reader{b: body}
		r.feedback(&f)
		if err := r.done(SchemaFeedback); err != nil {
			return Feedback{}, err
		}
		return f, nil
	}
	m, err := native(ws, SchemaFeedback, body)
	if err != nil {
		return Feedback{}, err
	}
	return feedbackFrom(m), nil
}

// EncodeDeadLetter encodes a DeadLetter.
func (s *Serde) EncodeDeadLetter(d *DeadLetter) ([]byte, error) {
	bp := getBuf()
	return detach(bp, appendDeadLetter(s.header(*bp, SchemaDeadLetter), d)), nil
}

// DecodeDeadLetter decodes a DeadLetter written by any known schema version.
func (s *Serde) DecodeDeadLetter(ctx context.Context, b []byte) (DeadLetter, error) {
	ws, body, err := s.writerOf(ctx, SchemaDeadLetter, b)
	if err != nil {
		return DeadLetter{}, err
	}
	if ws.fast {
		var d DeadLetter
		r := reader{b: body}
		r.deadLetter(&d)
		if err := r.done(SchemaDeadLetter); err != nil {
			return DeadLetter{}, err
		}
		return d, nil
	}
	m, err := native(ws, SchemaDeadLetter, body)
	if err != nil {
		return DeadLetter{}, err
	}
	return deadLetterFrom(m), nil
}

// ObservationPeek is what PeekObservation reads of an Observation without decoding it.
type ObservationPeek struct {
	Indicator   Indicator
	Allowlisted bool   // a list matched at ingest
	Body        []byte // the Avro body, aliasing the input (see DecodeObservationBody)
}

// PeekObservation reads only the indicator and whether an allow-list matched from an Observation written
// with the current schema, allocating only the indicator value, and returns its body for
// EncodeEnrichmentSpliced. It reports false for anything it does not fully vouch for (an older writer, a
// sighting count below 1, a record that does not parse to its end); the caller then uses
// DecodeObservationBody, which also reports the error.
func (s *Serde) PeekObservation(b []byte) (ObservationPeek, bool) {
	if len(b) < 10 || b[0] != 0xC3 || b[1] != 0x01 || binary.LittleEndian.Uint64(b[2:10]) != s.current[SchemaObservation].Rabin {
		return ObservationPeek{}, false
	}
	body := b[10:]
	r := reader{b: body}
	typ := r.sym()
	value := r.raw()
	r.raw()       // field
	r.long()      // event_time
	r.long()      // ingest_time
	r.raw()       // producer.topic
	r.long()      // producer.partition
	r.long()      // producer.offset
	r.raw()       // producer.format
	for range 5 { // vendor, product, asset_ip, asset_host, user
		r.skipOptStr()
	}
	r.raw()        // direction
	r.raw()        // action
	r.long()       // severity
	r.skipOptStr() // rule
	r.long()       // src_port
	r.long()       // dst_port
	r.skipOptStr() // protocol
	count := r.int()
	allow := r.union(2) == 1
	if allow {
		r.raw() // list
		r.raw() // reason
	}
	if r.failed() || r.off != len(body) || count < 1 {
		return ObservationPeek{}, false
	}
	return ObservationPeek{Indicator: Indicator{Type: typ, Value: string(value)}, Allowlisted: allow, Body: body}, true
}
