package tqemu_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
)

var standardTypes = []string{"IP Address", "IPv6 Address", "FQDN", "URL", "MD5", "SHA-1", "SHA-256", "CIDR Block", "Email Address", "CVE", "ASN"}
var standardStatuses = []string{"Active", "Expired", "Indirect", "Review", "Whitelisted"}

func TestTypesAndStatuses(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	types := dataList(t, f.mustCall("GET", "/api/indicator/types", nil, 200))
	var names []string
	for _, ty := range types {
		names = append(names, ty["name"].(string))
		for _, k := range []string{"id", "name", "class", "wildcard_matching", "created_at", "updated_at"} {
			if _, ok := ty[k]; !ok {
				t.Fatalf("type %v lacks %s", ty, k)
			}
		}
	}
	for _, want := range standardTypes {
		if !slices.Contains(names, want) {
			t.Errorf("type %q missing from %v", want, names)
		}
	}
	statuses := dataList(t, f.mustCall("GET", "/api/indicator/statuses", nil, 200))
	if len(statuses) != len(standardStatuses) {
		t.Fatalf("%d statuses, want %d", len(statuses), len(standardStatuses))
	}
	for _, name := range standardStatuses {
		one := dataList(t, f.mustCall("GET", "/api/indicator/statuses?name="+url.QueryEscape(name), nil, 200))
		if len(one) != 1 || one[0]["name"] != name {
			t.Fatalf("?name=%s gave %v", name, one)
		}
		wantID, _ := f.emu.StatusID(name)
		byID := dataObj(t, f.mustCall("GET", "/api/indicator/statuses/"+strconv.Itoa(wantID), nil, 200))
		if byID["name"] != name || num(byID["id"]) != wantID {
			t.Fatalf("statuses/%d = %v, want %s", wantID, byID, name)
		}
	}
	ip := dataList(t, f.mustCall("GET", "/api/indicator/types?name=IP%20Address", nil, 200))
	if len(ip) != 1 || ip[0]["class"] != "network" {
		t.Fatalf("IP Address type = %v", ip)
	}
	byID := dataObj(t, f.mustCall("GET", fmt.Sprintf("/api/indicator/types/%d", num(ip[0]["id"])), nil, 200))
	if byID["name"] != "IP Address" {
		t.Fatalf("types/{id} = %v", byID)
	}
	if r := f.call("GET", "/api/indicator/types/999999", nil); r.code != 404 {
		t.Fatalf("unknown type id: %d, want 404", r.code)
	}
}

func TestIDsRandomisedPerSeed(t *testing.T) {
	ids := func(seed uint64) []int {
		emu := tqemu.New(tqemu.Options{Seed: seed})
		var out []int
		for _, n := range standardTypes {
			id, _ := emu.TypeID(n)
			out = append(out, id)
		}
		for _, n := range standardStatuses {
			id, _ := emu.StatusID(n)
			out = append(out, id)
		}
		return out
	}
	a, b, c := ids(1), ids(1), ids(2)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different ids: %v vs %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("different seeds, same ids: %v", a)
	}
	// Default statuses must not sit at the well-known ids 1..5 in order.
	if slices.Equal(a[len(standardTypes):], []int{1, 2, 3, 4, 5}) {
		t.Fatalf("status ids not randomised: %v", a)
	}
}

