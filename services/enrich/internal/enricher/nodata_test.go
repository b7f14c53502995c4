package enricher

import (
	"testing"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

// noDataProvider is a provider without a data source (like offline without its files).
type noDataProvider struct{ fakeProvider }

func (*noDataProvider) Available() bool { return false }

func TestProviderWithoutDataIsSkipped(t *testing.T) {
	empty := &noDataProvider{fakeProvider{name: "offline"}}
	other := &fakeProvider{name: "steady"}
	e, _ := newEnricher(t, setup{cfg: Config{Providers: map[string]ProviderConfig{
		"offline": enabled(ProviderConfig{}), "steady": enabled(ProviderConfig{}),
	}}, provs: []provider.Provider{empty, other}})
	en := batch(t, e, ip("45.33.32.1"))[0]
	if r := result(t, en, "offline"); r.Status != events.StatusSkipped || r.Error != ReasonNoData {
		t.Fatalf("offline without data: %+v", r)
	}
	if r := result(t, en, "steady"); r.Status != events.StatusOK {
		t.Fatalf("steady: %+v", r)
	}
	if empty.count() != 0 {
		t.Fatalf("provider without data was called %d times", empty.count())
	}
	if got := e.Providers(); len(got) != 2 || got[0] != "offline" || got[1] != "steady" {
		t.Fatalf("Providers() = %v", got)
	}
}

func TestBreakersReportsState(t *testing.T) {
	e, _, _ := breakerSetup(t, false)
	if s := e.Breakers(); s["flaky"] != "closed" || s["steady"] != "closed" {
		t.Fatalf("initial states %v", s)
	}
	var obs []events.Observation
	for i := range 6 {
		obs = append(obs, ip("45.33.32."+string(rune('1'+i))))
	}
	batch(t, e, obs...)
	if s := e.Breakers(); s["flaky"] != "open" || s["steady"] != "closed" {
		t.Fatalf("after failures %v", s)
	}
}
