package main

import (
	"fmt"
	"slices"
	"time"
)

// faultKind is one thing the chaos schedule does.
type faultKind string

const (
	faultKill         faultKind = "kill"          // SIGKILL a service, restart it
	faultThreatQDown  faultKind = "threatq_down"  // emulator answers every /api/ call with 503
	faultThreatQUp    faultKind = "threatq_up"    // clear the emulator's faults
	faultRedisRestart faultKind = "redis_restart" // scripts/redis.sh restart (Redis loses its data)
	faultKafkaRestart faultKind = "kafka_restart" // scripts/kafka/kafka.sh restart (keeps data)
)

// fault is one scheduled action, At after the stream starts.
type fault struct {
	At     time.Duration `json:"at"`
	Kind   faultKind     `json:"kind"`
	Target string        `json:"target,omitempty"`
}

// scheduleParams shape the chaos schedule.
type scheduleParams struct {
	Duration   time.Duration // how long records are streamed; every fault falls inside it
	Services   []string      // killed in turn
	KillsEach  int           // kills per service
	Outage     time.Duration // ThreatQ down this long (0: no outage)
	Redis      bool          // restart Redis once
	Kafka      bool          // restart the broker once
	MinSpacing time.Duration // minimum gap between two kills
}

// buildSchedule places the faults: ThreatQ goes down at 20% of the stream, Redis restarts at
// 50%, the broker at 70%; the kills are spread evenly over 5%..90%, services in turn, and
// nudged away from the infrastructure faults so each one's effect can be told apart. It is
// pure and deterministic.
func buildSchedule(p scheduleParams) ([]fault, error) {
	if p.Duration <= 0 {
		return nil, fmt.Errorf("%w: schedule duration must be positive", ErrBadInput)
	}
	if p.Outage > 0 && p.Duration/5+p.Outage > p.Duration*9/10 {
		return nil, fmt.Errorf("%w: a %s ThreatQ outage does not fit in a %s stream (needs outage <= 70%% of it)", ErrBadInput, p.Outage, p.Duration)
	}
	var out []fault
	var infra []time.Duration
	if p.Outage > 0 {
		down := p.Duration / 5
		out = append(out, fault{At: down, Kind: faultThreatQDown, Target: "threatq"}, fault{At: down + p.Outage, Kind: faultThreatQUp, Target: "threatq"})
		infra = append(infra, down, down+p.Outage)
	}
	if p.Redis {
		at := p.Duration / 2
		out = append(out, fault{At: at, Kind: faultRedisRestart, Target: "redis"})
		infra = append(infra, at)
	}
	if p.Kafka {
		at := p.Duration * 7 / 10
		out = append(out, fault{At: at, Kind: faultKafkaRestart, Target: "kafka"})
		infra = append(infra, at)
	}
	n := len(p.Services) * p.KillsEach
	if n > 0 {
		start, end := p.Duration/20, p.Duration*9/10
		step := (end - start) / time.Duration(n)
		if p.MinSpacing > 0 && step < p.MinSpacing {
			return nil, fmt.Errorf("%w: %d kills in %s are closer than %s", ErrBadInput, n, end-start, p.MinSpacing)
		}
		// keep a kill at least a quarter step from an infrastructure fault
		guard := step / 4
		for j := range n {
			at := start + time.Duration(j)*step + step/2
			for _, x := range infra {
				if d := at - x; d > -guard && d < guard {
					if d >= 0 {
						at = x + guard
					} else {
						at = x - guard
					}
				}
			}
			out = append(out, fault{At: at, Kind: faultKill, Target: p.Services[j%len(p.Services)]})
		}
	}
	slices.SortStableFunc(out, func(a, b fault) int {
		switch {
		case a.At < b.At:
			return -1
		case a.At > b.At:
			return 1
		}
		return 0
	})
	return out, nil
}
