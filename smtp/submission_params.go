package smtp

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// command is one parsed command line of the submission listener.
type command struct {
	verb string // upper case
	arg  string // the rest of the line, leading spaces removed
}

// parseCommand splits a command line (without CRLF) into verb and
// argument. Verbs are letters only; anything else is a syntax error.
func parseCommand(line string) (command, error) {
	verb, arg, _ := strings.Cut(line, " ")
	if verb == "" || len(verb) > 16 {
		return command{}, errSyntax
	}
	for i := 0; i < len(verb); i++ {
		c := verb[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return command{}, errSyntax
		}
	}
	return command{verb: strings.ToUpper(verb), arg: strings.TrimLeft(arg, " ")}, nil
}

var errSyntax = errors.New("syntax error")

// pathArg parses "FROM:<path> params" or "TO:<path> params" (RFC 5321
// s4.1.1.2/3; a space after the colon is tolerated as clients send one).
// It returns the address inside the brackets (may be "" for the null
// reverse-path) and the parameter list.
func pathArg(arg, prefix string) (addr string, params []string, err error) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", nil, errSyntax
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	if !strings.HasPrefix(rest, "<") {
		return "", nil, errSyntax
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", nil, errSyntax
	}
	addr = rest[1:end]
	// A source route (@a,@b:user@host) is accepted and ignored (RFC 5321
	// s4.1.2 obs).
	if strings.HasPrefix(addr, "@") {
		i := strings.IndexByte(addr, ':')
		if i < 0 {
			return "", nil, errSyntax
		}
		addr = addr[i+1:]
	}
	if err := checkAddress(addr); err != nil {
		return "", nil, err
	}
	for _, p := range strings.Split(rest[end+1:], " ") {
		if p != "" {
			params = append(params, p)
		}
	}
	return addr, params, nil
}

// checkAddress accepts the mailbox forms this server takes apart:
// local@domain with printable ASCII (or UTF-8) and no spaces, brackets,
// or controls, at most 254 octets; "" is allowed (null path).
func checkAddress(a string) error {
	if len(a) > 254 {
		return errSyntax
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return errSyntax
		}
	}
	if a == "" {
		return nil
	}
	local, dom, ok := strings.Cut(a, "@")
	if local == "" || (ok && (dom == "" || strings.Contains(dom, "@"))) {
		return errSyntax
	}
	return nil
}

// splitAddress returns the local part and the domain (lower case) of an
// address; the domain is "" when there is none.
func splitAddress(a string) (local, domain string) {
	i := strings.LastIndexByte(a, '@')
	if i < 0 {
		return a, ""
	}
	return a[:i], strings.ToLower(a[i+1:])
}

// mailParams are the MAIL FROM parameters the listener knows.
type mailParams struct {
	size      int64
	body      string // "7BIT", "8BITMIME", "BINARYMIME"
	holdFor   time.Duration
	holdUntil time.Time
	hold      bool
	dsn       dsnParams // RET, ENVID; NOTIFY and ORCPT of the recipients
}

// paramError is a parameter refusal with its reply.
type paramError struct {
	code     int
	enhanced [3]int
	msg      string
}

func (e *paramError) Error() string { return e.msg }

func perr(code, a, b, c int, msg string) *paramError {
	return &paramError{code: code, enhanced: [3]int{a, b, c}, msg: msg}
}

