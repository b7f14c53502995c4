package tqemu

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// tokenResponse is the body of a successful POST /api/token [V S4,S5,S6].
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// handleToken serves POST /api/token. Fields may come from the query string
// (S2, S4) or a JSON body (S3, S5, S7, S8); a form body is also accepted [I].
// Bad credentials are 400 [V S4,S7]; the body shape is [I] (OAuth2 style).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	fields, err := tokenFields(r)
	if err != nil {
		writeTokenError(w, "invalid_request", err.Error())
		return
	}
	get := func(k string) string {
		if v := r.URL.Query().Get(k); v != "" {
			return v
		}
		return fields[k]
	}
	switch gt := get("grant_type"); gt {
	case "password":
		if !eq(get("client_id"), s.opts.ClientID) || !eq(get("email"), s.opts.Email) || !eq(get("password"), s.opts.Password) {
			writeTokenError(w, "invalid_grant", "The user credentials were incorrect.")
			return
		}
	case "client_credentials":
		id, secret, ok := r.BasicAuth()
		if !ok || !eq(id, s.opts.ClientID) || !eq(secret, s.opts.ClientSecret) {
			writeTokenError(w, "invalid_client", "Client authentication failed.")
			return
		}
	case "refresh_token":
		rt := get("refresh_token")
		s.mu.Lock()
		exp, ok := s.refresh[rt]
		if ok {
			delete(s.refresh, rt) // refresh tokens rotate [I]
		}
		s.mu.Unlock()
		if !ok || !s.now().Before(exp) {
			writeTokenError(w, "invalid_request", "The refresh token is invalid.")
			return
		}
	case "":
		writeTokenError(w, "unsupported_grant_type", "The grant_type parameter is required.")
		return
	default:
		writeTokenError(w, "unsupported_grant_type", "Unsupported grant type "+gt+".")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, s.issue())
}

// IssueToken returns a fresh valid access token without an HTTP round trip,
// for tests that exercise routes other than /api/token.
func (s *Server) IssueToken() string { return s.issue().AccessToken }

func (s *Server) issue() tokenResponse {
	at, rt := randomToken(), randomToken()
	now := s.now()
	s.mu.Lock()
	s.tokens[at] = now.Add(s.opts.TokenTTL)
	s.refresh[rt] = now.Add(s.opts.RefreshTTL)
	s.stats.TokensIssued++
	s.mu.Unlock()
	return tokenResponse{AccessToken: at, TokenType: "bearer", ExpiresIn: int(s.opts.TokenTTL.Seconds()), RefreshToken: rt}
}

// ExpireTokens invalidates every access token at once (a "token expiry
// storm"). Refresh tokens stay valid, so a client can refresh or log in again.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	s.tokens = map[string]time.Time{}
	s.mu.Unlock()
}

// authorized checks "Authorization: Bearer <token>". The scheme is
// case-sensitive: ThreatQ rejected lowercase "bearer" in a live test [V S8].
func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	if !ok {
		return false
	}
	if !s.now().Before(exp) {
		delete(s.tokens, tok)
		return false
	}
	return true
}

func tokenFields(r *http.Request) (map[string]string, error) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	if len(strings.TrimSpace(string(b))) == 0 {
		return out, nil
	}
	// Sniff rather than trust Content-Type: curl -d labels JSON as a form.
	if trimmed := strings.TrimSpace(string(b)); !strings.HasPrefix(trimmed, "{") {
		vals, err := url.ParseQuery(string(b))
		if err != nil {
			return nil, err
		}
		for k := range vals {
			out[k] = vals.Get(k)
		}
		return out, nil
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	for k, v := range raw {
		if sv, ok := v.(string); ok {
			out[k] = sv
		}
	}
	return out, nil
}

func writeTokenError(w http.ResponseWriter, code, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": msg, "message": msg})
}

func eq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func randomToken() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}
