package tqemu_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
)

func newIndicator(t *testing.T, f *fixture, value string) (int, string) {
	t.Helper()
	id := num(dataList(t, f.mustCall("POST", "/api/indicators", fmt.Sprintf(`{"value":%q,"type":"IP Address"}`, value), 201))[0]["id"])
	return id, fmt.Sprintf("/api/indicators/%d", id)
}

func TestAttributesSubresource(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	id, base := newIndicator(t, f, "192.0.2.20")

	f.clock.Advance(time.Minute)
	res := f.mustCall("POST", base+"/attributes", `{"name":"Open Port","value":"22","sources":[{"name":"Criminal IP"}],"published_at":"2026-09-16 10:00:00"}`, http.StatusCreated)
	items := dataList(t, res)
	if num(res["total"]) != 1 || len(items) != 1 {
		t.Fatalf("add attribute response %v", res)
	}
	a := items[0]
	for _, k := range []string{"id", "attribute_id", "name", "value", "sources"} {
		if a[k] == nil {
			t.Fatalf("attribute response lacks %s: %v", k, a)
		}
	}
	if num(a["indicator_id"]) != id || a["sources"].([]any)[0].(map[string]any)["name"] != "Criminal IP" {
		t.Fatalf("attribute = %v", a)
	}
	// A second value for the same name is appended; the attribute_id (name id) is shared.
	b := dataList(t, f.mustCall("POST", base+"/attributes", `[{"name":"Open Port","value":"443"}]`, http.StatusCreated))[0]
	if b["id"] == a["id"] || b["attribute_id"] != a["attribute_id"] {
		t.Fatalf("second value: id %v attribute_id %v vs %v %v", b["id"], b["attribute_id"], a["id"], a["attribute_id"])
	}
	// An identical value is returned, not duplicated.
	dup := dataList(t, f.mustCall("POST", base+"/attributes", `{"name":"Open Port","value":"22"}`, http.StatusCreated))[0]
	if dup["id"] != a["id"] {
		t.Fatalf("duplicate value got new id %v", dup["id"])
	}
	list := dataList(t, f.mustCall("GET", base+"/attributes", nil, 200))
	if len(list) != 2 {
		t.Fatalf("GET attributes = %v", list)
	}

	f.clock.Advance(time.Minute)
	edited := dataObj(t, f.mustCall("PUT", fmt.Sprintf("%s/attributes/%d", base, num(a["id"])), `{"value":"2222"}`, 200))
	if edited["value"] != "2222" {
		t.Fatalf("PUT attribute = %v", edited)
	}
	got, _ := f.emu.Lookup("IP Address", "192.0.2.20")
	if !slices.Equal(got.Attr("open port"), []string{"2222", "443"}) || !got.UpdatedAt.Equal(f.clock.Now()) {
		t.Fatalf("after PUT: %v updated %v", got.Attr("Open Port"), got.UpdatedAt)
	}
	f.mustCall("DELETE", fmt.Sprintf("%s/attributes/%d", base, num(b["id"])), nil, http.StatusNoContent)
	if got, _ := f.emu.Lookup("IP Address", "192.0.2.20"); !slices.Equal(got.Attr("Open Port"), []string{"2222"}) {
		t.Fatalf("after DELETE: %v", got.Attr("Open Port"))
	}
	if r := f.call("DELETE", base+"/attributes/999999", nil); r.code != 404 {
		t.Fatalf("delete unknown attribute: %d", r.code)
	}
	if d := f.emu.Stats().AttributesDeleted; len(d) != 1 || d["Open Port"] != 1 {
		t.Fatalf("attributes deleted by name = %v, want one Open Port (the 404 counts nothing)", d)
	}
	if errs := validationErrors(t, f.call("POST", base+"/attributes", `{"name":"Open Port"}`)); errs["value"] == nil {
		t.Fatalf("missing value errors = %v", errs)
	}
	if r := f.call("POST", "/api/indicators/999999/attributes", `{"name":"a","value":"b"}`); r.code != 404 {
		t.Fatalf("attribute on unknown indicator: %d", r.code)
	}
}

func TestTagsSubresource(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	_, base := newIndicator(t, f, "192.0.2.21")
	for _, body := range []string{`[{"name":"criminalip"}]`, `{"name":"vigil"}`, `["criminalip"]`} {
		f.mustCall("POST", base+"/tags", body, http.StatusCreated)
	}
	tags := dataList(t, f.mustCall("GET", base+"/tags", nil, 200))
	if len(tags) != 2 || tags[0]["name"] != "criminalip" || tags[1]["name"] != "vigil" {
		t.Fatalf("tags = %v", tags)
	}
	f.mustCall("DELETE", fmt.Sprintf("%s/tags/%d", base, num(tags[0]["id"])), nil, http.StatusNoContent)
	if got, _ := f.emu.Lookup("IP Address", "192.0.2.21"); !slices.Equal(got.Tags, []string{"vigil"}) {
		t.Fatalf("after delete: %v", got.Tags)
	}
	if r := f.call("POST", base+"/tags", `[]`); r.code != 400 {
		t.Fatalf("empty tags: %d", r.code)
	}
}

func TestCommentsSubresource(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	_, base := newIndicator(t, f, "192.0.2.22")
	c := dataObj(t, f.mustCall("POST", base+"/comments?with=sources", `{"value":"seen by vigil"}`, http.StatusCreated))
	if c["value"] != "seen by vigil" || c["id"] == nil {
		t.Fatalf("comment = %v", c)
	}
	f.mustCall("POST", base+"/comments", `{"value":"seen by vigil"}`, http.StatusCreated)
	if list := dataList(t, f.mustCall("GET", base+"/comments", nil, 200)); len(list) != 2 {
		t.Fatalf("comments = %v (POST always appends)", list)
	}
	if errs := validationErrors(t, f.call("POST", base+"/comments", `{"value":""}`)); errs["value"] == nil {
		t.Fatalf("errors %v", errs)
	}
}

func TestSourcesSubresource(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	_, base := newIndicator(t, f, "192.0.2.23")
	added := dataList(t, f.mustCall("POST", base+"/sources", `{"name":"Vigil","tlp":"GREEN"}`, http.StatusCreated))
	if len(added) != 1 || added[0]["name"] != "Vigil" || num(added[0]["tlp_id"]) != 3 {
		t.Fatalf("added source = %v", added)
	}
	pivot := num(added[0]["pivot"].(map[string]any)["id"])
	if len(dataList(t, f.mustCall("GET", base+"/sources", nil, 200))) != 1 {
		t.Fatal("GET sources")
	}
	f.mustCall("DELETE", fmt.Sprintf("%s/sources/%d", base, pivot), nil, http.StatusNoContent)
	if got, _ := f.emu.Lookup("IP Address", "192.0.2.23"); len(got.Sources) != 0 {
		t.Fatalf("after delete: %v", got.Sources)
	}
	if r := f.call("DELETE", fmt.Sprintf("%s/sources/%d", base, pivot), nil); r.code != 404 {
		t.Fatalf("delete twice: %d", r.code)
	}
}