func TestCreateUpsertIdempotent(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	body := f.fixtureFile("create_single_s5.json")
	first := f.mustCall("POST", "/api/indicators", body, http.StatusCreated)
	if num(first["total"]) != 1 {
		t.Fatalf("total = %v", first["total"])
	}
	items := dataList(t, first) // a list even for one object [V S5]
	if len(items) != 1 || items[0]["existing"] != "N" {
		t.Fatalf("first create: %v", items)
	}
	it := items[0]
	for _, k := range []string{"id", "value", "type_id", "status_id", "class", "hash", "created_at", "updated_at", "touched_at", "type"} {
		if _, ok := it[k]; !ok {
			t.Errorf("created item lacks %q", k)
		}
	}
	if it["type"].(map[string]any)["name"] != "Email Address" {
		t.Fatalf("type object = %v", it["type"])
	}
	attrs := it["attributes"].([]any)
	if len(attrs) != 1 || attrs[0].(map[string]any)["id"] == nil {
		t.Fatalf("created attributes lack ids: %v", attrs)
	}
	srcs := it["sources"].([]any)
	if len(srcs) != 1 || srcs[0].(map[string]any)["pivot"].(map[string]any)["id"] == nil {
		t.Fatalf("created sources lack pivot.id: %v", srcs)
	}

	f.clock.Advance(time.Minute)
	second := dataList(t, f.mustCall("POST", "/api/indicators", body, http.StatusCreated))
	if second[0]["existing"] != "Y" || second[0]["id"] != it["id"] {
		t.Fatalf("second create: existing=%v id=%v, want Y and %v", second[0]["existing"], second[0]["id"], it["id"])
	}
	if second[0]["updated_at"] != it["updated_at"] {
		t.Fatalf("no-op re-post moved updated_at: %v → %v", it["updated_at"], second[0]["updated_at"])
	}
	if len(second[0]["attributes"].([]any)) != 1 {
		t.Fatalf("re-post duplicated the attribute: %v", second[0]["attributes"])
	}
	if n := len(f.emu.Indicators()); n != 1 {
		t.Fatalf("%d indicators stored, want 1", n)
	}
}

func TestConsumeSDKBody(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	res := f.mustCall("POST", "/api/indicators/consume", f.fixtureFile("consume_sdk.json"), http.StatusOK)
	items := dataList(t, res)
	if len(items) != 2 || items[0]["value"] != "203.0.113.7" || items[1]["value"] != "malicious.example" {
		t.Fatalf("consume response items: %v", items)
	}
	for _, it := range items {
		if it["id"] == nil || it["existing"] != "N" {
			t.Fatalf("item %v lacks id or existing=N", it)
		}
	}
	ip, ok := f.emu.Lookup("IP Address", "203.0.113.7")
	if !ok {
		t.Fatal("IP indicator not stored")
	}
	if ip.Status != "Review" || ip.Description != "exposure enrichment" || ip.PublishedAt != "2024-05-01 12:00:00" {
		t.Fatalf("stored IP = %+v", ip)
	}
	if got := ip.Attr("Open Port"); !slices.Equal(got, []string{"22", "3389"}) {
		t.Fatalf("Open Port values = %v (multi-valued attribute)", got)
	}
	if len(ip.Sources) != 1 || ip.Sources[0].Name != "Criminal IP" || ip.Sources[0].TLP != "AMBER" {
		t.Fatalf("sources = %+v", ip.Sources)
	}
	if !slices.Equal(ip.Tags, []string{"criminalip"}) || !slices.Equal(ip.Comments, []string{"enriched by vigil"}) {
		t.Fatalf("tags/comments = %v / %v", ip.Tags, ip.Comments)
	}
	dom, _ := f.emu.Lookup("FQDN", "malicious.example")
	if dom.Status != "Active" || dom.Sources[0].TLP != "AMBER" {
		t.Fatalf("FQDN by type_id/status_id = %+v", dom)
	}
}

