package events

import (
	"slices"
	"strings"
	"time"
)

// Direct Avro binary encoders and decoders of the Go types for the CURRENT schemas
// (schemas/*.avsc). Field order, unions and defaults follow native.go's mapping exactly:
// "" is null for optional strings, the zero time is epoch 0, Sighting.Count < 1 is written as 1,
// nil slices are empty arrays, and on decode empty arrays and maps are nil.
// A change to a schema must change these functions too; the tests compare them with goavro.

// directFingerprints are the Rabin fingerprints of the schemas the functions below implement.
// NewSerde refuses to start when a current schema has another fingerprint, so that an edited
// .avsc cannot be written with a stale field layout.
var directFingerprints = map[string]uint64{
	SchemaObservation: 0x784dd63c62ff92dc,
	SchemaEnrichment:  0x78fa7fb60dcd789b,
	SchemaVerdict:     0xf268f78da85ed5d1,
	SchemaFeedback:    0x8e13f4a825b91e07,
	SchemaDeadLetter:  0xa3eaf0582398f4ad,
}

func appendIndicator(b []byte, i *Indicator) []byte {
	b = appendString(b, i.Type)
	return appendString(b, i.Value)
}

func (r *reader) indicator(i *Indicator) {
	i.Type = r.sym()
	i.Value = r.str()
}

func appendObservation(b []byte, o *Observation) []byte {
	b = appendIndicator(b, &o.Indicator)
	b = appendString(b, o.Field)
	b = appendTime(b, o.EventTime)
	b = appendTime(b, o.IngestTime)

	p := &o.Producer
	b = appendString(b, p.Topic)
	b = appendInt(b, p.Partition)
	b = appendLong(b, p.Offset)
	b = appendString(b, p.Format)
	b = appendOptString(b, p.Vendor)
	b = appendOptString(b, p.Product)

	s := &o.Sighting
	b = appendOptString(b, s.AssetIP)
	b = appendOptString(b, s.AssetHost)
	b = appendOptString(b, s.User)
	b = appendString(b, s.Direction)
	b = appendString(b, s.Action)
	b = appendInt(b, s.Severity)
	b = appendOptString(b, s.Rule)
	b = appendInt(b, s.SrcPort)
	b = appendInt(b, s.DstPort)
	b = appendOptString(b, s.Protocol)
	b = appendInt(b, max(s.Count, 1))

	if o.Allowlist == nil {
		return append(b, 0)
	}
	b = append(b, 2)
	b = appendString(b, o.Allowlist.List)
	return appendString(b, o.Allowlist.Reason)
}

func (r *reader) observation(o *Observation) {
	r.indicator(&o.Indicator)
	o.Field = r.str()
	o.EventTime = r.time()
	o.IngestTime = r.time()

	p := &o.Producer
	p.Topic = r.str()
	p.Partition = r.int()
	p.Offset = r.long()
	p.Format = r.str()
	p.Vendor = r.optStr()
	p.Product = r.optStr()

	s := &o.Sighting
	s.AssetIP = r.optStr()
	s.AssetHost = r.optStr()
	s.User = r.optStr()
	s.Direction = r.sym()
	s.Action = r.sym()
	s.Severity = r.int()
	s.Rule = r.optStr()
	s.SrcPort = r.int()
	s.DstPort = r.int()
	s.Protocol = r.optStr()
	s.Count = r.int()

	if r.union(2) == 1 {
		lm := &ListMatch{}
		lm.List = r.str()
		lm.Reason = r.str()
		o.Allowlist = lm
	}
}

