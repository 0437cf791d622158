// Package deposit is the one path by which a message enters the store:
// LMTP, the HTTP API, the command line and IMAP APPEND hand it what they
// received, and it decides what that is and how it is stored.
//
//   - A ready RFC 5322 message is stored as it is (malformed MIME included:
//     the store keeps it opaque). A multimedia message already in Internet
//     mail form (RFC 4356: X-Mms-* header fields) without a Message-Context
//     is stored as a multimedia-message.
//   - A bare audio file (WAV, AU: recognised by the Prober from its first
//     bytes, never from a name) is wrapped VPIM-style (RFC 3801):
//     multipart/voice-message, Message-Context, and a Content-Duration
//     measured from the audio.
//   - An MMS PDU (application/vnd.wap.mms-message, the OMA binary
//     encapsulation), bare or as the body of a message, is decoded and
//     mapped to Internet mail as RFC 4356 describes (mms.go).
//
// Deposit stores for one account; DepositEach stores the same bytes for
// several accounts in one durable commit with a result per account;
// CheckQuota answers "would this fit" before the bytes arrive (LMTP RCPT).
package deposit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// Prober recognises a media file from its first bytes (sniffing magic
// numbers, never a file name) and tells its media type and, when the size
// of the whole file is known (size >= 0), its duration (0 when it cannot
// tell). cmd wires transcode's prober.
type Prober func(head []byte, size int64) (mediaType string, duration time.Duration, ok bool)

// ErrUnsupportedMedia: the content is neither a known audio file, an MMS
// PDU nor an RFC 5322 message.
var ErrUnsupportedMedia = errors.New("deposit: content is neither a supported audio file nor an RFC 5322 message")

// Options go with a deposit.
type Options struct {
	// Mailbox is where the message goes; "" means INBOX.
	Mailbox string
	// From, To and Subject head a message composed around bare audio (a
	// ready message keeps its own).
	From, To, Subject string
	Urgent            bool
	// Context overrides the message context the content says.
	Context vmstore.Context
	// Service names the front end (lmtp, http, cli, imap) for metrics
	// and events.
	Service string
	Flags   []string
	// Date is the internal date; zero means now.
	Date time.Time
	// Event is vmstore.EventMessageNew (the default) or
	// vmstore.EventMessageAppend (IMAP APPEND).
	Event vmstore.EventType
	// AsMessage takes the content as a ready RFC 5322 message, whatever
	// it starts with, and stores it byte for byte (IMAP APPEND): no audio
	// is wrapped and no MMS PDU mapped.
	AsMessage bool
	// Size is the size of the content in bytes when known in advance (a
	// file, an HTTP Content-Length, SIZE=); 0 or less means unknown. The
	// Content-Duration of a wrapped audio file is computed from it; with
	// no size the message has no Content-Duration header (the store still
	// records the duration it measures while the audio streams in).
	Size int64
	// Probe recognises audio files; nil takes every content as a
	// message (or an MMS PDU).
	Probe Prober
	// MaxMMS bounds the size of an MMS PDU, which is decoded in memory
	// (default 8 MiB).
	MaxMMS int64
	// MMSDomain is the domain given to MMS addresses without one (phone
	// numbers, "+15551234567/TYPE=PLMN"); default "mms.invalid".
	MMSDomain string
}

// sniffBytes is how much of the content is inspected.
const sniffBytes = 64 << 10

// Deposit stores r for user and returns once it is durable.
func Deposit(st *vmstore.Store, user string, r io.Reader, o Options) (*vmstore.DepositRes, error) {
	req, release, err := prepare(r, o)
	if err != nil {
		return nil, err
	}
	defer release()
	req.User = user
	res, err := st.Deposit(req)
	if errors.Is(err, vmstore.ErrOverQuota) {
		err = quotaErrorOf(st, user, err)
	}
	return res, err
}

// Result is the outcome of a deposit for one recipient.
type Result struct {
	User string
	Res  *vmstore.DepositRes
	// Err is this recipient's refusal: a *QuotaError (which matches
	// vmstore.ErrOverQuota), vmstore.ErrNotFound (no such account or
	// mailbox), ...
	Err error
}

