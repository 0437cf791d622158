package imap

import (
	"errors"
	"fmt"
)

var (
	// ErrNoStore: Initialize was called without a Store.
	ErrNoStore = errors.New("imap: no store configured")
	// ErrNoListener: neither Addr nor TLSAddr is set.
	ErrNoListener = errors.New("imap: no listen address configured")
	// ErrTLSConfig: TLSAddr or STARTTLS needs a TLS configuration.
	ErrTLSConfig = errors.New("imap: TLS address set without TLS configuration")

	// errLogout: the client logged out; the connection ends normally.
	errLogout = errors.New("imap: logout")
)

// The three kinds of command failure, split as RFC 9051 s7.1 does:
//   - syntaxError: the command cannot be parsed or is not valid in this
//     state: tagged BAD, counts toward the bad-command limit;
//   - userError: the command was understood but cannot be done (no such
//     mailbox, over quota): tagged NO with a response code;
//   - serverError: something failed on our side: tagged NO [SERVERBUG],
//     logged with the cause.
//
// Command handlers raise them with the x-helpers (xsyntaxf, xusererrorf,
// xcheckf), which panic; the recover at the command boundary turns the panic
// into the tagged reply. Panics of any other type are bugs: they are logged
// with a stack and answered like a serverError.
type syntaxError struct {
	code string // optional response code
	msg  string
}

func (e syntaxError) Error() string { return e.msg }

type userError struct {
	code string // response code without brackets, e.g. "NONEXISTENT"
	msg  string
}

func (e userError) Error() string { return e.msg }

type serverError struct {
	err error
}

func (e serverError) Error() string { return e.err.Error() }
func (e serverError) Unwrap() error { return e.err }

func xsyntaxf(format string, args ...any) {
	panic(syntaxError{msg: fmt.Sprintf(format, args...)})
}

func xusererrorf(code, format string, args ...any) {
	panic(userError{code: code, msg: fmt.Sprintf(format, args...)})
}

// xcheckf raises a serverError when err is not nil.
func xcheckf(err error, format string, args ...any) {
	if err != nil {
		panic(serverError{fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)})
	}
}