func TestConsumeKeepsStatusAndMergesAttributes(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	first := []map[string]any{{"value": "198.51.100.1", "type": "IP Address", "status": "Review",
		"attributes": []map[string]any{{"name": "Open Port", "value": "22"}}}}
	f.mustCall("POST", "/api/indicators/consume", first, 200)
	if err := f.emu.AnalystSetStatus("198.51.100.1", "Whitelisted"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	again := []map[string]any{{"value": "198.51.100.1", "type": "IP Address", "status": "Active",
		"attributes": []map[string]any{{"name": "Open Port", "value": "22"}, {"name": "Open Port", "value": "80"}}}}
	items := dataList(t, f.mustCall("POST", "/api/indicators/consume", again, 200))
	if items[0]["existing"] != "Y" {
		t.Fatalf("existing = %v", items[0]["existing"])
	}
	got, _ := f.emu.Lookup("IP Address", "198.51.100.1")
	if got.Status != "Whitelisted" {
		t.Fatalf("consume changed the analyst's status to %s", got.Status)
	}
	if vals := got.Attr("Open Port"); !slices.Equal(vals, []string{"22", "80"}) {
		t.Fatalf("Open Port = %v, want [22 80]", vals)
	}
	if !got.UpdatedAt.Equal(f.clock.Now()) {
		t.Fatalf("adding a value did not bump updated_at: %v", got.UpdatedAt)
	}
}

func TestCreateValidation(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantField string
	}{
		{"unknown type", `{"value":"1.2.3.4","type":"IPv4 Address"}`, "type"},
		{"unknown type id", `{"value":"1.2.3.4","type_id":999999}`, "type_id"},
		{"non-IP for IP Address", `{"value":"example.com","type":"IP Address"}`, "value"},
		{"IPv6 for IP Address", `{"value":"2001:db8::1","type":"IP Address"}`, "value"},
		{"IPv4 for IPv6 Address", `{"value":"1.2.3.4","type":"IPv6 Address"}`, "value"},
		{"bad FQDN", `{"value":"not a domain","type":"FQDN"}`, "value"},
		{"IP as FQDN", `{"value":"1.2.3.4","type":"FQDN"}`, "value"},
		{"short SHA-256", `{"value":"abcd","type":"SHA-256"}`, "value"},
		{"non-hex MD5", `{"value":"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz","type":"MD5"}`, "value"},
		{"URL with space", `{"value":"http://a b","type":"URL"}`, "value"},
		{"missing value", `{"type":"IP Address"}`, "value"},
		{"missing type", `{"value":"1.2.3.4"}`, "type"},
		{"unknown status", `{"value":"1.2.3.4","type":"IP Address","status":"Malicious"}`, "status"},
		{"bad published_at", `{"value":"1.2.3.4","type":"IP Address","published_at":"2024-05-01T12:00:00Z"}`, "published_at"},
		{"bad source published_at", `{"value":"1.2.3.4","type":"IP Address","sources":[{"name":"x","published_at":"yesterday"}]}`, "sources.0.published_at"},
		{"unknown tlp", `{"value":"1.2.3.4","type":"IP Address","sources":[{"name":"x","tlp_id":9}]}`, "sources.0.tlp_id"},
		{"boolean attribute value", `{"value":"1.2.3.4","type":"IP Address","attributes":[{"name":"Is VPN","value":true}]}`, "attributes.0.value"},
		{"attribute without name", `{"value":"1.2.3.4","type":"IP Address","attributes":[{"value":"x"}]}`, "attributes.0.name"},
		{"array item index in key", `[{"value":"1.2.3.4","type":"IP Address"},{"value":"x","type":"IP Address"}]`, "1.value"},
		{"not JSON", `value=1.2.3.4`, "body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tqemu.Options{})
			for _, route := range []string{"/api/indicators", "/api/indicators/consume"} {
				errs := validationErrors(t, f.call("POST", route, tc.body))
				if _, ok := errs[tc.wantField]; !ok {
					t.Fatalf("%s: errors %v lack field %q", route, errs, tc.wantField)
				}
			}
			if n := len(f.emu.Indicators()); n != 0 {
				t.Fatalf("invalid batch stored %d indicators", n)
			}
		})
	}
}

