// Package offline answers ASN and country questions from local files, with no network:
//
//   - ASN from the CSV files of the npm package @ip-location-db/asn (asn-ipv4.csv, asn-ipv6.csv;
//     rows "ip_range_start,ip_range_end,autonomous_system_number,autonomous_system_organization",
//     inclusive, non-overlapping), loaded into a sorted range slice and binary-searched;
//   - country from the MMDB files of @ip-location-db/geo-whois-asn-country-mmdb
//     (geo-whois-asn-country-ipv4.mmdb, geo-whois-asn-country-ipv6.mmdb; record {country_code}),
//     read with maxminddb-golang/v2.
//
// fetch.sh in this directory downloads both packages with `npm pack` into a data directory. The npm
// data is a frozen snapshot the maintainer warns may contain errors: use it for coarse enrichment.
// When no file is present, Available is false (the enricher then records status "skipped", reason
// "no_data", without calling) and Lookup returns ErrNoData.
package offline

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

// Name is the provider id used in cache keys, metrics and records.
const Name = "offline"

// File names looked for in the data directory.
const (
	ASNv4File     = "asn-ipv4.csv"
	ASNv6File     = "asn-ipv6.csv"
	CountryV4File = "geo-whois-asn-country-ipv4.mmdb"
	CountryV6File = "geo-whois-asn-country-ipv6.mmdb"
)

// ErrNoData means no offline data file was loaded (the enricher checks Available first and skips).
// It is returned as is (not wrapped in *provider.Error).
var ErrNoData = errors.New("offline: no data files loaded")

// Range is one ASN range (inclusive, both ends of the same family).
type Range struct {
	Start, End netip.Addr
	ASN        uint32
	Name       string
}

// Client looks up ASN and country offline. It is safe for concurrent use; Close releases the MMDB files.
type Client struct {
	ranges  []Range // sorted by Start, IPv4 before IPv6
	country [2]*maxminddb.Reader
}

var _ provider.Provider = (*Client)(nil)

// New loads whichever of the four files exist in dir. Missing files are not an error (a Client with
// nothing loaded answers ErrNoData); unreadable or malformed files are.
func New(dir string) (*Client, error) {
	c := &Client{}
	for _, name := range []string{ASNv4File, ASNv6File} {
		rs, err := loadCSV(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("offline: %w", err)
		}
		c.ranges = append(c.ranges, rs...)
	}
	slices.SortFunc(c.ranges, func(a, b Range) int { return a.Start.Compare(b.Start) })
	for i, name := range []string{CountryV4File, CountryV6File} {
		db, err := maxminddb.Open(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("offline: open %s: %w", name, err)
		}
		c.country[i] = db
	}
	return c, nil
}

// NewFromRanges builds a Client from ranges already in memory (no country data). Ranges must not
// overlap. (New does not check overlaps in the npm files; there the range with the greatest start
// at or below the address wins.)
func NewFromRanges(rs []Range) (*Client, error) {
	c := &Client{ranges: slices.Clone(rs)}
	slices.SortFunc(c.ranges, func(a, b Range) int { return a.Start.Compare(b.Start) })
	for i, r := range c.ranges {
		if !r.Start.IsValid() || r.Start.Is4() != r.End.Is4() || r.End.Less(r.Start) {
			return nil, fmt.Errorf("offline: bad range %s-%s", r.Start, r.End)
		}
		if i > 0 && r.Start.Compare(c.ranges[i-1].End) <= 0 {
			return nil, fmt.Errorf("offline: overlapping asn ranges at %s", r.Start)
		}
	}
	return c, nil
}

// Close releases the MMDB readers.
func (c *Client) Close() error {
	var errs []error
	for i, db := range c.country {
		if db != nil {
			errs = append(errs, db.Close())
			c.country[i] = nil
		}
	}
	return errors.Join(errs...)
}

// Loaded reports how many ASN ranges and country databases are loaded.
func (c *Client) Loaded() (asnRanges, countryDBs int) {
	for _, db := range c.country {
		if db != nil {
			countryDBs++
		}
	}
	return len(c.ranges), countryDBs
}

// Available reports whether any data file is loaded; the enricher skips a provider that has none.
func (c *Client) Available() bool {
	nASN, nCountry := c.Loaded()
	return nASN > 0 || nCountry > 0
}

