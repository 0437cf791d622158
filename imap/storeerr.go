package imap

import (
	"errors"

	"github.com/lemonvox/lemonvox/vmstore"
)

// xstoreErr maps a store error to the tagged reply: user errors get a
// RFC 5530 response code, the rest is a server error.
func xstoreErr(err error, what string) {
	if err == nil {
		return
	}
	switch {
	case errors.Is(err, vmstore.ErrNotFound):
		xusererrorf("NONEXISTENT", "%s: no such mailbox or message", what)
	case errors.Is(err, vmstore.ErrExists):
		xusererrorf("ALREADYEXISTS", "%s: already exists", what)
	case errors.Is(err, vmstore.ErrOverQuota):
		xusererrorf("OVERQUOTA", "%s: over quota", what)
	case errors.Is(err, vmstore.ErrTooBig):
		xusererrorf("TOOBIG", "%s: message too big", what)
	case errors.Is(err, vmstore.ErrInvalidName), errors.Is(err, vmstore.ErrInvalid), errors.Is(err, vmstore.ErrNotPermitted):
		xusererrorf("CANNOT", "%s: %v", what, err)
	case errors.Is(err, vmstore.ErrClosed), errors.Is(err, vmstore.ErrStoreFailed):
		xusererrorf("UNAVAILABLE", "%s: store unavailable", what)
	}
	xcheckf(err, "%s", what)
}