func TestGetByIDWith(t *testing.T) {
	f := newFixture(t, tqemu.Options{ScorePolicy: func(tqemu.Indicator) float64 { return 6.5 }})
	id := num(dataList(t, f.mustCall("POST", "/api/indicators/consume", f.fixtureFile("consume_sdk.json"), 200))[0]["id"])
	plain := dataObj(t, f.mustCall("GET", fmt.Sprintf("/api/indicators/%d", id), nil, 200))
	if s, ok := plain["score"].(float64); !ok || s != 6 {
		t.Fatalf("score without with=score = %v (%T), want number 6", plain["score"], plain["score"])
	}
	for _, k := range []string{"attributes", "sources", "type", "status"} {
		if _, ok := plain[k]; ok {
			t.Errorf("%q present without with=", k)
		}
	}
	full := dataObj(t, f.mustCall("GET", fmt.Sprintf("/api/indicators/%d?with=attributes,sources,score,tags,type,status,comments", id), nil, 200))
	score := full["score"].(map[string]any)
	if score["generated_score"] != "6.50" || score["manual_score"] != nil || num(score["indicator_id"]) != id {
		t.Fatalf("score object = %v", score)
	}
	for _, k := range []string{"score_config_hash", "created_at", "updated_at"} {
		if _, ok := score[k]; !ok {
			t.Errorf("score object lacks %s", k)
		}
	}
	attr := full["attributes"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "attribute_id", "indicator_id", "name", "value", "created_at", "updated_at", "touched_at"} {
		if _, ok := attr[k]; !ok {
			t.Errorf("attribute lacks %s: %v", k, attr)
		}
	}
	if full["status"].(map[string]any)["name"] != "Review" || len(full["tags"].([]any)) != 1 || len(full["comments"].([]any)) != 1 {
		t.Fatalf("with= relations wrong: %v", full)
	}
	if r := f.call("GET", "/api/indicators/424242", nil); r.code != 404 {
		t.Fatalf("missing indicator: %d", r.code)
	}
	if r := f.call("GET", "/api/indicators/abc", nil); r.code != 404 {
		t.Fatalf("non-numeric id: %d", r.code)
	}
}

func TestStatusChangeViaPut(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	id := num(dataList(t, f.mustCall("POST", "/api/indicators", `{"value":"192.0.2.9","type":"IP Address","status":"Review"}`, 201))[0]["id"])
	whitelisted, _ := f.emu.StatusID("Whitelisted")
	active, _ := f.emu.StatusID("Active")
	expired, _ := f.emu.StatusID("Expired")
	tests := []struct {
		body string
		want int
	}{
		{fmt.Sprintf(`{"status_id":%d}`, whitelisted), whitelisted},               // S8
		{`{"status":"Active"}`, active},                                           // S5
		{`{"status":{"name":"Expired"},"sources":[{"name":"analyst"}]}`, expired}, // S4
	}
	for _, tc := range tests {
		f.clock.Advance(time.Minute)
		got := dataObj(t, f.mustCall("PUT", fmt.Sprintf("/api/indicators/%d", id), tc.body, 200))
		if num(got["status_id"]) != tc.want {
			t.Fatalf("PUT %s: status_id %v, want %d", tc.body, got["status_id"], tc.want)
		}
		if got["updated_at"] != f.clock.Now().UTC().Format(tqemu.TimeLayout) {
			t.Fatalf("PUT %s did not bump updated_at: %v", tc.body, got["updated_at"])
		}
	}
	errs := validationErrors(t, f.call("PUT", fmt.Sprintf("/api/indicators/%d", id), `{"status":"Bogus"}`))
	if _, ok := errs["status"]; !ok {
		t.Fatalf("errors %v", errs)
	}
	if r := f.call("PUT", "/api/indicators/77777", `{"status":"Active"}`); r.code != 404 {
		t.Fatalf("PUT unknown id: %d", r.code)
	}
}