// appendStringMap writes a map of strings as one block in sorted key order (goavro writes Go's
// random map order; any order is the same Avro value, sorted keeps the output deterministic).
// It iterates the map once, collecting key/value pairs (no second hash lookup per key). Provider evidence
// maps are small (a few dozen keys), so up to 32 keys are insertion-sorted through an index, comparing the
// keys' first 8 bytes as one integer before comparing whole strings (keys often share a short prefix).
func appendStringMap(b []byte, m map[string]string) []byte {
	if len(m) == 0 {
		return append(b, 0)
	}
	const small = 32
	if len(m) > small {
		pairs := make([]kv, 0, len(m))
		for k, v := range m {
			pairs = append(pairs, kv{k, v})
		}
		slices.SortFunc(pairs, func(x, y kv) int { return strings.Compare(x.k, y.k) })
		b = appendLong(b, int64(len(pairs)))
		for i := range pairs {
			b = appendString(b, pairs[i].k)
			b = appendString(b, pairs[i].v)
		}
		return append(b, 0)
	}
	var (
		pairs [small]kv
		pre   [small]uint64
		idx   [small]uint8
	)
	n := 0
	for k, v := range m {
		pairs[n], pre[n], idx[n] = kv{k, v}, prefix8(k), uint8(n)
		n++
	}
	for i := 1; i < n; i++ {
		x := idx[i]
		j := i
		for ; j > 0; j-- {
			y := idx[j-1]
			if pre[y] < pre[x] || (pre[y] == pre[x] && pairs[y].k <= pairs[x].k) {
				break
			}
			idx[j] = y
		}
		idx[j] = x
	}
	b = appendLong(b, int64(n))
	for _, i := range idx[:n] {
		b = appendString(b, pairs[i].k)
		b = appendString(b, pairs[i].v)
	}
	return append(b, 0)
}

// prefix8 is s's first 8 bytes as a big-endian integer, zero-padded: a < b as integers implies a < b as
// strings, and equal integers leave the order to the whole strings.
func prefix8(s string) uint64 {
	if len(s) >= 8 {
		return uint64(s[0])<<56 | uint64(s[1])<<48 | uint64(s[2])<<40 | uint64(s[3])<<32 |
			uint64(s[4])<<24 | uint64(s[5])<<16 | uint64(s[6])<<8 | uint64(s[7])
	}
	var p uint64
	for i := range 8 {
		p <<= 8
		if i < len(s) {
			p |= uint64(s[i])
		}
	}
	return p
}

// kv is one map entry of appendStringMap.
type kv struct{ k, v string }

// SortedFields is a ProviderResult's Fields as flattened key, value pairs in key order
// ([k0, v0, k1, v1, …], keys ascending and distinct). A caller that keeps a result's fields in this form
// too (e.g. next to a cached answer) passes it to EncodeEnrichmentSorted to spare the encoder walking and
// sorting the map.
type SortedFields []string

// SortFields returns m as SortedFields (nil for an empty map).
func SortFields(m map[string]string) SortedFields {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(SortedFields, 0, 2*len(keys))
	for _, k := range keys {
		out = append(out, k, m[k])
	}
	return out
}

// appendSortedFields writes SortedFields as a map block, exactly as appendStringMap writes the map.
func appendSortedFields(b []byte, f SortedFields) []byte {
	if len(f) == 0 {
		return append(b, 0)
	}
	b = appendLong(b, int64(len(f)/2))
	for _, s := range f {
		b = appendString(b, s)
	}
	return append(b, 0)
}

func appendEnrichment(b []byte, e *Enrichment, sorted []SortedFields) []byte {
	b = appendObservation(b, &e.Observation)
	b = appendEnrichmentTail(b, e.Results, sorted, &e.Exposure)
	return appendTime(b, e.EnrichedAt)
}