// DepositEach stores the same content for several users: it is read,
// converted and stored once, and every accepted copy is durable, in one
// commit, when DepositEach returns. Each user gets a result, in order; a
// refused user has nothing stored. The error is for what fails for all
// (unreadable content, the store).
func DepositEach(st *vmstore.Store, users []string, r io.Reader, o Options) ([]Result, error) {
	req, release, err := prepare(r, o)
	if err != nil {
		return nil, err
	}
	defer release()
	res, errs, err := st.DepositEach(req, users)
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(users))
	for i, u := range users {
		out[i] = Result{User: u, Err: errs[i]}
		if errs[i] == nil {
			out[i].Res = &res[i]
		} else if errors.Is(errs[i], vmstore.ErrOverQuota) {
			out[i].Err = quotaErrorOf(st, u, errs[i])
		}
	}
	return out, nil
}

// sniffBufs recycles the readers that sniff the content (a fresh 64 KiB
// buffer per deposit was cleared and collected every time).
var sniffBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, sniffBytes) }}

// prepare turns the content into a deposit request (without its user);
// release, once the request's body is read, recycles its buffer.
func prepare(r io.Reader, o Options) (vmstore.DepositReq, func(), error) {
	br := sniffBufs.Get().(*bufio.Reader)
	br.Reset(r)
	release := func() { br.Reset(nil); sniffBufs.Put(br) }
	req, err := prepareWith(br, o)
	if _, composed := req.Body.(*io.PipeReader); composed {
		// Audio wrapped into a message: the composing goroutine may
		// still read br after the deposit returns (a refusal before
		// the end); this buffer is not recycled.
		release = func() {}
	}
	if err != nil {
		release()
		return req, nil, err
	}
	return req, release, nil
}

func prepareWith(br *bufio.Reader, o Options) (vmstore.DepositReq, error) {
	req := vmstore.DepositReq{Mailbox: o.Mailbox, Service: o.Service, Urgent: o.Urgent, Context: o.Context,
		Flags: o.Flags, InternalDate: o.Date, Event: o.Event}
	head, err := br.Peek(sniffBytes)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return req, err
	}
	if len(head) == 0 {
		return req, fmt.Errorf("%w: empty content", vmstore.ErrInvalid)
	}
	if !o.AsMessage && o.Probe != nil {
		size := o.Size
		if size <= 0 {
			size = -1
		}
		if len(head) < sniffBytes && size < 0 {
			size = int64(len(head)) // the whole content is in view
		}
		if mt, dur, ok := o.Probe(head, size); ok {
			ctx := o.Context
			if ctx == vmstore.ContextUnknown {
				ctx = vmstore.ContextVoice
			}
			req.Body = vmstore.VoiceMessage{
				From: o.From, To: o.To, Subject: o.Subject, Context: ctx, Urgent: o.Urgent,
				MediaType: mt, Duration: dur, Media: br,
			}.Compose()
			return req, nil
		}
	}
	if !o.AsMessage && IsMMSPDU(head) {
		msg, err := mmsToMail(br, o)
		if err != nil {
			return req, err
		}
		req.Body = bytes.NewReader(msg)
		if req.Context == vmstore.ContextUnknown {
			req.Context = vmstore.ContextMultimedia
		}
		return req, nil
	}
	if !o.AsMessage && !looksLikeMessage(head) {
		return req, ErrUnsupportedMedia
	}
	if hdr, ok := readHeader(head); ok {
		ct := strings.ToLower(hdr.Get("Content-Type"))
		switch {
		case !o.AsMessage && strings.HasPrefix(ct, mmsMediaType):
			// A PDU carried as the body of a message: mapped as a bare
			// one, with what the outer header says kept.
			msg, err := mmsInMessageToMail(br, hdr, o)
			if err != nil {
				return req, err
			}
			req.Body = bytes.NewReader(msg)
			if req.Context == vmstore.ContextUnknown {
				req.Context = vmstore.ContextMultimedia
			}
			return req, nil
		case hdr.Get("Message-Context") == "" && isMappedMMS(hdr) && req.Context == vmstore.ContextUnknown:
			req.Context = vmstore.ContextMultimedia
		}
	}
	req.Body = br
	return req, nil
}

