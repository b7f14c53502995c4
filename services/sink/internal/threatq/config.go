package threatq

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Config configures a Client. Either Email+Password (password grant) or ClientSecret
// (client-credentials grant) must be set.
type Config struct {
	BaseURL           string        // e.g. https://threatq.example.org (with or without /api)
	ClientID          string        // OAuth client id
	Email             string        // password grant
	Password          string        // password grant; secret
	ClientSecret      string        // client-credentials grant; secret
	CAFile            string        // optional PEM bundle added to the system roots
	Timeout           time.Duration // per HTTP request; default 30s
	AllowInsecureHTTP bool          // allow http:// (emulator, development)
	RefreshMargin     time.Duration // refresh this long before the token expires; default 60s
	DefaultTokenTTL   time.Duration // used when the token response has no expires_in; default 30m
	// MaxIdleConns is how many idle keep-alive connections to ThreatQ are kept (default 16). Set
	// it to the calls the caller makes in parallel, or connections are closed and reopened.
	MaxIdleConns int
	// HTTPClient overrides the client built from Timeout and CAFile (tests). Redirects are never followed.
	HTTPClient *http.Client
}

var (
	errNoBaseURL   = errors.New("threatq config: base url is required")
	errInsecure    = errors.New("threatq config: base url must use https (set AllowInsecureHTTP for the emulator)")
	errNoClientID  = errors.New("threatq config: client id is required")
	errNoCredsPair = errors.New("threatq config: set email and password, or client secret")
)

func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.RefreshMargin <= 0 {
		c.RefreshMargin = 60 * time.Second
	}
	if c.DefaultTokenTTL <= 0 {
		c.DefaultTokenTTL = 30 * time.Minute
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.BaseURL == "" {
		return errNoBaseURL
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("threatq config: invalid base url %q", c.BaseURL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !c.AllowInsecureHTTP {
			return errInsecure
		}
	default:
		return errInsecure
	}
	if c.ClientID == "" {
		return errNoClientID
	}
	password := c.Email != "" && c.Password != ""
	if !password && c.ClientSecret == "" {
		return errNoCredsPair
	}
	return nil
}

const redacted = "[REDACTED]"

func redact(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// String returns the configuration with secrets redacted.
func (c Config) String() string {
	return fmt.Sprintf("threatq.Config{BaseURL:%s ClientID:%s Email:%s Password:%s ClientSecret:%s CAFile:%s Timeout:%s AllowInsecureHTTP:%t}",
		c.BaseURL, redact(c.ClientID), c.Email, redact(c.Password), redact(c.ClientSecret), c.CAFile, c.Timeout, c.AllowInsecureHTTP)
}

// GoString is like String, so %#v does not leak secrets either.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer with secrets redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("client_id", redact(c.ClientID)),
		slog.String("email", c.Email),
		slog.String("password", redact(c.Password)),
		slog.String("client_secret", redact(c.ClientSecret)),
		slog.String("ca_file", c.CAFile),
		slog.Duration("timeout", c.Timeout),
		slog.Bool("allow_insecure_http", c.AllowInsecureHTTP),
	)
}