// appendEnrichmentTail writes the fields of an Enrichment between its observation and enriched_at: the
// provider results and the merged exposure.
func appendEnrichmentTail(b []byte, results []ProviderResult, sorted []SortedFields, x *Exposure) []byte {
	if len(results) > 0 {
		b = appendLong(b, int64(len(results)))
		for i := range results {
			pr := &results[i]
			b = appendString(b, pr.Provider)
			b = appendString(b, pr.Status)
			b = appendOptString(b, pr.Error)
			b = appendTime(b, pr.FetchedAt)
			b = appendTime(b, pr.CachedAt)
			b = appendInt(b, int32(pr.TTL/time.Second))
			if i < len(sorted) && sorted[i] != nil && len(sorted[i]) == 2*len(pr.Fields) {
				b = appendSortedFields(b, sorted[i])
			} else {
				b = appendStringMap(b, pr.Fields)
			}
		}
	}
	b = append(b, 0)

	b = appendBool(b, x.Malicious)
	b = appendInt(b, x.InboundScore)
	b = appendInt(b, x.OutboundScore)
	b = appendBool(b, x.VPN)
	b = appendBool(b, x.Proxy)
	b = appendBool(b, x.Tor)
	b = appendBool(b, x.Hosting)
	b = appendBool(b, x.Cloud)
	b = appendBool(b, x.Scanner)
	b = appendBool(b, x.Mobile)
	b = appendBool(b, x.Darkweb)
	if len(x.OpenPorts) > 0 {
		b = appendLong(b, int64(len(x.OpenPorts)))
		for i := range x.OpenPorts {
			p := &x.OpenPorts[i]
			b = appendInt(b, p.Port)
			b = appendString(b, p.Protocol)
			b = appendString(b, p.Service)
			b = appendString(b, p.Version)
			b = appendBool(b, p.Vulnerable)
			b = appendStrings(b, p.Tags)
		}
	}
	b = append(b, 0)
	if len(x.CVEs) > 0 {
		b = appendLong(b, int64(len(x.CVEs)))
		for i := range x.CVEs {
			c := &x.CVEs[i]
			b = appendString(b, c.ID)
			b = appendDouble(b, c.CVSS)
			if len(c.Ports) > 0 {
				b = appendLong(b, int64(len(c.Ports)))
				for _, p := range c.Ports {
					b = appendInt(b, p)
				}
			}
			b = append(b, 0)
		}
	}
	b = append(b, 0)
	b = appendLong(b, x.ASN)
	b = appendOptString(b, x.ASName)
	b = appendOptString(b, x.Org)
	b = appendOptString(b, x.Country)
	b = appendInt(b, x.AbuseConfidence)
	b = appendOptString(b, x.GreyNoiseClass)
	b = appendStrings(b, x.Categories)
	b = appendTime(b, x.FirstSeen)
	return appendTime(b, x.LastSeen)
}

func (r *reader) enrichment(e *Enrichment) {
	r.observation(&e.Observation)

	for n := r.block(); n > 0; n = r.block() {
		if e.Results == nil {
			e.Results = make([]ProviderResult, 0, n)
		}
		for ; n > 0 && !r.failed(); n-- {
			e.Results = append(e.Results, ProviderResult{})
			pr := &e.Results[len(e.Results)-1]
			pr.Provider = r.str()
			pr.Status = r.sym()
			pr.Error = r.optStr()
			pr.FetchedAt = r.time()
			pr.CachedAt = r.time()
			pr.TTL = time.Duration(r.int()) * time.Second
			pr.Fields = r.strMap()
		}
	}

	x := &e.Exposure
	x.Malicious = r.boolean()
	x.InboundScore = r.int()
	x.OutboundScore = r.int()
	x.VPN = r.boolean()
	x.Proxy = r.boolean()
	x.Tor = r.boolean()
	x.Hosting = r.boolean()
	x.Cloud = r.boolean()
	x.Scanner = r.boolean()
	x.Mobile = r.boolean()
	x.Darkweb = r.boolean()
	for n := r.block(); n > 0; n = r.block() {
		if x.OpenPorts == nil {
			x.OpenPorts = make([]Port, 0, n)
		}
		for ; n > 0 && !r.failed(); n-- {
			x.OpenPorts = append(x.OpenPorts, Port{})
			p := &x.OpenPorts[len(x.OpenPorts)-1]
			p.Port = r.int()
			p.Protocol = r.sym()
			p.Service = r.str()
			p.Version = r.str()
			p.Vulnerable = r.boolean()
			p.Tags = r.strs()
		}
	}
	for n := r.block(); n > 0; n = r.block() {
		if x.CVEs == nil {
			x.CVEs = make([]CVE, 0, n)
		}
		for ; n > 0 && !r.failed(); n-- {
			x.CVEs = append(x.CVEs, CVE{})
			c := &x.CVEs[len(x.CVEs)-1]
			c.ID = r.str()
			c.CVSS = r.double()
			for m := r.block(); m > 0; m = r.block() {
				if c.Ports == nil {
					c.Ports = make([]int32, 0, m)
				}
				for ; m > 0 && !r.failed(); m-- {
					c.Ports = append(c.Ports, r.int())
				}
			}
		}
	}
	x.ASN = r.long()
	x.ASName = r.optStr()
	x.Org = r.optStr()
	x.Country = r.optStr()
	x.AbuseConfidence = r.int()
	x.GreyNoiseClass = r.optStr()
	x.Categories = r.strs()
	x.FirstSeen = r.time()
	x.LastSeen = r.time()

	e.EnrichedAt = r.time()
}

