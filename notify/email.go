package notify

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// EmailSink is voicemail-to-email: each new message in an account's INBOX
// is mailed through a smarthost to the account's Options.Email, from a
// template with caller, time and duration, with the original message
// (its audio inside) attached as message/rfc822 and/or a link from URLFor.
// Accounts without an address are skipped.
type EmailSink struct {
	// ID is the sink name; default "email".
	ID string
	// Store reads accounts and messages. Required.
	Store *vmstore.Store
	// Smarthost is the SMTP relay, host:port. Required.
	Smarthost string
	// Username/Password enable AUTH PLAIN (only over TLS, net/smtp rule).
	Username, Password string
	// TLSConfig, if set, is used for STARTTLS, which is then required.
	TLSConfig *tls.Config
	// From is the sender address (header and envelope). Required.
	From string
	// Attach attaches the stored message; false sends only the text (and
	// the link when URLFor gives one).
	Attach bool
	// DeleteAfterSend removes the message from the store once mailed.
	DeleteAfterSend bool
	// URLFor returns a link to the message (URLAUTH or web player); nil or
	// "" means no link.
	URLFor func(ev *vmstore.Event) string
	// Template renders the text body from EmailData; nil uses a default.
	Template *template.Template
	// Location of the times shown; nil means UTC.
	Location *time.Location
	// HostName is used in Message-ID and EHLO; default "localhost".
	HostName string
	// Timeout bounds one SMTP session; 0 means 60 s.
	Timeout time.Duration
	Logger  *slog.Logger
}

// EmailData is what the template sees.
type EmailData struct {
	Account  string
	Caller   string // From of the voice message
	Number   string // caller's number, "" if withheld
	Time     time.Time
	Duration int // seconds
	Context  string
	UID      uint32
	URL      string
	Subject  string
}

var defaultEmailTemplate = template.Must(template.New("email").Parse(
	`You have a new {{if eq .Context "fax-message"}}fax{{else if eq .Context "video-message"}}video message{{else}}voice message{{end}}` +
		` from {{if .Caller}}{{.Caller}}{{else}}an unknown caller{{end}}.

Received: {{.Time.Format "Mon, 02 Jan 2006 15:04 MST"}}
{{if .Duration}}Length:   {{.Duration}} s
{{end}}{{if .URL}}Listen:   {{.URL}}
{{end}}`))

// Initialize validates the configuration.
func (e *EmailSink) Initialize() error {
	if e.ID == "" {
		e.ID = "email"
	}
	if e.Store == nil || e.Smarthost == "" || e.From == "" {
		return fmt.Errorf("%w: EmailSink needs Store, Smarthost and From", ErrConfig)
	}
	if _, _, err := net.SplitHostPort(e.Smarthost); err != nil {
		return fmt.Errorf("%w: Smarthost %q: %v", ErrConfig, e.Smarthost, err)
	}
	if e.Template == nil {
		e.Template = defaultEmailTemplate
	}
	if e.Location == nil {
		e.Location = time.UTC
	}
	if e.HostName == "" {
		e.HostName = "localhost"
	}
	if e.Timeout <= 0 {
		e.Timeout = 60 * time.Second
	}
	return nil
}

// Name implements Sink.
func (e *EmailSink) Name() string { return e.ID }

// Accept implements Sink: new messages in INBOX.
func (e *EmailSink) Accept(ev *vmstore.Event) bool {
	return ev.Type == vmstore.EventMessageNew && ev.Mailbox == "INBOX" && len(ev.UIDs) == 1
}

// Deliver implements Sink.
func (e *EmailSink) Deliver(ctx context.Context, ev *vmstore.Event, _ int) error {
	acct, err := e.Store.GetAccount(ev.User)
	if err != nil || acct.Options.Email == "" {
		return nil
	}
	msg, err := e.Store.Message(ev.MailboxID, ev.UIDs[0])
	if errors.Is(err, vmstore.ErrNotFound) {
		return nil // already gone: nothing to mail
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDelivery, err)
	}
	data := EmailData{Account: ev.User, Caller: ev.From, Number: callerNumber(ev.From), Time: ev.Time.In(e.Location),
		Duration: int(math.Round(ev.Duration)), Context: string(ev.Context), UID: ev.UIDs[0], Subject: ev.Subject}
	if data.Context == "" {
		data.Context = string(vmstore.ContextVoice)
	}
	if e.URLFor != nil {
		data.URL = e.URLFor(ev)
	}
	if err := e.send(ctx, acct.Options.Email, ev, data, msg); err != nil {
		return err
	}
	if e.DeleteAfterSend {
		if _, err := e.Store.Remove(ev.User, ev.MailboxID, ev.UIDs); err != nil {
			return fmt.Errorf("%w: delete after send: %v", ErrDelivery, err)
		}
	}
	return nil
}