// Name returns "offline".
func (c *Client) Name() string { return Name }

// Supports reports ipv4 and ipv6.
func (c *Client) Supports(indicatorType string) bool {
	return indicatorType == events.TypeIPv4 || indicatorType == events.TypeIPv6
}

// Lookup answers ASN, AS name and country for a canonical IP. Found is true when either is known.
func (c *Client) Lookup(ctx context.Context, ind events.Indicator) (provider.Result, error) {
	if err := ctx.Err(); err != nil {
		return provider.Result{}, fmt.Errorf("offline lookup: %w", err)
	}
	addr, err := provider.CanonicalIP(ind)
	if err != nil {
		return provider.Result{}, err
	}
	nASN, nCountry := c.Loaded()
	if nASN == 0 && nCountry == 0 {
		return provider.Result{}, ErrNoData
	}
	var x events.Exposure
	f := map[string]string{}
	if r, ok := c.asn(addr); ok {
		x.ASN, x.ASName = int64(r.ASN), r.Name
		f["asn"] = strconv.FormatUint(uint64(r.ASN), 10)
		if r.Name != "" {
			f["as_name"] = r.Name
		}
	}
	cc, err := c.countryOf(addr)
	if err != nil {
		return provider.Result{}, err
	}
	if cc != "" {
		x.Country = cc
		f["country"] = cc
	}
	if len(f) == 0 {
		return provider.Result{Found: false}, nil
	}
	return provider.Result{Found: true, Fields: f, Exposure: x}, nil
}

// asn binary-searches the range holding addr.
func (c *Client) asn(addr netip.Addr) (Range, bool) {
	i, _ := slices.BinarySearchFunc(c.ranges, addr, func(r Range, a netip.Addr) int {
		return r.Start.Compare(a)
	})
	// c.ranges[i].Start >= addr; the candidate is the exact match or the one before.
	if i < len(c.ranges) && c.ranges[i].Start == addr {
		return c.ranges[i], true
	}
	if i == 0 {
		return Range{}, false
	}
	r := c.ranges[i-1]
	if r.Start.Is4() == addr.Is4() && addr.Compare(r.End) <= 0 {
		return r, true
	}
	return Range{}, false
}

func (c *Client) countryOf(addr netip.Addr) (string, error) {
	db := c.country[1]
	if addr.Is4() {
		db = c.country[0]
	}
	if db == nil {
		return "", nil
	}
	var rec struct {
		CountryCode string `maxminddb:"country_code"`
	}
	res := db.Lookup(addr)
	if !res.Found() {
		return "", res.Err()
	}
	if err := res.Decode(&rec); err != nil {
		return "", provider.BadResponse("mmdb record: %v", err)
	}
	cc := strings.ToUpper(rec.CountryCode)
	if cc != "" && (len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z') {
		return "", provider.BadResponse("mmdb country code %q", rec.CountryCode)
	}
	return cc, nil
}

// loadCSV reads one @ip-location-db/asn CSV file. A header row is skipped if present.
func loadCSV(path string) ([]Range, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseCSV(bufio.NewReaderSize(f, 1<<16), filepath.Base(path))
}

func parseCSV(r io.Reader, name string) ([]Range, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 4
	cr.ReuseRecord = true
	cr.LazyQuotes = true
	names := map[string]string{}
	var out []Range
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if line == 1 && strings.HasPrefix(rec[0], "ip_range_start") {
			continue
		}
		start, err1 := netip.ParseAddr(rec[0])
		end, err2 := netip.ParseAddr(rec[1])
		asn, err3 := strconv.ParseUint(rec[2], 10, 32)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("%s line %d: bad range or asn", name, line)
		}
		start, end = start.Unmap(), end.Unmap()
		if start.Is4() != end.Is4() || end.Less(start) {
			return nil, fmt.Errorf("%s line %d: bad range %s-%s", name, line, start, end)
		}
		org, ok := names[rec[3]]
		if !ok {
			org = strings.Clone(rec[3])
			names[org] = org
		}
		out = append(out, Range{Start: start, End: end, ASN: uint32(asn), Name: org})
	}
}
