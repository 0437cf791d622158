package vmstore

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: the account, mailbox, message or entry does not exist.
	ErrNotFound = errors.New("vmstore: not found")
	// ErrExists: an account or mailbox of that name exists already.
	ErrExists = errors.New("vmstore: already exists")
	// ErrOverQuota: the deposit would exceed the account's quota; nothing was stored.
	ErrOverQuota = errors.New("vmstore: over quota")
	// ErrTooBig: the message exceeds the configured maximum message size.
	ErrTooBig = errors.New("vmstore: message too big")
	// ErrInvalidName: a user or mailbox name that the store cannot hold.
	ErrInvalidName = errors.New("vmstore: invalid name")
	// ErrBadName: an account name outside the account-name syntax
	// (CheckUserName). It is an ErrInvalidName.
	ErrBadName = fmt.Errorf("%w: account name", ErrInvalidName)
	// ErrInvalid: an argument out of range (empty message, bad flag, ...).
	ErrInvalid = errors.New("vmstore: invalid argument")
	// ErrNotPermitted: the operation is not allowed on that object (deleting
	// INBOX, renaming onto INBOX, ...).
	ErrNotPermitted = errors.New("vmstore: operation not permitted")
	// ErrAuth: wrong password or PIN.
	ErrAuth = errors.New("vmstore: authentication failed")
	// ErrStoreFailed: a sequenced write could not be made durable; the store
	// refuses further writes until it is reopened.
	ErrStoreFailed = errors.New("vmstore: store failed, restart required")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("vmstore: closed")
	// ErrModified: a conditional STORE (UNCHANGEDSINCE) found a newer modseq.
	ErrModified = errors.New("vmstore: modified since")
)

// ErrUnknownAccount: no account of that name. It matches ErrNotFound too.
var ErrUnknownAccount error = unknownAccountError{}

type unknownAccountError struct{}

func (unknownAccountError) Error() string   { return "vmstore: unknown account" }
func (unknownAccountError) Is(t error) bool { return t == ErrNotFound }
