package main

import (
	"bufio"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// percentile returns the q-quantile (0–1) of samples by the nearest-rank method on a sorted
// copy; +Inf samples stand for records that never completed. ok is false without samples.
func percentile(samples []float64, q float64) (float64, bool) {
	if len(samples) == 0 || q < 0 || q > 1 {
		return 0, false
	}
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	rank := int(math.Ceil(q * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	return s[rank-1], true
}

// bucket is one cumulative Prometheus histogram bucket.
type bucket struct {
	le    float64 // upper bound; +Inf for the last
	count float64 // cumulative count
}

// histogram is a parsed Prometheus histogram (cumulative buckets, sorted by le).
type histogram struct {
	buckets []bucket
	count   float64
}

// parseHistogram reads the Prometheus text exposition and sums the buckets of every series of
// the named histogram (all label sets). found is false when no bucket line exists.
func parseHistogram(r io.Reader, name string) (histogram, bool, error) {
	byLE := map[float64]float64{}
	var count float64
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(line, name+"_bucket{"):
			le, ok := labelValue(line, "le")
			if !ok {
				continue
			}
			bound, err := strconv.ParseFloat(le, 64)
			if err != nil {
				continue
			}
			v, err := sampleValue(line)
			if err != nil {
				continue
			}
			byLE[bound] += v
			found = true
		case strings.HasPrefix(line, name+"_count{") || strings.HasPrefix(line, name+"_count "):
			v, err := sampleValue(line)
			if err == nil {
				count += v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return histogram{}, false, err
	}
	h := histogram{count: count}
	for le, c := range byLE {
		h.buckets = append(h.buckets, bucket{le: le, count: c})
	}
	sort.Slice(h.buckets, func(i, j int) bool { return h.buckets[i].le < h.buckets[j].le })
	return h, found, nil
}

// labelValue extracts label k from a sample line.
func labelValue(line, k string) (string, bool) {
	i := strings.Index(line, k+`="`)
	if i < 0 {
		return "", false
	}
	rest := line[i+len(k)+2:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

// sampleValue is the number after the labels (a timestamp may follow).
func sampleValue(line string) (float64, error) {
	rest := line
	if i := strings.LastIndexByte(line, '}'); i >= 0 {
		rest = line[i+1:]
	} else if j := strings.IndexByte(line, ' '); j >= 0 {
		rest = line[j+1:] // no labels: "name value [timestamp]"
	}
	rest = strings.TrimSpace(rest)
	if f := strings.Fields(rest); len(f) > 0 {
		rest = f[0]
	}
	return strconv.ParseFloat(rest, 64)
}

// sub returns h − before bucket by bucket (the observations between two scrapes).
func (h histogram) sub(before histogram) histogram {
	prev := map[float64]float64{}
	for _, b := range before.buckets {
		prev[b.le] = b.count
	}
	out := histogram{count: h.count - before.count}
	for _, b := range h.buckets {
		out.buckets = append(out.buckets, bucket{le: b.le, count: b.count - prev[b.le]})
	}
	return out
}

// quantile estimates the q-quantile by linear interpolation inside the bucket that holds it,
// as Prometheus' histogram_quantile does. A quantile in the +Inf bucket returns the largest
// finite bound and ok=false (the true value is only known to be above it).
func (h histogram) quantile(q float64) (float64, bool) {
	if len(h.buckets) == 0 {
		return 0, false
	}
	total := h.buckets[len(h.buckets)-1].count
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	lower, prevCount := 0.0, 0.0
	for _, b := range h.buckets {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return lower, false
			}
			if b.count == prevCount {
				return b.le, true
			}
			return lower + (b.le-lower)*(rank-prevCount)/(b.count-prevCount), true
		}
		lower, prevCount = b.le, b.count
	}
	return lower, false
}

// drainRate is the throughput of a consumer group between the first sample that showed
// progress and the sample where it reached the end: (records committed in between) / time.
// Excluding the start-up (process start, group join) measures the steady processing rate.
type drainRate struct {
	FirstAt        time.Time
	FirstCommitted int64
	DoneAt         time.Time
	Total          int64
	Committed      []int64     // last sample, per watched group
	LastProgress   []time.Time // per watched group: when its committed offset last moved
}

// StageSeconds is, per watched group, the time from the window start to its last commit; in a
// pipeline the first stage whose value is close to the total is the bottleneck.
func (d drainRate) StageSeconds() []float64 {
	out := make([]float64, len(d.LastProgress))
	for i, t := range d.LastProgress {
		if !t.IsZero() && !d.FirstAt.IsZero() {
			out[i] = t.Sub(d.FirstAt).Seconds()
		}
	}
	return out
}

// Records is the number of records processed in the timed window.
func (d drainRate) Records() int64 { return d.Total - d.FirstCommitted }

// Seconds is the length of the timed window.
func (d drainRate) Seconds() float64 { return d.DoneAt.Sub(d.FirstAt).Seconds() }

// RPS is records per second in the window; ok is false when the window is empty.
func (d drainRate) RPS() (float64, bool) {
	s := d.Seconds()
	if s <= 0 || d.Records() <= 0 {
		return 0, false
	}
	return float64(d.Records()) / s, true
}