func TestManualScore(t *testing.T) {
	f := newFixture(t, tqemu.Options{ScorePolicy: func(tqemu.Indicator) float64 { return 3.2 }})
	id := num(dataList(t, f.mustCall("POST", "/api/indicators", `{"value":"192.0.2.10","type":"IP Address"}`, 201))[0]["id"])
	path := fmt.Sprintf("/api/indicator/%d/scores", id)
	f.clock.Advance(time.Minute)
	obj := dataObj(t, f.mustCall("PUT", path, `{"manual_score":7}`, 200))
	if obj["manual_score"] != "7" || obj["generated_score"] != "3.20" {
		t.Fatalf("score object = %v", obj)
	}
	got, _ := f.emu.Lookup("IP Address", "192.0.2.10")
	if got.Score != 7 || !got.UpdatedAt.Equal(f.clock.Now()) {
		t.Fatalf("after manual score: score %d updated %v", got.Score, got.UpdatedAt)
	}
	obj = dataObj(t, f.mustCall("PUT", path+"?manual_score=9", nil, 200)) // S6 sends a query parameter
	if obj["manual_score"] != "9" {
		t.Fatalf("query-param score = %v", obj)
	}
	obj = dataObj(t, f.mustCall("PUT", path, `{"manual_score":null}`, 200))
	if obj["manual_score"] != nil {
		t.Fatalf("null did not clear: %v", obj)
	}
	if got, _ := f.emu.Lookup("IP Address", "192.0.2.10"); got.Score != 3 {
		t.Fatalf("effective score after clear = %d, want floor(3.2)=3", got.Score)
	}
	for _, bad := range []string{`{"manual_score":11}`, `{"manual_score":-1}`, `{"manual_score":"high"}`, `{}`} {
		if errs := validationErrors(t, f.call("PUT", path, bad)); errs["manual_score"] == nil {
			t.Fatalf("%s: errors %v", bad, errs)
		}
	}
	if r := f.call("PUT", fmt.Sprintf("/api/indicators/%d/scores", id), `{"manual_score":5}`); r.code != 404 {
		t.Fatalf("plural /indicators/{id}/scores: %d, want 404 (the route is singular)", r.code)
	}
}

func TestListByValue(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	f.mustCall("POST", "/api/indicators", `[{"value":"a.example","type":"FQDN"},{"value":"b.example","type":"FQDN"},{"value":"192.0.2.1","type":"IP Address"}]`, 201)
	res := f.mustCall("GET", "/api/indicators?value=a.example&with=attributes,sources,score", nil, 200)
	items := dataList(t, res)
	if num(res["total"]) != 1 || len(items) != 1 || items[0]["value"] != "a.example" {
		t.Fatalf("value=a.example → %v", res)
	}
	if _, ok := items[0]["score"].(map[string]any); !ok {
		t.Fatalf("with=score not applied: %v", items[0]["score"])
	}
	wild := f.mustCall("GET", "/api/indicators?value=%25.example", nil, 200)
	if num(wild["total"]) != 2 {
		t.Fatalf("wildcard total = %v", wild["total"])
	}
	fqdn, _ := f.emu.TypeID("FQDN")
	typed := f.mustCall("GET", fmt.Sprintf("/api/indicators?type_id=%d&limit=1&offset=1", fqdn), nil, 200)
	if num(typed["total"]) != 2 || len(dataList(t, typed)) != 1 || num(typed["limit"]) != 1 || num(typed["offset"]) != 1 {
		t.Fatalf("type_id paging = %v", typed)
	}
	if errs := validationErrors(t, f.call("GET", "/api/indicators?limit=x", nil)); errs["limit"] == nil {
		t.Fatalf("errors %v", errs)
	}
}