// readHeader parses the header of a message from its first bytes, when
// the whole header is in view.
func readHeader(head []byte) (textproto.MIMEHeader, bool) {
	end := bytes.Index(head, []byte("\r\n\r\n"))
	if end < 0 {
		end = bytes.Index(head, []byte("\n\n"))
		if end < 0 {
			return nil, false
		}
	}
	tr := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(head[:end]), strings.NewReader("\r\n\r\n"))))
	h, err := tr.ReadMIMEHeader()
	if err != nil {
		return nil, false
	}
	return h, true
}

// isMappedMMS: a message in RFC 4356 form (an X-Mms-Message-Type field).
func isMappedMMS(h textproto.MIMEHeader) bool {
	return h.Get("X-Mms-Message-Type") != ""
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

// QuotaError is a refusal by an account's quota.
type QuotaError struct {
	User string
	// Over: by how many bytes and messages the deposit would exceed the
	// quota (0 for a limit that holds).
	OverBytes, OverMessages int64
	Quota                   vmstore.Quota
	Used                    vmstore.Usage
}

func (e *QuotaError) Error() string {
	switch {
	case e.OverBytes > 0 && e.OverMessages > 0:
		return fmt.Sprintf("account %q over quota by %d bytes and %d messages", e.User, e.OverBytes, e.OverMessages)
	case e.OverMessages > 0:
		return fmt.Sprintf("account %q over its quota of %d messages", e.User, e.Quota.Messages)
	default:
		return fmt.Sprintf("account %q over quota by %d bytes", e.User, e.OverBytes)
	}
}

// Is makes a QuotaError match vmstore.ErrOverQuota.
func (e *QuotaError) Is(t error) bool { return t == vmstore.ErrOverQuota }

// Full tells whether the mailbox is full as it is (no room for even an
// empty message), as against too small for this message: LMTP answers
// 452 4.2.2 for the one and 552 5.2.2 for the other.
func (e *QuotaError) Full() bool {
	return (e.Quota.Bytes > 0 && e.Used.Bytes >= e.Quota.Bytes) ||
		(e.Quota.Messages > 0 && e.Used.Messages >= e.Quota.Messages)
}

// CheckQuota tells whether a message of size bytes (0 when unknown) would
// fit in user's quota now: nil, a *QuotaError, or the error finding the
// account. The store checks again when it commits.
func CheckQuota(st *vmstore.Store, user string, size int64) error {
	a, err := st.GetAccount(user)
	if err != nil {
		return err
	}
	if a.Quota.Bytes == 0 && a.Quota.Messages == 0 {
		return nil
	}
	u, err := st.Usage(a.Name)
	if err != nil {
		return err
	}
	return overBy(a.Name, a.Quota, u, max(size, 0))
}

func overBy(user string, q vmstore.Quota, u vmstore.Usage, size int64) error {
	e := &QuotaError{User: user, Quota: q, Used: u}
	if q.Bytes > 0 && u.Bytes+size > q.Bytes {
		e.OverBytes = u.Bytes + size - q.Bytes
	}
	if q.Bytes > 0 && size == 0 && u.Bytes >= q.Bytes {
		e.OverBytes = max(e.OverBytes, 1)
	}
	if q.Messages > 0 && u.Messages+1 > q.Messages {
		e.OverMessages = u.Messages + 1 - q.Messages
	}
	if e.OverBytes == 0 && e.OverMessages == 0 {
		return nil
	}
	return e
}

// quotaErrorOf details a refusal by the store's quota check.
func quotaErrorOf(st *vmstore.Store, user string, err error) error {
	a, aerr := st.GetAccount(user)
	if aerr != nil {
		return err
	}
	u, uerr := st.Usage(a.Name)
	if uerr != nil {
		return err
	}
	// The size of the refused message is not known here: at least one
	// byte over when the message count is not what refused it.
	e := &QuotaError{User: user, Quota: a.Quota, Used: u}
	if q := a.Quota; q.Messages > 0 && u.Messages >= q.Messages {
		e.OverMessages = u.Messages + 1 - q.Messages
	}
	if a.Quota.Bytes > 0 && e.OverMessages == 0 {
		e.OverBytes = max(1, u.Bytes-a.Quota.Bytes)
	}
	return e
}
