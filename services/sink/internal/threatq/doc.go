// Package threatq is a client for the subset of the ThreatQ REST API the sink uses
// (/work/shared/specs/threatq-api.md): OAuth2 token handling (password or client-credentials grant,
// refresh before expiry, one re-auth and retry on 401), type and status id resolution by name,
// indicator consume (upsert), reads, queries, attribute replacement, status and manual score.
//
//	c, err := threatq.New(threatq.Config{BaseURL: "https://tq.example.org", ClientID: id,
//		Email: user, Password: pass}, logger)
//	if err != nil { return err }
//	if err := c.Resolve(ctx); err != nil { return err } // type/status ids of this instance
//	res, err := c.Consume(ctx, []threatq.Indicator{{Value: "203.0.113.7", Type: "IP Address", Status: "Active"}})
//
// Errors match ErrValidation, ErrUnauthorized, ErrForbidden, ErrNotFound, ErrUnavailable or
// ErrRateLimited with errors.Is and carry ThreatQ's text in *APIError. Credentials and tokens never
// appear in errors or logs.
package threatq