func TestQuery(t *testing.T) {
	f := newFixture(t, tqemu.Options{ScorePolicy: func(i tqemu.Indicator) float64 {
		if i.Type == "FQDN" {
			return 7
		}
		return 2
	}})
	f.mustCall("POST", "/api/indicators/consume", f.fixtureFile("consume_sdk.json"), 200)
	f.mustCall("POST", "/api/indicators/consume", `[{"value":"benign.example","type":"FQDN","status":"Review"},{"value":"198.51.100.7","type":"IP Address"}]`, 200)
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"S5 value + type_name", `{"criteria":{"value":"203.0.113.7"},"filters":{"type_name":"IP Address"}}`, []string{"203.0.113.7"}},
		{"S7 nested or/and", f.fixtureFile("query_s7.json"), []string{"203.0.113.7"}},
		{"S8 contains + status + score", f.fixtureFile("query_s8.json"), []string{"malicious.example"}},
		{"XSOAR +or in criteria", `{"criteria":{"+or":[{"value":"benign.example"},{"value":"198.51.100.7"}]}}`, []string{"benign.example", "198.51.100.7"}},
		{"type name case-insensitive", `{"filters":{"type_name":"fqdn"}}`, []string{"malicious.example", "benign.example"}},
		{"+in on status", `{"filters":{"status_name":{"+in":["Active","Whitelisted"]}}}`, []string{"malicious.example"}},
		{"empty body is everything", ``, []string{"203.0.113.7", "malicious.example", "benign.example", "198.51.100.7"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := f.mustCall("POST", "/api/indicators/query?limit=500&offset=0&sort=id", tc.body, 200)
			var got []string
			for _, it := range dataList(t, res) {
				got = append(got, it["value"].(string))
				if it["type"] == nil || it["status"] == nil {
					t.Fatalf("query item lacks type/status objects: %v", it)
				}
			}
			if !slices.Equal(got, tc.want) || num(res["total"]) != len(tc.want) {
				t.Fatalf("got %v (total %v), want %v", got, res["total"], tc.want)
			}
		})
	}
	for _, bad := range []string{`{"filters":{"colour":"red"}}`, `{"criteria":{"value":{"+regex":"x"}}}`, `{"filters":{"updated_at":{"+gt":"yesterday"}}}`, `[`} {
		if r := f.call("POST", "/api/indicators/query", bad); r.code != 400 {
			t.Fatalf("query %s: %d, want 400", bad, r.code)
		}
	}
}

