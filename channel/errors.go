package channel

import (
	"errors"
	"strconv"
)

var (
	// ErrBadURL reports a string that is not a valid absolute IMAP URL
	// (RFC 5092 s11). Every error of Parse, ParseRef and ParseAccess
	// matches it with errors.Is, whatever more specific sentinel it also
	// carries.
	ErrBadURL = errors.New("channel: malformed IMAP URL")
	// ErrNotIMAP reports an absolute URL of another scheme than imap.
	ErrNotIMAP = errors.New("channel: not an imap URL")
	// ErrRelativeURL reports a relative reference where an absolute URL
	// is required, or a relative-path reference, which RFC 5092 s7.2
	// forbids accepting at all.
	ErrRelativeURL = errors.New("channel: relative IMAP URL")
	// ErrMissingUID reports a message-part component (;SECTION=,
	// ;PARTIAL=, ;EXPIRE=, ;URLAUTH=) on a URL that names no message:
	// RFC 5092 s6 allows them only after ;UID=.
	ErrMissingUID = errors.New("channel: IMAP URL names no message (;UID= missing)")
	// ErrBadAccess reports a URLAUTH access identifier that is not one of
	// anonymous, authuser, user+<userid>, submit+<userid> or an RFC 5593
	// application form.
	ErrBadAccess = errors.New("channel: invalid URLAUTH access identifier")
	// ErrMUTF7 reports a mailbox name that is not valid modified UTF-7
	// (RFC 3501 s5.1.3).
	ErrMUTF7 = errors.New("channel: invalid modified UTF-7 mailbox name")
)

// URLError describes why a URL was refused. It never repeats the URL
// itself: URLAUTH URLs are bearer credentials and errors end up in logs.
type URLError struct {
	// Err is the most specific sentinel (ErrBadURL, ErrNotIMAP,
	// ErrRelativeURL, ErrMissingUID, ErrBadAccess).
	Err error
	// Offset is the byte offset in the input where the problem was found.
	Offset int
	// Reason says what was wrong, in words.
	Reason string
}

func (e *URLError) Error() string {
	return e.Err.Error() + ": " + e.Reason + " (at offset " + strconv.Itoa(e.Offset) + ")"
}

// Unwrap returns the sentinel.
func (e *URLError) Unwrap() error { return e.Err }

// Is makes every URLError match ErrBadURL as well as its own sentinel.
func (e *URLError) Is(target error) bool { return target == ErrBadURL }

func urlErr(sentinel error, off int, reason string) error {
	return &URLError{Err: sentinel, Offset: off, Reason: reason}
}
