package notify

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrClosed is returned by calls on a dispatcher or server that was closed
	// or never initialized.
	ErrClosed = errors.New("notify: closed")
	// ErrSinkDisabled is returned by a sink that the receiver asked to stop
	// (HTTP 410 Gone, Standard Webhooks "disable the endpoint"). The
	// dispatcher stops delivering to the sink, keeps its cursor where it is
	// and records the state durably until EnableSink is called.
	ErrSinkDisabled = errors.New("notify: sink disabled by receiver")
	// ErrUnknownSink names a sink the dispatcher does not have.
	ErrUnknownSink = errors.New("notify: unknown sink")
	// ErrConfig reports an invalid configuration field.
	ErrConfig = errors.New("notify: invalid configuration")
	// ErrDelivery is the base of delivery failures that are worth a retry.
	ErrDelivery = errors.New("notify: delivery failed")
	// ErrForbiddenAddress is returned when a webhook URL resolves to a
	// loopback, link-local or unspecified address and the sink does not
	// allow private targets (SSRF guard, media-and-notify notes s6.4).
	ErrForbiddenAddress = errors.New("notify: destination address not allowed")
	// ErrNoTarget is returned by the VVM sink for an account without a
	// phone number to send the SMS to.
	ErrNoTarget = errors.New("notify: no destination for account")
	// ErrVVMFormat reports a malformed OMTP VVM SMS text.
	ErrVVMFormat = errors.New("notify: malformed VVM SMS")
	// ErrHeld is returned by a sink that holds an event for now (the user
	// is online, see HoldWhileOnline); the dispatcher asks again after
	// HoldPoll without counting an attempt.
	ErrHeld = errors.New("notify: held while the user is online")
	// ErrMWIFormat reports a malformed application/simple-message-summary body.
	ErrMWIFormat = errors.New("notify: malformed message-summary body")
)

// PermanentError wraps an error that retrying cannot fix: the dispatcher
// dead-letters the event at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as not worth a retry.
func Permanent(err error) error { return &PermanentError{Err: err} }

// RetryAfterError asks the dispatcher to wait at least After before the
// next attempt (HTTP 429/503 Retry-After).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }
