// Package assets is the internal asset inventory: hosts and networks with a
// criticality and an owner, looked up by IP (longest prefix) or host name.
package assets

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"gopkg.in/yaml.v3"
)

// Criticality values, most critical first.
const (
	CrownJewel  = "crown_jewel"
	Server      = "server"
	Workstation = "workstation"
	Network     = "network"
	Unknown     = "unknown"
)

// ErrInvalidInventory is returned (wrapped) when an inventory file is unusable.
var ErrInvalidInventory = errors.New("invalid asset inventory")

// Asset is one host or network of the inventory.
type Asset struct {
	Name        string `yaml:"name"`
	Address     string `yaml:"address"` // IP or CIDR, optional for host-only assets
	Hostname    string `yaml:"hostname"`
	Criticality string `yaml:"criticality"`
	Owner       string `yaml:"owner"`
}

// Critical reports whether the asset is a crown jewel.
func (a Asset) Critical() bool { return a.Criticality == CrownJewel }

// Rank orders criticalities: crown_jewel 4, server 3, network 2, workstation 1, other 0.
func Rank(criticality string) int {
	switch criticality {
	case CrownJewel:
		return 4
	case Server:
		return 3
	case Network:
		return 2
	case Workstation:
		return 1
	}
	return 0
}

// Inventory is an immutable asset index. It is safe for concurrent use.
type Inventory struct {
	byPrefix map[netip.Prefix]Asset
	bits     []int // prefix lengths present, longest first (IPv4 lengths +96)
	byHost   map[string]Asset
}

type file struct {
	Assets   []Asset `yaml:"assets"`
	Networks []Asset `yaml:"networks"`
}

// New indexes assets. Addresses may be bare IPs or CIDR prefixes.
func New(list []Asset) (*Inventory, error) {
	inv := &Inventory{byPrefix: make(map[netip.Prefix]Asset), byHost: make(map[string]Asset)}
	seen := map[int]bool{}
	for i, a := range list {
		if a.Criticality == "" {
			a.Criticality = Unknown
		}
		switch a.Criticality {
		case CrownJewel, Server, Workstation, Network, Unknown:
		default:
			return nil, fmt.Errorf("asset %d (%s): criticality %q: %w", i, a.Name, a.Criticality, ErrInvalidInventory)
		}
		if a.Address == "" && a.Hostname == "" {
			return nil, fmt.Errorf("asset %d (%s): needs address or hostname: %w", i, a.Name, ErrInvalidInventory)
		}
		if a.Address != "" {
			p, err := parsePrefix(a.Address)
			if err != nil {
				return nil, fmt.Errorf("asset %d (%s): address %q: %w", i, a.Name, a.Address, ErrInvalidInventory)
			}
			if _, dup := inv.byPrefix[p]; !dup {
				inv.byPrefix[p] = a
			}
			seen[bits(p)] = true
		}
		if a.Hostname != "" {
			h := normHost(a.Hostname)
			if _, dup := inv.byHost[h]; !dup {
				inv.byHost[h] = a
			}
		}
	}
	for b := range seen {
		inv.bits = append(inv.bits, b)
	}
	slices.Sort(inv.bits)
	slices.Reverse(inv.bits)
	return inv, nil
}

// Load reads an inventory from a .yaml/.yml or .csv file. The YAML shape is
//
//	assets:   [{name, address, hostname, criticality, owner}]
//	networks: [{name, address: 10.1.0.0/16, criticality, owner}]
//
// and the CSV has a header row with the columns name,address,hostname,criticality,owner.
func Load(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open inventory: %w", err)
	}
	defer f.Close()
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return ParseCSV(f)
	default:
		return ParseYAML(f)
	}
}

// ParseYAML reads the YAML inventory shape documented on [Load].
func ParseYAML(r io.Reader) (*Inventory, error) {
	var f file
	if err := yaml.NewDecoder(r).Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse inventory: %w", err)
	}
	return New(append(f.Assets, f.Networks...))
}

// ParseCSV reads the CSV inventory shape documented on [Load].
func ParseCSV(r io.Reader) (*Inventory, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse inventory csv: %w", err)
	}
	if len(rows) == 0 {
		return New(nil)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	get := func(row []string, name string) string {
		if i, ok := col[name]; ok && i < len(row) {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	list := make([]Asset, 0, len(rows)-1)
	for _, row := range rows[1:] {
		list = append(list, Asset{
			Name: get(row, "name"), Address: get(row, "address"), Hostname: get(row, "hostname"),
			Criticality: get(row, "criticality"), Owner: get(row, "owner"),
		})
	}
	return New(list)
}

// LookupIP returns the most specific asset or network containing ip.
func (inv *Inventory) LookupIP(ip string) (Asset, bool) {
	if inv == nil || ip == "" {
		return Asset{}, false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return Asset{}, false
	}
	a = a.Unmap().WithZone("")
	for _, b := range inv.bits {
		pb := b
		if a.Is4() {
			pb -= 96
			if pb < 0 {
				continue
			}
		}
		p, err := a.Prefix(pb)
		if err != nil {
			continue
		}
		if as, ok := inv.byPrefix[p]; ok {
			return as, true
		}
	}
	return Asset{}, false
}

// LookupHost returns the asset with exactly that host name (case-insensitive,
// trailing dot ignored).
func (inv *Inventory) LookupHost(host string) (Asset, bool) {
	if inv == nil || host == "" {
		return Asset{}, false
	}
	a, ok := inv.byHost[normHost(host)]
	return a, ok
}

// Lookup tries the IP first, then the host name.
func (inv *Inventory) Lookup(ip, host string) (Asset, bool) {
	if a, ok := inv.LookupIP(ip); ok {
		return a, true
	}
	return inv.LookupHost(host)
}

// Len returns the number of indexed addresses and host names.
func (inv *Inventory) Len() int { return len(inv.byPrefix) + len(inv.byHost) }

func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".") }

// bits returns the prefix length in the 128-bit space (IPv4 + 96) so IPv4
// and IPv6 lengths never collide.
func bits(p netip.Prefix) int {
	if p.Addr().Is4() {
		return p.Bits() + 96
	}
	return p.Bits()
}

func parsePrefix(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Holder serves lookups from the current Inventory and swaps it atomically
// (SIGHUP reload). A Holder without an inventory finds nothing. It is safe
// for concurrent use.
type Holder struct{ inv atomic.Pointer[Inventory] }

// NewHolder returns a Holder serving inv (nil: no inventory).
func NewHolder(inv *Inventory) *Holder {
	h := &Holder{}
	h.inv.Store(inv)
	return h
}

// Swap replaces the inventory; lookups in flight finish on the old one.
func (h *Holder) Swap(inv *Inventory) { h.inv.Store(inv) }

// Current returns the inventory in use (nil when none).
func (h *Holder) Current() *Inventory { return h.inv.Load() }

// Lookup finds the asset in the current inventory.
func (h *Holder) Lookup(ip, host string) (Asset, bool) {
	inv := h.inv.Load()
	if inv == nil {
		return Asset{}, false
	}
	return inv.Lookup(ip, host)
}
