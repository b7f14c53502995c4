// Package tqemu is an in-memory emulator of the subset of the ThreatQ REST API
// that Vigil's sink uses, written from /work/shared/specs/threatq-api.md.
//
// It serves the API under /api/ (OAuth2 token endpoint, indicator types and
// statuses, indicator create/consume/query/read/update, attributes, tags,
// comments, sources and manual scores), a few control routes under
// /_emulator/ (faults, stats, dump, reset) and a human page at /.
//
// Behaviour marked "[I]" in comments is inferred: the spec had no server
// example for it, so the emulator follows the spec's inference.
//
// Typical use in a test:
//
//	emu := tqemu.New(tqemu.Options{Seed: 1})
//	ts := httptest.NewServer(emu)
//	defer ts.Close()
//	// point the client at ts.URL with emu.Options().ClientID etc.
//	emu.SetFault(tqemu.Faults{FailNext: 2, ErrorStatus: 503})
//	_ = emu.AnalystSetStatus("203.0.113.7", "Whitelisted")
//
// A Server is safe for concurrent use.
package tqemu
