package extract

import (
	"math"

	"github.com/vigilsec/vigil/pkg/events"
)

// Collapser merges identical sightings within a batch: observations of the same indicator, from
// the same topic and partition, with the same asset (IP and host) and action become one whose
// Sighting.Count is the sum. The merged observation keeps the first one's fields and offsets.
// A stage calls Collapse once per poll batch, so the window is one batch. The zero value is
// ready to use and safe for concurrent use.
type Collapser struct{}

type collapseKey struct {
	ind       events.Indicator
	topic     string
	partition int32
	assetIP   string
	assetHost string
	action    string
}

// Collapse returns obs with identical sightings merged, in order of first appearance. It
// reuses obs's backing array.
func (Collapser) Collapse(obs []events.Observation) []events.Observation {
	if len(obs) < 2 {
		return obs
	}
	index := make(map[collapseKey]int, len(obs))
	out := obs[:0]
	for _, o := range obs {
		k := collapseKey{
			ind: o.Indicator, topic: o.Producer.Topic, partition: o.Producer.Partition,
			assetIP: o.Sighting.AssetIP, assetHost: o.Sighting.AssetHost, action: o.Sighting.Action,
		}
		if i, ok := index[k]; ok {
			out[i].Sighting.Count = addCount(out[i].Sighting.Count, o.Sighting.Count)
			continue
		}
		index[k] = len(out)
		out = append(out, o)
	}
	return out
}

// addCount adds two sighting counts (a missing count is 1), saturating at MaxInt32.
func addCount(a, b int32) int32 {
	a, b = max(a, 1), max(b, 1)
	if a > math.MaxInt32-b {
		return math.MaxInt32
	}
	return a + b
}
