package wire

import (
	"errors"
	"fmt"
)

// SyntaxError reports a client command that does not follow the grammar
// (RFC 9051 s9). The command is answered with a tagged BAD.
type SyntaxError struct {
	Pos int    // byte offset in the current line segment
	Msg string // what was expected
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("syntax error at %d: %s", e.Pos, e.Msg)
}

// LiteralTooBigError reports a literal above the configured bound. For a
// synchronizing literal nothing was sent by the client yet and the session can
// go on (RFC 7888 s4: answer NO [TOOBIG] or BAD); for a non-synchronizing one
// the octets follow regardless and the connection cannot be resynchronized.
type LiteralTooBigError struct {
	Size int64
	Max  int64
	Sync bool
}

func (e *LiteralTooBigError) Error() string {
	return fmt.Sprintf("literal of %d octets exceeds %d", e.Size, e.Max)
}

var (
	// ErrLineTooLong: the command line (without literals) exceeds MaxLine.
	// The rest of the line was discarded.
	ErrLineTooLong = errors.New("wire: command line too long")
	// errNoLiteral: OpenLiteral called where no literal starts.
	errNoLiteral = errors.New("wire: no literal here")
)

// IsSyntax reports whether err is a client syntax problem (BAD) rather than
// an I/O failure.
func IsSyntax(err error) bool {
	var se *SyntaxError
	var le *LiteralTooBigError
	return errors.As(err, &se) || errors.As(err, &le) || errors.Is(err, ErrLineTooLong)
}
