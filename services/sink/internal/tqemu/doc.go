// Package tqemu is an in-memory emulator of the subset of the ThreatQ REST API
// that Vigil's sink uses, written from /work/shared/specs/threatq-api.md.
// Behaviour marked "[I]" in comments is inferred: the spec had no server
// example for it, so the emulator follows the spec's inference.
//
// # API routes (all under /api/, all but /api/token need "Authorization: Bearer <token>")
//
//	POST   /api/token                               password | client_credentials (Basic) | refresh_token
//	GET    /api/indicator/types[?name=] , /{id}      ids are random per seed
//	GET    /api/indicator/statuses[?name=] , /{id}
//	POST   /api/indicators                          object or array; 201 {"total","data":[…,"existing":"N"|"Y"]}
//	POST   /api/indicators/consume[/new]            same body; 200
//	GET    /api/indicators?value=&type_id=&status_id=&with=&limit=&offset=&sort=
//	POST   /api/indicators/query?limit=&offset=&sort=&with=   {"criteria":{…},"filters":{…}}
//	GET    /api/indicators/{id}?with=attributes,sources,score,type,status,tags,comments
//	PUT    /api/indicators/{id}                     status_id | status | value | type | description | sources
//	DELETE /api/indicators/{id}                     204
//	GET|POST        /api/indicators/{id}/attributes ; PUT|DELETE …/attributes/{attr_id}
//	GET|POST        /api/indicators/{id}/tags       ; DELETE …/tags/{tag_id}
//	GET|POST        /api/indicators/{id}/comments
//	GET|POST        /api/indicators/{id}/sources    ; DELETE …/sources/{pivot_id}
//	PUT    /api/indicator/{id}/scores               {"manual_score": 0–10 | null} (singular "indicator")
//
// Validation errors are 400 {"data":{"errors":{field:[msg]}}}; other errors
// use {"errors":[msg]} (401, 404, 429, 5xx).
//
// # Control routes (no auth, never faulted)
//
//	GET    /                    HTML table of indicators, refreshes every 3 s
//	GET    /_emulator/stats     Stats as JSON
//	GET    /_emulator/dump      Dump (types, statuses, indicators with names, scores, attributes, …)
//	POST   /_emulator/reset     drop all state, tokens and faults
//	GET    /_emulator/faults    current faults
//	DELETE /_emulator/faults    clear faults
//	POST   /_emulator/faults    replace faults, e.g.
//	  {"path_prefix":"/api/indicators", "down":true, "down_mode":"503"|"close",
//	   "delay_ms":200, "error_rate":0.3, "fail_next":2, "error_status":503,
//	   "rate_limit_rate":0.5, "rate_limit_next":1, "retry_after_s":2, "expire_tokens":true}
//
// # Use in a test
//
//	emu := tqemu.New(tqemu.Options{Seed: 1})
//	ts := httptest.NewServer(emu)
//	defer ts.Close()
//	// client credentials: tqemu.DefaultClientID, DefaultEmail, DefaultPassword, DefaultClientSecret
//	emu.SetFault(tqemu.Faults{FailNext: 2, ErrorStatus: 503})
//	_ = emu.AnalystSetStatus("203.0.113.7", "Whitelisted")
//	ind, _ := emu.Lookup("IP Address", "203.0.113.7")
//
// A Server is safe for concurrent use.
package tqemu
