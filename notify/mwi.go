package notify

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/lemonvox/lemonvox/vmstore"
)

// MWIContentType is the RFC 3842 s5 body type.
const MWIContentType = "application/simple-message-summary"

// Summary is a parsed message-summary body (RFC 3842 s5.2).
type Summary struct {
	Waiting bool
	Account string
	// Counts by RFC 3842 header name, e.g. "Voice-Message".
	Counts map[string]vmstore.MWICount
}

// FormatSummary builds an RFC 3842 s5.2 message-summary body:
//
//	Messages-Waiting: yes|no
//	Message-Account: <account>
//	Voice-Message: new/old (urgent-new/urgent-old)
//	... one line per other context that has messages
//
// The Voice-Message line is always present (many phones read only that
// line); video and multimedia are summed into Multimedia-Message since
// RFC 3842 has no video class. Messages-Waiting is "yes" iff a new message
// of any reported class waits.
func FormatSummary(account string, m *vmstore.MWI) []byte {
	type line struct {
		label string
		c     vmstore.MWICount
	}
	var lines []line
	idx := map[string]int{}
	waiting := false
	add := func(label string, c vmstore.MWICount) {
		if i, ok := idx[label]; ok {
			l := &lines[i].c
			l.New += c.New
			l.Old += c.Old
			l.UrgentNew += c.UrgentNew
			l.UrgentOld += c.UrgentOld
			return
		}
		idx[label] = len(lines)
		lines = append(lines, line{label, c})
	}
	add(vmstore.ContextVoice.MWILabel(), vmstore.MWICount{})
	if m != nil {
		for _, ctx := range vmstore.Contexts {
			c, ok := m.Counts[ctx]
			if !ok || c == (vmstore.MWICount{}) {
				continue
			}
			if c.New > 0 {
				waiting = true
			}
			add(ctx.MWILabel(), c)
		}
	}
	var b bytes.Buffer
	b.WriteString("Messages-Waiting: ")
	if waiting {
		b.WriteString("yes\r\n")
	} else {
		b.WriteString("no\r\n")
	}
	if account != "" {
		b.WriteString("Message-Account: " + account + "\r\n")
	}
	for _, l := range lines {
		fmt.Fprintf(&b, "%s: %d/%d (%d/%d)\r\n", l.label, l.c.New, l.c.Old, l.c.UrgentNew, l.c.UrgentOld)
	}
	return b.Bytes()
}

// ParseSummary parses a message-summary body (RFC 3842 s5.2): names are
// case-insensitive, spaces around ":" "/" and the parentheses optional,
// the urgent part optional; the optional message-header block after an
// empty line is ignored.
func ParseSummary(body []byte) (*Summary, error) {
	s := &Summary{Counts: map[string]vmstore.MWICount{}}
	sc := bufio.NewScanner(bytes.NewReader(body))
	first := true
	for sc.Scan() {
		ln := strings.TrimSpace(sc.Text())
		if ln == "" {
			if first {
				continue
			}
			break // opt-msg-headers follow
		}
		name, val, ok := strings.Cut(ln, ":")
		if !ok {
			return nil, fmt.Errorf("%w: line %q", ErrMWIFormat, ln)
		}
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		switch {
		case first:
			if !strings.EqualFold(name, "Messages-Waiting") {
				return nil, fmt.Errorf("%w: first line %q", ErrMWIFormat, ln)
			}
			switch strings.ToLower(val) {
			case "yes":
				s.Waiting = true
			case "no":
			default:
				return nil, fmt.Errorf("%w: Messages-Waiting %q", ErrMWIFormat, val)
			}
			first = false
		case strings.EqualFold(name, "Message-Account"):
			s.Account = val
		default:
			c, err := parseCountLine(val)
			if err != nil {
				return nil, fmt.Errorf("%w: %q: %v", ErrMWIFormat, ln, err)
			}
			s.Counts[canonLabel(name)] = c
		}
	}
	if first {
		return nil, fmt.Errorf("%w: empty body", ErrMWIFormat)
	}
	return s, sc.Err()
}

func canonLabel(name string) string {
	parts := strings.Split(strings.ToLower(name), "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// parseCountLine parses "new/old [(urgent-new/urgent-old)]".
func parseCountLine(v string) (vmstore.MWICount, error) {
	var c vmstore.MWICount
	main, urgent, hasUrgent := strings.Cut(v, "(")
	n, o, err := parsePair(main)
	if err != nil {
		return c, err
	}
	c.New, c.Old = n, o
	if hasUrgent {
		u, ok := strings.CutSuffix(strings.TrimSpace(urgent), ")")
		if !ok {
			return c, fmt.Errorf("missing )")
		}
		if c.UrgentNew, c.UrgentOld, err = parsePair(u); err != nil {
			return c, err
		}
	}
	return c, nil
}

func parsePair(s string) (uint32, uint32, error) {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, fmt.Errorf("missing /")
	}
	x, err := strconv.ParseUint(strings.TrimSpace(a), 10, 32)
	if err != nil {
		return 0, 0, err
	}
	y, err := strconv.ParseUint(strings.TrimSpace(b), 10, 32)
	if err != nil {
		return 0, 0, err
	}
	return uint32(x), uint32(y), nil
}
