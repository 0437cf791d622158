package vmstore

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"
)

// Previews (RFC 8970).
//
// A message's preview is computed once, at deposit, from what the parser
// saw while the message streamed in, and kept in its structure
// (Part.Preview of the root), so a FETCH PREVIEW of many messages reads no
// bodies. For a voice, fax or video message it names the caller, the
// duration and the time ("Voice message from +15551234567, 0:42,
// 2026-12-04 10:15"), followed by the text part when there is one (a
// transcription). For other messages it is the start of the first text
// part (text/plain, else text/html without its markup) that is not an
// attachment, decoded to UTF-8 with its white space collapsed, at most 256
// characters. Messages stored before previews existed get theirs computed
// from the content on first request (Store.Preview) and cached in memory.

// PreviewChars is the longest preview, in characters (RFC 8970 s3).
const PreviewChars = 256

// previewHeadBytes is how much of a text part's body is kept to compute
// the preview: enough for 256 characters after decoding and markup.
const previewHeadBytes = 16 << 10

// textCapture is the start of a text part, kept while parsing.
type textCapture struct {
	encoding, charset string
	html              bool
	head              []byte
}

func (tc *textCapture) text() string {
	if tc == nil {
		return ""
	}
	var r io.Reader = bytes.NewReader(tc.head)
	switch tc.encoding {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &b64Clean{r: r})
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	}
	b, _ := io.ReadAll(r) // a cut-off tail decodes as far as it goes
	s := toUTF8(b, tc.charset)
	if tc.html {
		s = stripHTML(s)
	} else {
		s = dropQuoted(s)
	}
	return collapseSpace(s)
}

// b64Clean drops what is not base64 (line ends) and stops at a cut-off
// group instead of failing.
type b64Clean struct {
	r   io.Reader
	buf []byte
	eof bool
}

func (c *b64Clean) Read(p []byte) (int, error) {
	if c.buf == nil {
		all, _ := io.ReadAll(c.r)
		for _, b := range all {
			if b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '+' || b == '/' || b == '=' {
				c.buf = append(c.buf, b)
			}
		}
		c.buf = c.buf[:len(c.buf)/4*4]
		if c.buf == nil {
			c.buf = []byte{}
		}
	}
	if len(c.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

func toUTF8(b []byte, charset string) string {
	cs := strings.ToLower(strings.TrimSpace(charset))
	if cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if enc, err := htmlindex.Get(cs); err == nil {
			if d, err := enc.NewDecoder().Bytes(b); err == nil {
				b = d
			}
		}
	}
	return strings.ToValidUTF8(string(b), "")
}

var (
	htmlDrop = regexp.MustCompile(`(?is)<(script|style|head)\b.*?</(script|style|head)\s*>`)
	htmlTag  = regexp.MustCompile(`(?s)<[^>]*>`)
)

func stripHTML(s string) string {
	s = htmlDrop.ReplaceAllString(s, " ")
	s = htmlTag.ReplaceAllString(s, " ")
	return html.UnescapeString(s)
}

// dropQuoted removes the lines of plain text quoted from another message
// ("> ..."): they say nothing new.
func dropQuoted(s string) string {
	if !strings.Contains(s, ">") {
		return s
	}
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimLeft(l, " \t"), ">") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// collapseSpace turns every run of white space and control characters into
// one space and trims the ends.
func collapseSpace(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// cutChars cuts s to at most n characters.
func cutChars(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// formatDuration gives m:ss, or h:mm:ss from an hour.
func formatDuration(sec float64) string {
	d := int64(sec + 0.5)
	if d >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", d/3600, d/60%60, d%60)
	}
	return fmt.Sprintf("%d:%02d", d/60, d%60)
}

// callerName is what a preview calls the sender: the display name, else
// the local part when it is a number (+15551234567@vm.example.net), else
// the address.
func callerName(from string) string {
	dec := new(mime.WordDecoder)
	if a, err := mail.ParseAddress(from); err == nil {
		if a.Name != "" {
			return a.Name
		}
		local, _, _ := strings.Cut(a.Address, "@")
		if strings.TrimLeft(local, "+0123456789") == "" && local != "" {
			return local
		}
		return a.Address
	}
	if d, err := dec.DecodeHeader(from); err == nil {
		from = d
	}
	if from = strings.TrimSpace(from); from == "" {
		return "unknown caller"
	}
	return from
}

// preview computes a message's preview from what the parser kept.
func (out *parsed) preview(plain, htmlPart *textCapture, rawFrom, rawDate string) string {
	text := plain.text()
	if text == "" {
		text = htmlPart.text()
	}
	switch out.context {
	case ContextVoice, ContextFax, ContextVideo:
		kind := map[Context]string{ContextVoice: "Voice", ContextFax: "Fax", ContextVideo: "Video"}[out.context]
		parts := []string{kind + " message from " + callerName(rawFrom)}
		if out.duration > 0 {
			parts = append(parts, formatDuration(out.duration))
		}
		if t, err := mail.ParseDate(rawDate); err == nil {
			parts = append(parts, t.Format("2006-01-02 15:04"))
		}
		p := strings.Join(parts, ", ")
		if text != "" {
			p += ": " + text
		}
		return cutChars(collapseSpace(strings.ToValidUTF8(p, "")), PreviewChars)
	}
	return cutChars(text, PreviewChars)
}

// previewCache holds the previews computed for messages stored without
// one, by content hash (a preview depends on the content only).
var previewCache = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

const previewCacheMax = 4096

// Preview returns the message's RFC 8970 preview. With lazy, a preview that
// was not stored at deposit and is not cached yet is not computed (ok is
// false); otherwise it is computed from the content and cached.
func (s *Store) Preview(m *Message, root *Part, lazy bool) (preview string, ok bool, err error) {
	if root.Preview != nil {
		return *root.Preview, true, nil
	}
	key := string(m.Hash)
	previewCache.Lock()
	p, ok := previewCache.m[key]
	previewCache.Unlock()
	if ok || lazy {
		return p, ok, nil
	}
	pm, err := parseMessage(s.OpenMessage(m).Reader(), nil)
	if err != nil {
		return "", false, err
	}
	p = *pm.root.Preview
	previewCache.Lock()
	if len(previewCache.m) >= previewCacheMax {
		clear(previewCache.m)
	}
	previewCache.m[key] = p
	previewCache.Unlock()
	return p, true, nil
}
