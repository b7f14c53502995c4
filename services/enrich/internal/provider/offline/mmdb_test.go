package offline

import (
	"encoding/binary"
	"net/netip"
	"os"
	"sort"
	"testing"
)

// A minimal MaxMind DB writer for test fixtures (24-bit records, string-only data maps), written
// from the format description because no approved Go MMDB writer is available.

type mmdbNode struct{ rec [2]int } // -1 empty, >=0 node index, <= -2 data: -(idx+2)

func mmdbString(s string) []byte {
	if len(s) >= 29 {
		panic("test writer: string too long")
	}
	return append([]byte{byte(2<<5 | len(s))}, s...)
}

func mmdbUint(typ byte, v uint64, size int) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	b = b[8-size:]
	if typ <= 7 {
		return append([]byte{typ<<5 | byte(size)}, b...)
	}
	return append([]byte{byte(size), typ - 7}, b...)
}

// mmdbMap encodes a map of string keys to already-encoded values, in key order.
func mmdbMap(m map[string][]byte) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := []byte{byte(7<<5 | len(m))}
	for _, k := range keys {
		out = append(out, mmdbString(k)...)
		out = append(out, m[k]...)
	}
	return out
}

// writeMMDB writes a database mapping each prefix to {key: value}. ipVersion is 4 or 6.
func writeMMDB(t *testing.T, path string, ipVersion int, key string, data map[netip.Prefix]string) {
	t.Helper()
	bits := 32
	if ipVersion == 6 {
		bits = 128
	}
	nodes := []mmdbNode{{rec: [2]int{-1, -1}}}
	var records [][]byte
	for p, v := range data {
		records = append(records, mmdbMap(map[string][]byte{key: mmdbString(v)}))
		dataRef := -(len(records) - 1 + 2)
		addr := p.Addr()
		plen := p.Bits()
		if ipVersion == 6 && addr.Is4() {
			addr = netip.AddrFrom16(addr.As16())
			plen += 96
		}
		raw := addr.As16()
		start := 128 - bits
		n := 0
		for i := 0; i < plen; i++ {
			bit := int(raw[(start+i)/8]>>(7-uint((start+i)%8))) & 1
			if i == plen-1 {
				nodes[n].rec[bit] = dataRef
				break
			}
			if nodes[n].rec[bit] < 0 {
				nodes = append(nodes, mmdbNode{rec: [2]int{-1, -1}})
				nodes[n].rec[bit] = len(nodes) - 1
			}
			n = nodes[n].rec[bit]
		}
	}
	// data section: records back to back
	var dataSec []byte
	offsets := make([]int, len(records))
	for i, r := range records {
		offsets[i] = len(dataSec)
		dataSec = append(dataSec, r...)
	}
	nc := len(nodes)
	var tree []byte
	for _, nd := range nodes {
		for _, r := range nd.rec {
			v := nc // empty
			switch {
			case r >= 0:
				v = r
			case r <= -2:
				v = nc + 16 + offsets[-(r+2)]
			}
			tree = append(tree, byte(v>>16), byte(v>>8), byte(v))
		}
	}
	meta := mmdbMap(map[string][]byte{
		"binary_format_major_version": mmdbUint(5, 2, 2),
		"binary_format_minor_version": mmdbUint(5, 0, 0),
		"build_epoch":                 mmdbUint(9, 1700000000, 8),
		"database_type":               mmdbString("test-country"),
		"description":                 mmdbMap(map[string][]byte{"en": mmdbString("test")}),
		"ip_version":                  mmdbUint(5, uint64(ipVersion), 2),
		"languages":                   append([]byte{1, 4}, mmdbString("en")...),
		"node_count":                  mmdbUint(6, uint64(nc), 4),
		"record_size":                 mmdbUint(5, 24, 2),
	})
	var out []byte
	out = append(out, tree...)
	out = append(out, make([]byte, 16)...)
	out = append(out, dataSec...)
	out = append(out, "\xAB\xCD\xEFMaxMind.com"...)
	out = append(out, meta...)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}
