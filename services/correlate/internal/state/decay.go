package state

import (
	"context"
	"time"
)

// ClaimLease is how long a review claimed by ClaimDue stays hidden from
// other claimers. A claimer that dies before it rescheduled or published
// the indicator leaves the entry in the due set, due again when the lease
// ends (nothing is lost); a claim is finished in seconds.
const ClaimLease = 5 * time.Minute

// Review is what the store keeps of a published verdict to evaluate the
// indicator again without a new sighting (decay re-scoring), set on a
// [LastVerdict] given to SavePublished or ApplyBatch.
//
// Layout on Redis: the stash vigil:corr:{<key>}:r (hash: e = the encoded
// enrichment, obs = LastObserved in unix ms, p = Partition; expires with
// the state, StateTTL) and one due set per input partition,
// vigil:corr:{decay}:due:<partition> (ZSET: member = indicator key, score =
// due time in unix ms). The due sets share the hash tag {decay}, so the
// claim script may read several of them on Redis Cluster; the stash lives
// in the indicator's slot and is written in the same pipeline.
type Review struct {
	// Enrichment is the encoded (pkg/events Serde) enrichment the verdict
	// was decided on: the input record's value as it was consumed.
	Enrichment []byte
	// LastObserved is the indicator's Summary.LastObserved when the verdict
	// was decided: decay runs from it, and a later one means the indicator
	// was sighted since.
	LastObserved time.Time
	// Partition is the input partition the indicator's records are on: the
	// due set it is scheduled in, swept by that partition's owner.
	Partition int32
	// Due is when to evaluate the indicator again; zero unschedules it and
	// drops the stash.
	Due time.Time
}

// Due is an indicator whose review time came, as ClaimDue leased it.
type Due struct {
	Key       string
	Partition int32
	At        time.Time // when it was due
	Lease     time.Time // its score in the due set while claimed
}

// Pending is what a claimed review is evaluated from, read at the store
// clock's now.
type Pending struct {
	Due
	// Review is the stash of the last publication (Due unset); HasReview is
	// false when it expired.
	Review    Review
	HasReview bool
	// Summary is the indicator's sightings summary at now (windows moved to
	// now); HasState is false when its state expired.
	Summary  Summary
	HasState bool
	// Prior is the last published verdict and the analyst allow entry in
	// force.
	Prior Prior
}

// Rescheduled is what became of a claimed review.
type Rescheduled struct {
	Due
	// Next is the new due time; zero removes the entry (its stash expires
	// with the indicator's state).
	Next time.Time
	// LastObserved, when set, moves the stash's LastObserved (the indicator
	// was sighted since the verdict).
	LastObserved time.Time
}

// DecayStore schedules published verdicts for re-scoring. Both stores
// implement it; all methods are safe for concurrent use.
//
// A claim is a lease: ClaimDue moves each claimed entry's score to now +
// ClaimLease, so concurrent claimers (two replicas during a rebalance)
// never get the same entry, and a claimer that dies loses nothing.
// Reschedule changes an entry only while it still holds the claimer's lease:
// a verdict published for the indicator meanwhile (SavePublished
// reschedules it, overwriting the lease) wins over the claimer's outcome.
type DecayStore interface {
	// ClaimDue leases up to limit entries of the due sets of partitions
	// that are due at the store clock's now, earliest first within a
	// partition, partitions in the order given.
	ClaimDue(ctx context.Context, partitions []int32, limit int) ([]Due, error)
	// LoadDue reads, per claimed entry, its stash, its state summary at now
	// and its prior (one Redis round trip).
	LoadDue(ctx context.Context, due []Due) ([]Pending, error)
	// Reschedule applies the outcomes of claimed entries whose lease still
	// holds (one Redis round trip). Putting a claim back is rescheduling it
	// at its Due.At.
	Reschedule(ctx context.Context, rs []Rescheduled) error
}

var (
	_ DecayStore = (*Memory)(nil)
	_ DecayStore = (*Redis)(nil)
)

// scoreMs is a due time as a due-set score (unix ms, rounded up so an
// entry is never claimed before its time).
func scoreMs(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

func fromMs(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