func appendVerdict(b []byte, v *Verdict) []byte {
	b = appendIndicator(b, &v.Indicator)
	b = appendInt(b, v.Priority)
	b = appendString(b, v.Level)
	b = appendString(b, v.Action)
	if len(v.Reasons) > 0 {
		b = appendLong(b, int64(len(v.Reasons)))
		for i := range v.Reasons {
			rs := &v.Reasons[i]
			b = appendString(b, rs.Code)
			b = appendString(b, rs.Text)
			b = appendDouble(b, rs.Weight)
		}
	}
	b = append(b, 0)
	b = appendString(b, v.PolicyVersion)
	b = appendInt(b, v.PreviousPriority)
	b = appendInt(b, v.PriorityWithoutExposure)
	b = appendBool(b, v.ExposureChanged)

	s := &v.Sightings
	b = appendLong(b, s.Count)
	b = appendLong(b, s.Count1h)
	b = appendLong(b, s.Count24h)
	b = appendLong(b, s.Count7d)
	b = appendLong(b, s.DistinctAssets)
	b = appendTime(b, s.FirstSeen)
	b = appendTime(b, s.LastSeen)
	b = appendLong(b, s.Allowed)
	b = appendLong(b, s.Blocked)
	b = appendLong(b, s.Alerted)
	b = appendDouble(b, s.BlockedShare)
	b = appendInt(b, s.MaxSeverity)

	if len(v.Attributes) > 0 {
		b = appendLong(b, int64(len(v.Attributes)))
		for i := range v.Attributes {
			b = appendString(b, v.Attributes[i].Name)
			b = appendString(b, v.Attributes[i].Value)
		}
	}
	b = append(b, 0)
	b = appendStrings(b, v.Tags)
	b = appendStrings(b, v.Sources)
	b = appendBool(b, v.SetScore)
	b = appendString(b, v.Description)
	b = appendTime(b, v.EventTime)
	b = appendTime(b, v.DecidedAt)
	return appendTime(b, v.ValidUntil)
}

