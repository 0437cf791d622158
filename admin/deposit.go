package admin

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// Prober recognises a media file from its first bytes (sniffing magic
// numbers, never a file name) and tells its media type and, when the size
// of the whole file is known (size >= 0), its duration from that size (0
// when it cannot tell). cmd wires transcode's prober.
type Prober func(head []byte, size int64) (mediaType string, duration time.Duration, ok bool)

// ErrUnsupportedMedia: the content is neither a known audio file nor an
// RFC 5322 message.
var ErrUnsupportedMedia = errors.New("admin: content is neither a supported audio file nor an RFC 5322 message")

// DepositOptions go with a deposit of a file.
type DepositOptions struct {
	User, Mailbox string
	From, To      string
	Subject       string
	Urgent        bool
	Context       vmstore.Context
	Service       string
	// AsMessage forces the content to be taken as a ready RFC 5322 message.
	AsMessage bool
	// Size is the size of the content in bytes when known in advance (a
	// file, an HTTP Content-Length); 0 or less means unknown. The
	// Content-Duration of a wrapped audio file is computed from it; with
	// no size the message has no Content-Duration header (the store still
	// records the duration it measures while the audio streams in).
	Size int64
}

// sniffBytes is how much of the content is inspected.
const sniffBytes = 64 << 10

// Deposit stores r: an audio file (recognised by probe) is wrapped into a
// VPIM-style voice message; anything that starts like an RFC 5322 header is
// stored as it is (malformed MIME included: the store keeps it opaque).
func Deposit(st *vmstore.Store, probe Prober, r io.Reader, o DepositOptions) (*vmstore.DepositRes, error) {
	br := bufio.NewReaderSize(r, sniffBytes)
	head, err := br.Peek(sniffBytes)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	if len(head) == 0 {
		return nil, fmt.Errorf("%w: empty content", vmstore.ErrInvalid)
	}
	req := vmstore.DepositReq{User: o.User, Mailbox: o.Mailbox, Service: o.Service, Urgent: o.Urgent, Context: o.Context}
	if !o.AsMessage && probe != nil {
		size := o.Size
		if size <= 0 {
			size = -1
		}
		if len(head) < sniffBytes && size < 0 {
			size = int64(len(head)) // the whole content is in view
		}
		if mt, dur, ok := probe(head, size); ok {
			ctx := o.Context
			if ctx == vmstore.ContextUnknown {
				ctx = vmstore.ContextVoice
			}
			req.Body = vmstore.VoiceMessage{
				From: o.From, To: o.To, Subject: o.Subject, Context: ctx, Urgent: o.Urgent,
				MediaType: mt, Duration: dur, Media: br,
			}.Compose()
			return st.Deposit(req)
		}
	}
	if !o.AsMessage && !looksLikeMessage(head) {
		return nil, ErrUnsupportedMedia
	}
	req.Body = br
	return st.Deposit(req)
}

// looksLikeMessage: the first line is a header field ("Name: value").
func looksLikeMessage(head []byte) bool {
	line, _, _ := bytes.Cut(head, []byte("\n"))
	i := bytes.IndexByte(line, ':')
	if i <= 0 || i > 76 {
		return false
	}
	for _, c := range line[:i] {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