// TestChangedSincePolling follows the feedback poller: sort by updated_at,
// page with limit/offset, and see analyst changes move to the end.
func TestChangedSincePolling(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	for i := range 5 {
		f.mustCall("POST", "/api/indicators/consume", fmt.Sprintf(`[{"value":"192.0.2.%d","type":"IP Address"}]`, i+1), 200)
		f.clock.Advance(time.Second)
	}
	mark := f.clock.Now().UTC().Format(tqemu.TimeLayout)
	f.clock.Advance(time.Minute)
	if err := f.emu.AnalystSetStatus("192.0.2.2", "Whitelisted"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	seven := 9
	if err := f.emu.AnalystSetScore("192.0.2.4", &seven); err != nil {
		t.Fatal(err)
	}
	var order []string
	for offset := 0; ; offset += 2 {
		res := f.mustCall("POST", fmt.Sprintf("/api/indicators/query?sort=updated_at&limit=2&offset=%d", offset), `{}`, 200)
		page := dataList(t, res)
		for _, it := range page {
			order = append(order, it["value"].(string))
		}
		if len(page) < 2 {
			break
		}
	}
	want := []string{"192.0.2.1", "192.0.2.3", "192.0.2.5", "192.0.2.2", "192.0.2.4"}
	if !slices.Equal(order, want) {
		t.Fatalf("order by updated_at = %v, want %v", order, want)
	}
	since := f.mustCall("POST", "/api/indicators/query?sort=-updated_at", fmt.Sprintf(`{"filters":{"updated_at":{"+gt":%q}}}`, mark), 200)
	var got []string
	for _, it := range dataList(t, since) {
		got = append(got, it["value"].(string)+"/"+it["status"].(map[string]any)["name"].(string))
	}
	if !slices.Equal(got, []string{"192.0.2.4/Review", "192.0.2.2/Whitelisted"}) {
		t.Fatalf("changed since %s = %v", mark, got)
	}
}

func TestDeleteIndicator(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	id := num(dataList(t, f.mustCall("POST", "/api/indicators", `{"value":"192.0.2.50","type":"IP Address"}`, 201))[0]["id"])
	f.mustCall("DELETE", fmt.Sprintf("/api/indicators/%d", id), nil, http.StatusNoContent)
	if r := f.call("GET", fmt.Sprintf("/api/indicators/%d", id), nil); r.code != 404 {
		t.Fatalf("after delete: %d", r.code)
	}
	// The key is free again: re-creating is a new indicator.
	again := dataList(t, f.mustCall("POST", "/api/indicators", `{"value":"192.0.2.50","type":"IP Address"}`, 201))
	if again[0]["existing"] != "N" {
		t.Fatalf("re-create after delete: %v", again[0])
	}
}

func TestUnknownRoute(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	r := f.call("GET", "/api/nothing/here", nil)
	if r.code != 404 || r.json(t)["errors"] == nil {
		t.Fatalf("unknown route: %d %s", r.code, r.body)
	}
	if r := f.callAuth("GET", "/api/nothing/here", nil, ""); r.code != 401 {
		t.Fatalf("unknown route without token: %d, want 401", r.code)
	}
}

// TestListByExactValueAcrossTypes: an exact value is looked up in the (type, value) index; every
// type holding it is found, and type_id narrows it.
func TestListByExactValueAcrossTypes(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	f.mustCall("POST", "/api/indicators", `[{"value":"a.example","type":"FQDN"},{"value":"a.example","type":"String"},{"value":"b.example","type":"FQDN"}]`, 201)
	res := f.mustCall("GET", "/api/indicators?value=a.example", nil, 200)
	if num(res["total"]) != 2 || len(dataList(t, res)) != 2 {
		t.Fatalf("value=a.example → %v, want 2 items", res)
	}
	str, _ := f.emu.TypeID("String")
	typed := dataList(t, f.mustCall("GET", fmt.Sprintf("/api/indicators?value=a.example&type_id=%d", str), nil, 200))
	if len(typed) != 1 || num(typed[0]["type_id"]) != str {
		t.Fatalf("value+type_id → %v", typed)
	}
	none := f.mustCall("GET", "/api/indicators?value=c.example", nil, 200)
	if num(none["total"]) != 0 || len(dataList(t, none)) != 0 {
		t.Fatalf("absent value → %v", none)
	}
}

// TestCreatedExact: ThreatQ's timestamps have one-second resolution, the emulator-only
// created_exact keeps the creation time at full precision (latency measurements) and is not
// changed by later updates.
func TestCreatedExact(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	f.clock.Advance(750 * time.Millisecond)
	created := f.clock.Now()
	body := []map[string]any{{"value": "198.51.100.7", "type": "IP Address", "status": "Review"}}
	f.mustCall("POST", "/api/indicators/consume", body, 200)
	f.clock.Advance(2 * time.Second)
	body[0]["description"] = "changed"
	f.mustCall("POST", "/api/indicators/consume", body, 200)
	got, ok := f.emu.Lookup("IP Address", "198.51.100.7")
	if !ok {
		t.Fatal("indicator missing")
	}
	if !got.CreatedExact.Equal(created) {
		t.Fatalf("created_exact = %v, want %v", got.CreatedExact, created)
	}
	if !got.CreatedAt.Equal(created.Truncate(time.Second)) {
		t.Fatalf("created_at = %v, want the second %v", got.CreatedAt, created.Truncate(time.Second))
	}
	dump := f.mustCall("GET", "/_emulator/dump", nil, 200)
	inds, _ := dump["indicators"].([]any)
	if len(inds) != 1 {
		t.Fatalf("dump indicators = %v", dump["indicators"])
	}
	if ce, _ := inds[0].(map[string]any)["created_exact"].(string); ce != created.Format(time.RFC3339Nano) {
		t.Fatalf("dump created_exact = %q, want %q", ce, created.Format(time.RFC3339Nano))
	}
}