func (e *EmailSink) send(ctx context.Context, to string, ev *vmstore.Event, data EmailData, msg *vmstore.Message) error {
	ctx, cancel := context.WithTimeout(ctx, e.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.Smarthost)
	if err != nil {
		return fmt.Errorf("%w: smtp dial: %v", ErrDelivery, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(e.Smarthost)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return smtpErr(err)
	}
	defer c.Close()
	if err := c.Hello(e.HostName); err != nil {
		return smtpErr(err)
	}
	if e.TLSConfig != nil {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("%w: smarthost does not offer STARTTLS", ErrDelivery)
		}
		if err := c.StartTLS(e.TLSConfig); err != nil {
			return smtpErr(err)
		}
	}
	if e.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.Username, e.Password, host)); err != nil {
			return smtpErr(err)
		}
	}
	if err := c.Mail(e.From); err != nil {
		return smtpErr(err)
	}
	if err := c.Rcpt(to); err != nil {
		return smtpErr(err)
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr(err)
	}
	bw := bufio.NewWriter(w)
	if err := e.compose(bw, to, ev, data, msg); err != nil {
		w.Close()
		return fmt.Errorf("%w: compose: %v", ErrDelivery, err)
	}
	if err := bw.Flush(); err != nil {
		return smtpErr(err)
	}
	if err := w.Close(); err != nil {
		return smtpErr(err)
	}
	_ = c.Quit()
	return nil
}

// smtpErr makes 5xx replies permanent (RFC 5321 s4.2.1) and the rest
// retryable.
func smtpErr(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return Permanent(fmt.Errorf("%w: smtp: %v", ErrDelivery, err))
	}
	return fmt.Errorf("%w: smtp: %v", ErrDelivery, err)
}

// compose writes the mail; the stored message is streamed, not loaded.
func (e *EmailSink) compose(w io.Writer, to string, ev *vmstore.Event, data EmailData, msg *vmstore.Message) error {
	var body strings.Builder
	if err := e.Template.Execute(&body, data); err != nil {
		return err
	}
	who := data.Caller
	if who == "" {
		who = "unknown caller"
	}
	kind := "Voice message"
	switch data.Context {
	case string(vmstore.ContextFax):
		kind = "Fax"
	case string(vmstore.ContextVideo), string(vmstore.ContextMultimedia):
		kind = "Video message"
	}
	boundary := "lv-" + randomToken(12)
	h := func(k, v string) { fmt.Fprintf(w, "%s: %s\r\n", k, v) }
	h("From", e.From)
	h("To", to)
	h("Subject", mime.QEncoding.Encode("utf-8", kind+" from "+who))
	h("Date", time.Now().In(e.Location).Format(time.RFC1123Z))
	// Stable per event: a retry after a crash can be recognised.
	h("Message-ID", "<lv."+strconv.FormatUint(ev.Seq, 10)+"."+strconv.FormatUint(uint64(data.UID), 10)+"@"+e.HostName+">")
	h("Auto-Submitted", "auto-generated") // RFC 3834
	h("MIME-Version", "1.0")
	if !e.Attach {
		h("Content-Type", "text/plain; charset=utf-8")
		h("Content-Transfer-Encoding", "8bit")
		_, err := io.WriteString(w, "\r\n"+crlf(body.String()))
		return err
	}
	h("Content-Type", `multipart/mixed; boundary="`+boundary+`"`)
	fmt.Fprintf(w, "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n", boundary, crlf(body.String()))
	fmt.Fprintf(w, "--%s\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"message-%d.eml\"\r\n\r\n", boundary, data.UID)
	// The presented form: a part stored with NUL octets (IMAP APPEND of
	// a literal8) is re-encoded as base64, as mail must carry it.
	whole, err := message.New(e.Store, msg).Open(message.Section{}, message.Raw)
	if err != nil {
		return err
	}
	defer whole.Close()
	if _, err := io.Copy(w, whole.Reader()); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "\r\n--%s--\r\n", boundary)
	return err
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}
