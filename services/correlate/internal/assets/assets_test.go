package assets

import (
	"strings"
	"testing"
)

const inventoryYAML = `
assets:
  - {name: dc01, address: 10.1.0.5, hostname: DC01.corp.example, criticality: crown_jewel, owner: infra}
  - {name: ws-42, address: 10.2.3.42, hostname: ws-42.corp.example, criticality: workstation, owner: it}
  - {name: v6host, address: "2001:db8::10", criticality: server, owner: ops}
networks:
  - {name: corp, address: 10.0.0.0/8, criticality: network, owner: netops}
  - {name: servers, address: 10.1.0.0/16, criticality: server, owner: ops}
  - {name: v6net, address: "2001:db8::/32", criticality: network, owner: netops}
`

func TestLookup(t *testing.T) {
	t.Parallel()
	inv, err := ParseYAML(strings.NewReader(inventoryYAML))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip, host string
		want     string
	}{
		{"10.1.0.5", "", "dc01"},
		{"10.1.9.9", "", "servers"},
		{"10.200.0.1", "", "corp"},
		{"::ffff:10.1.0.5", "", "dc01"},
		{"2001:db8::10", "", "v6host"},
		{"2001:db8::11", "", "v6net"},
		{"", "dc01.CORP.example.", "dc01"},
		{"192.0.2.1", "ws-42.corp.example", "ws-42"},
		{"192.0.2.1", "", ""},
		{"bogus", "", ""},
	}
	for _, tt := range tests {
		a, ok := inv.Lookup(tt.ip, tt.host)
		if got := map[bool]string{true: a.Name}[ok]; got != tt.want {
			t.Errorf("Lookup(%q, %q) = %q, want %q", tt.ip, tt.host, got, tt.want)
		}
	}
	if a, _ := inv.LookupIP("10.1.0.5"); !a.Critical() || Rank(a.Criticality) != 4 {
		t.Errorf("dc01 not critical: %+v", a)
	}
}

func TestCSVAndErrors(t *testing.T) {
	t.Parallel()
	csvData := "name,address,hostname,criticality,owner\n# comment\ndb,192.0.2.10,db.corp,crown_jewel,dba\ndmz,192.0.2.0/24,,server,ops\n"
	inv, err := ParseCSV(strings.NewReader(csvData))
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := inv.LookupIP("192.0.2.10"); !ok || a.Owner != "dba" {
		t.Fatalf("db = %+v %v", a, ok)
	}
	if a, ok := inv.LookupIP("192.0.2.11"); !ok || a.Name != "dmz" {
		t.Fatalf("dmz = %+v %v", a, ok)
	}
	bad := []string{
		"assets: [{name: x, address: 10.0.0.1, criticality: vip}]",
		"assets: [{name: x}]",
		"assets: [{name: x, address: 10.0.0.300}]",
	}
	for _, b := range bad {
		if _, err := ParseYAML(strings.NewReader(b)); err == nil {
			t.Errorf("ParseYAML(%q) accepted", b)
		}
	}
	var nilInv *Inventory
	if _, ok := nilInv.Lookup("10.0.0.1", "x"); ok {
		t.Error("nil inventory matched")
	}
}

func TestHolder(t *testing.T) {
	t.Parallel()
	h := NewHolder(nil)
	if _, ok := h.Lookup("10.0.0.1", ""); ok {
		t.Fatal("empty holder found an asset")
	}
	inv, err := New([]Asset{{Name: "db", Address: "10.0.0.0/24", Criticality: CrownJewel}})
	if err != nil {
		t.Fatal(err)
	}
	h.Swap(inv)
	if a, ok := h.Lookup("10.0.0.1", ""); !ok || a.Name != "db" {
		t.Fatalf("after swap: %+v %v", a, ok)
	}
	if h.Current() != inv {
		t.Error("Current is not the swapped inventory")
	}
}
