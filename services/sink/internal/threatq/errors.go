package threatq

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors classify every error the client returns; check them with errors.Is.
var (
	// ErrValidation means ThreatQ rejected the request (HTTP 400). It is not retryable.
	ErrValidation = errors.New("threatq: validation failed")
	// ErrUnauthorized means the credentials or the token were refused (HTTP 401, or 400 on /api/token).
	ErrUnauthorized = errors.New("threatq: unauthorized")
	// ErrForbidden means the account may not perform the request (HTTP 403).
	ErrForbidden = errors.New("threatq: forbidden")
	// ErrNotFound means the object does not exist (HTTP 404, or an empty lookup).
	ErrNotFound = errors.New("threatq: not found")
	// ErrUnavailable means ThreatQ could not be reached or failed (5xx, timeout, connection error).
	// It is retryable.
	ErrUnavailable = errors.New("threatq: unavailable")
	// ErrRateLimited means ThreatQ answered 429; APIError.RetryAfter holds its Retry-After, if any.
	ErrRateLimited = errors.New("threatq: rate limited")
	// ErrUnresolved means a type or status name is not known to the instance (or Resolve was not called).
	ErrUnresolved = errors.New("threatq: unknown type or status")
)

// APIError is an error answer from ThreatQ, or a transport failure (Status 0).
// Message holds ThreatQ's error text; it never contains credentials or tokens.
type APIError struct {
	Op         string        // short operation name, e.g. "consume"
	Status     int           // HTTP status, 0 for a transport failure
	Message    string        // ThreatQ's error text, or the transport error
	RetryAfter time.Duration // from a Retry-After header, 0 when absent
}

// Error implements error.
func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("threatq %s: %s", e.Op, e.Message)
	}
	return fmt.Sprintf("threatq %s: http %d: %s", e.Op, e.Status, e.Message)
}

// Is maps the error onto the package sentinels.
func (e *APIError) Is(target error) bool {
	return errors.Is(classify(e.Status), target) && target != nil
}

func classify(status int) error {
	switch {
	case status == 0:
		return ErrUnavailable
	case status == http.StatusBadRequest, status == http.StatusUnprocessableEntity:
		return ErrValidation
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status == http.StatusRequestTimeout, status >= 500:
		return ErrUnavailable
	default:
		return errUnexpected
	}
}

var errUnexpected = errors.New("threatq: unexpected status")

// Retryable reports whether err is worth retrying later: unavailable or rate limited.
func Retryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRateLimited)
}

// RetryAfter returns the Retry-After ThreatQ sent with err, or 0.
func RetryAfter(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}