func (r *reader) verdict(v *Verdict) {
	r.indicator(&v.Indicator)
	v.Priority = r.int()
	v.Level = r.sym()
	v.Action = r.sym()
	for n := r.block(); n > 0; n = r.block() {
		if v.Reasons == nil {
			v.Reasons = make([]Reason, 0, n)
		}
		for ; n > 0 && !r.failed(); n-- {
			v.Reasons = append(v.Reasons, Reason{})
			rs := &v.Reasons[len(v.Reasons)-1]
			rs.Code = r.str()
			rs.Text = r.str()
			rs.Weight = r.double()
		}
	}
	v.PolicyVersion = r.str()
	v.PreviousPriority = r.int()
	v.PriorityWithoutExposure = r.int()
	v.ExposureChanged = r.boolean()

	s := &v.Sightings
	s.Count = r.long()
	s.Count1h = r.long()
	s.Count24h = r.long()
	s.Count7d = r.long()
	s.DistinctAssets = r.long()
	s.FirstSeen = r.time()
	s.LastSeen = r.time()
	s.Allowed = r.long()
	s.Blocked = r.long()
	s.Alerted = r.long()
	s.BlockedShare = r.double()
	s.MaxSeverity = r.int()

	for n := r.block(); n > 0; n = r.block() {
		if v.Attributes == nil {
			v.Attributes = make([]Attribute, 0, n)
		}
		for ; n > 0 && !r.failed(); n-- {
			v.Attributes = append(v.Attributes, Attribute{})
			a := &v.Attributes[len(v.Attributes)-1]
			a.Name = r.str()
			a.Value = r.str()
		}
	}
	v.Tags = r.strs()
	v.Sources = r.strs()
	v.SetScore = r.boolean()
	v.Description = r.str()
	v.EventTime = r.time()
	v.DecidedAt = r.time()
	v.ValidUntil = r.time()
}

func appendFeedback(b []byte, f *Feedback) []byte {
	b = appendIndicator(b, &f.Indicator)
	b = appendLong(b, f.ThreatQID)
	b = appendString(b, f.Kind)
	b = appendOptString(b, f.NewStatus)
	b = appendOptString(b, f.PreviousStatus)
	b = appendDouble(b, f.NewScore)
	b = appendOptString(b, f.Reason)
	b = appendOptString(b, f.Analyst)
	b = appendString(b, f.VigilAction)
	b = appendInt(b, f.VigilPriority)
	return appendTime(b, f.ChangedAt)
}

func (r *reader) feedback(f *Feedback) {
	r.indicator(&f.Indicator)
	f.ThreatQID = r.long()
	f.Kind = r.str()
	f.NewStatus = r.optStr()
	f.PreviousStatus = r.optStr()
	f.NewScore = r.double()
	f.Reason = r.optStr()
	f.Analyst = r.optStr()
	f.VigilAction = r.sym()
	f.VigilPriority = r.int()
	f.ChangedAt = r.time()
}

func appendDeadLetter(b []byte, d *DeadLetter) []byte {
	b = appendOptBytes(b, d.Key)
	b = appendOptBytes(b, d.Value)
	if len(d.Headers) > 0 {
		b = appendLong(b, int64(len(d.Headers)))
		for i := range d.Headers {
			b = appendString(b, d.Headers[i].Key)
			b = appendBytes(b, d.Headers[i].Value)
		}
	}
	b = append(b, 0)
	b = appendString(b, d.SourceTopic)
	b = appendInt(b, d.SourcePartition)
	b = appendLong(b, d.SourceOffset)
	b = appendString(b, d.Stage)
	b = appendString(b, d.ErrorClass)
	b = appendString(b, d.Message)
	b = appendInt(b, d.Attempts)
	return appendTime(b, d.Time)
}

func (r *reader) deadLetter(d *DeadLetter) {
	d.Key = r.optBytes()
	d.Value = r.optBytes()
	for n := r.block(); n > 0; n = r.block() {
		if d.Headers == nil {
			d.Headers = make([]Header, 0, n)
		}
		for ; n > 0 && !r.failed(); n-- {
			d.Headers = append(d.Headers, Header{})
			h := &d.Headers[len(d.Headers)-1]
			h.Key = r.str()
			h.Value = r.bytes()
		}
	}
	d.SourceTopic = r.str()
	d.SourcePartition = r.int()
	d.SourceOffset = r.long()
	d.Stage = r.str()
	d.ErrorClass = r.str()
	d.Message = r.str()
	d.Attempts = r.int()
	d.Time = r.time()
}
