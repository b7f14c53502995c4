// Package indicator canonicalises indicators of compromise so that two spellings of one
// indicator always produce one key.
//
// Ingest uses it to turn raw log values into events.Indicator values; enrich uses Validate to
// refuse anything that is not already canonical before it reaches a provider.
//
//	ind, err := indicator.Canonical("url", "HXXP://Example[.]com:80")
//	// ind.Key() == "url:http://example.com/"
//
//	nets := indicator.DefaultNets()
//	a, _ := indicator.ParseIP("::ffff:10.1.2.3")
//	nets.Contains(a) // true: RFC 1918
package indicator
