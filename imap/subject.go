package imap

import "strings"

// baseSubject is RFC 5256 s2.1's base subject of a subject whose encoded
// words are already decoded (the store keeps it so), case-folded for
// comparison (i;unicode-casemap).
func baseSubject(s string) string {
	b, _ := extractBaseSubject(s)
	return casemap(b)
}

// extractBaseSubject runs the RFC 5256 s2.1 algorithm. It also reports
// whether the subject marked a reply or forward (a subj-refwd leader, a
// "(fwd)" trailer or a [fwd: ...] wrapper was removed), which the
// REFERENCES thread algorithm needs.
func extractBaseSubject(s string) (string, bool) {
	// (1) Tabs and continuations become spaces, runs of spaces one space.
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteByte(c)
	}
	s = b.String()
	reply := false
	for {
		// (2) Remove subj-trailers ("(fwd)" / WSP) until none is left.
		for {
			if strings.HasSuffix(s, " ") {
				s = s[:len(s)-1]
				continue
			}
			if len(s) >= 5 && strings.EqualFold(s[len(s)-5:], "(fwd)") {
				s = s[:len(s)-5]
				reply = true
				continue
			}
			break
		}
		// (3)-(5) Remove subj-leaders, and subj-blobs that leave a
		// non-empty subj-base, until neither matches.
		for {
			if n, ok := subjLeader(s); ok {
				if strings.TrimLeft(s[:n], " ") != "" {
					reply = true
				}
				s = s[n:]
				continue
			}
			if n, ok := subjBlob(s, 0); ok && hasNonWSP(s[n:]) {
				s = s[n:]
				continue
			}
			break
		}
		// (6) A subj-fwd-hdr and subj-fwd-trl around the rest are removed,
		// and the whole is done again.
		if len(s) >= 5 && strings.EqualFold(s[:5], "[fwd:") && strings.HasSuffix(s, "]") {
			s = s[5 : len(s)-1]
			reply = true
			continue
		}
		return s, reply
	}
}

func hasNonWSP(s string) bool { return strings.Trim(s, " \t") != "" }

// subjBlob matches subj-blob = "[" *BLOBCHAR "]" *WSP at s[i:] and returns
// the end of the match.
func subjBlob(s string, i int) (int, bool) {
	if i >= len(s) || s[i] != '[' {
		return 0, false
	}
	j := i + 1
	for j < len(s) && s[j] != '[' && s[j] != ']' {
		j++
	}
	if j >= len(s) || s[j] != ']' {
		return 0, false
	}
	j++
	for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
		j++
	}
	return j, true
}

// subjLeader matches subj-leader = (*subj-blob subj-refwd) / WSP at the
// start of s, with subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":".
func subjLeader(s string) (int, bool) {
	if s != "" && (s[0] == ' ' || s[0] == '\t') {
		return 1, true
	}
	i := 0
	for {
		if n, ok := refwd(s, i); ok {
			return n, true
		}
		n, ok := subjBlob(s, i)
		if !ok {
			return 0, false
		}
		i = n
	}
}

func refwd(s string, i int) (int, bool) {
	rest := s[i:]
	switch {
	case len(rest) >= 2 && strings.EqualFold(rest[:2], "re"):
		i += 2
	case len(rest) >= 3 && strings.EqualFold(rest[:3], "fwd"):
		i += 3
	case len(rest) >= 2 && strings.EqualFold(rest[:2], "fw"):
		i += 2
	default:
		return 0, false
	}
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if n, ok := subjBlob(s, i); ok {
		i = n
	}
	if i < len(s) && s[i] == ':' {
		return i + 1, true
	}
	return 0, false
}
