package imap

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// casemap is the i;unicode-casemap comparator's key (RFC 5051, the
// comparator of I18NLEVEL=1, RFC 5255): every character mapped to its
// titlecase form and the result fully decomposed (NFKD). The mapping is
// applied again after the decomposition, so that compatibility characters
// that decompose into letters (the ligature U+FB01 "fi") fold like those
// letters written out; two strings are equal under the comparator when
// their keys are equal octet for octet.
func casemap(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(s)
	}
	t := strings.Map(unicode.ToTitle, s)
	t = norm.NFKD.String(t)
	return strings.Map(unicode.ToTitle, t)
}

// containsFold is the i;unicode-casemap substring match used by SEARCH.
func containsFold(s, sub string) bool {
	return strings.Contains(casemap(s), casemap(sub))
}