// parseMailParams reads MAIL FROM parameters (RFC 1870 SIZE, RFC 6152
// and RFC 3030 BODY, RFC 4865 HOLDFOR/HOLDUNTIL, RFC 4954 AUTH, RFC 3461
// RET and ENVID). now is
// the reference for HOLDFOR/HOLDUNTIL, maxHold their limit (0: refused).
func parseMailParams(params []string, now time.Time, maxHold time.Duration) (mailParams, *paramError) {
	mp := mailParams{body: "7BIT"}
	seen := map[string]bool{}
	for _, p := range params {
		k, v, hasV := strings.Cut(p, "=")
		k = strings.ToUpper(k)
		if seen[k] {
			return mp, perr(501, 5, 5, 4, "Duplicate parameter "+k)
		}
		seen[k] = true
		switch k {
		case "SIZE":
			n, err := strconv.ParseInt(v, 10, 64)
			if !hasV || err != nil || n < 0 || len(v) > 20 {
				return mp, perr(501, 5, 5, 4, "Bad SIZE parameter")
			}
			mp.size = n
		case "BODY":
			switch strings.ToUpper(v) {
			case "7BIT", "8BITMIME", "BINARYMIME":
				mp.body = strings.ToUpper(v)
			default:
				return mp, perr(501, 5, 5, 4, "Unknown BODY type")
			}
		case "AUTH":
			// RFC 4954 s5: accepted, not used.
		case "RET", "ENVID":
			if e := parseMailDSN(&mp.dsn, k, v, hasV); e != nil {
				return mp, e
			}
		case "HOLDFOR":
			if maxHold <= 0 {
				return mp, perr(555, 5, 5, 4, "FUTURERELEASE is not offered")
			}
			if seen["HOLDUNTIL"] {
				return mp, perr(501, 5, 5, 4, "HOLDFOR and HOLDUNTIL together")
			}
			n, err := strconv.ParseUint(v, 10, 63)
			if !hasV || err != nil || len(v) > 12 {
				return mp, perr(501, 5, 5, 4, "Bad HOLDFOR parameter")
			}
			d := time.Duration(n) * time.Second
			if n > uint64(maxHold/time.Second) {
				return mp, perr(501, 5, 5, 4, "HOLDFOR exceeds the maximum of "+strconv.FormatInt(int64(maxHold/time.Second), 10)+" seconds")
			}
			mp.holdFor, mp.hold = d, true
		case "HOLDUNTIL":
			if maxHold <= 0 {
				return mp, perr(555, 5, 5, 4, "FUTURERELEASE is not offered")
			}
			if seen["HOLDFOR"] {
				return mp, perr(501, 5, 5, 4, "HOLDFOR and HOLDUNTIL together")
			}
			t, err := parseHoldUntil(v)
			if !hasV || err != nil {
				return mp, perr(501, 5, 5, 4, "Bad HOLDUNTIL parameter")
			}
			if t.After(now.Add(maxHold)) {
				return mp, perr(501, 5, 5, 4, "HOLDUNTIL is beyond the maximum release time")
			}
			mp.holdUntil, mp.hold = t, true
		default:
			return mp, perr(555, 5, 5, 4, "Unsupported MAIL parameter "+k)
		}
	}
	return mp, nil
}

// parseHoldUntil parses an RFC 3339 date-time as RFC 4865 s4 gives it
// (upper case T and Z; fractions allowed).
func parseHoldUntil(v string) (time.Time, error) {
	if len(v) > 40 || strings.ContainsAny(v, "tz ") {
		return time.Time{}, errSyntax
	}
	return time.Parse(time.RFC3339Nano, v)
}

// releaseTime is when a message submitted at now with mp is released.
func (mp mailParams) releaseTime(now time.Time) time.Time {
	if !mp.holdUntil.IsZero() {
		return mp.holdUntil
	}
	return now.Add(mp.holdFor)
}

// bdatArg parses "BDAT <size> [LAST]" arguments (RFC 3030 s2).
func bdatArg(arg string) (size int64, last bool, err error) {
	f := strings.Fields(arg)
	if len(f) < 1 || len(f) > 2 || len(f[0]) > 18 {
		return 0, false, errSyntax
	}
	for i := 0; i < len(f[0]); i++ {
		if f[0][i] < '0' || f[0][i] > '9' {
			return 0, false, errSyntax
		}
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, false, errSyntax
	}
	if len(f) == 2 {
		if !strings.EqualFold(f[1], "LAST") {
			return 0, false, errSyntax
		}
		last = true
	}
	return n, last, nil
}

// burlArg parses "BURL <absolute-URI> [LAST]" arguments (RFC 4468 s3.3).
func burlArg(arg string) (url string, last bool, err error) {
	f := strings.Fields(arg)
	if len(f) < 1 || len(f) > 2 {
		return "", false, errSyntax
	}
	if len(f) == 2 {
		if !strings.EqualFold(f[1], "LAST") {
			return "", false, errSyntax
		}
		last = true
	}
	return f[0], last, nil
}
