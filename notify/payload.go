package notify

import (
	"bytes"
	"encoding/json"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// PayloadBuilder turns journal events into RFC 5423 event JSON in a
// Standard Webhooks envelope (media-and-notify notes s6.3). The output is
// a pure function of the event, so a retry sends (and signs) the same bytes.
type PayloadBuilder struct {
	// ServerName is the host in IMAP URLs and serverFQDN. Required.
	ServerName string
	// URLFor, if set, returns an URLAUTH-authorized URL to the event's
	// message (RFC 4467), sent as vnd.lemonvox.url; "" leaves it out
	// (MessageURLs.URLFor, urlauth.go).
	URLFor func(ev *vmstore.Event) string
	// OmitSenderSubject leaves caller and subject out (privacy).
	OmitSenderSubject bool
}

// field is one JSON member; fields keeps their order.
type field struct {
	k string
	v any
}

type fields []field

func (f fields) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(kv.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// EventTypeName is the Standard Webhooks "type" of an RFC 5423 event.
func EventTypeName(t vmstore.EventType) string { return "mailbox." + string(t) }

func isMessageEvent(t vmstore.EventType) bool {
	switch t {
	case vmstore.EventMessageNew, vmstore.EventMessageAppend, vmstore.EventMessageExpire,
		vmstore.EventMessageExpunge, vmstore.EventMessageRead, vmstore.EventMessageTrash,
		vmstore.EventFlagsSet, vmstore.EventFlagsClear:
		return true
	}
	return false
}

// Data returns the RFC 5423 parameters of an event (the "data" member),
// following the Cyrus parameter matrix adapted in the notes s6.2.
func (p *PayloadBuilder) Data(ev *vmstore.Event) any {
	d := fields{{"event", string(ev.Type)}}
	add := func(k string, v any) { d = append(d, field{k, v}) }
	mbURL := ""
	if ev.Mailbox != "" {
		mbURL = imapURL(ev.User, p.ServerName, ev.Mailbox, ev.UIDValidity, 0)
	}
	switch {
	case isMessageEvent(ev.Type):
		uid := uint32(0)
		if len(ev.UIDs) == 1 {
			uid = ev.UIDs[0]
		}
		add("uri", imapURL(ev.User, p.ServerName, ev.Mailbox, ev.UIDValidity, uid))
		add("mailboxID", mbURL)
		if ev.OldMailbox != "" {
			add("oldMailboxID", imapURL(ev.User, p.ServerName, ev.OldMailbox, 0, 0))
		}
		add("uidset", uidSet(ev.UIDs))
		add("uidnext", ev.UIDNext)
		add("modseq", ev.ModSeq)
		add("messages", ev.Messages)
		if ev.Type == vmstore.EventMessageNew || ev.Type == vmstore.EventMessageAppend {
			add("messageSize", ev.Size)
		}
		if ev.Type == vmstore.EventFlagsSet || ev.Type == vmstore.EventFlagsClear ||
			(len(ev.Flags) > 0 && ev.Type != vmstore.EventMessageNew && ev.Type != vmstore.EventMessageAppend) {
			add("flagNames", joinSpace(ev.Flags))
		}
	case ev.Type == vmstore.EventLogin || ev.Type == vmstore.EventLogout:
		add("user", ev.User)
		if h, port, err := net.SplitHostPort(ev.ClientAddr); err == nil {
			add("clientIP", h)
			add("clientPort", atoiOr0(port))
		}
		if h, port, err := net.SplitHostPort(ev.ServerAddr); err == nil {
			add("serverDomain", h)
			add("serverPort", atoiOr0(port))
		}
	case ev.Type == vmstore.EventQuotaExceed || ev.Type == vmstore.EventQuotaWithin || ev.Type == vmstore.EventQuotaChange:
		add("user", ev.User)
		// RFC 9208 STORAGE is in KiB.
		add("diskQuota", ev.QuotaBytes/1024)
		add("maxMessages", ev.QuotaMessages)
		if ev.Type != vmstore.EventQuotaChange {
			add("diskUsed", ev.UsedBytes/1024)
			add("messages", ev.UsedMessages)
		}
	default: // mailbox lifecycle, subscriptions, vnd events
		add("user", ev.User)
		if mbURL != "" {
			add("uri", mbURL)
			add("mailboxID", mbURL)
		}
		if ev.OldMailbox != "" {
			add("oldMailboxID", imapURL(ev.User, p.ServerName, ev.OldMailbox, 0, 0))
		}
		if ev.Entry != "" {
			add("vnd.lemonvox.entry", ev.Entry)
		}
	}
	if ev.Service != "" {
		add("service", ev.Service)
	}
	add("serverFQDN", p.ServerName)
	add("timestamp", ev.Time.UTC().Format(time.RFC3339Nano))
	if isMessageEvent(ev.Type) {
		add("vnd.lemonvox.user", ev.User)
		add("vnd.lemonvox.unseen", ev.Unseen)
		if ev.Context != "" {
			add("vnd.lemonvox.context", string(ev.Context))
		}
		if ev.Duration > 0 {
			add("vnd.lemonvox.duration", int64(math.Round(ev.Duration)))
		}
		if ev.Urgent {
			add("vnd.lemonvox.urgent", true)
		}
		if !p.OmitSenderSubject {
			if ev.From != "" {
				add("vnd.lemonvox.from", ev.From)
			}
			if ev.Subject != "" {
				add("vnd.lemonvox.subject", ev.Subject)
			}
		}
	}
	if ev.MWI != nil {
		v := ev.MWI.Counts[vmstore.ContextVoice]
		add("vnd.lemonvox.messagesWaiting", ev.MWI.Waiting())
		add("vnd.lemonvox.newVoice", v.New)
		add("vnd.lemonvox.oldVoice", v.Old)
	}
	if p.URLFor != nil {
		if u := p.URLFor(ev); u != "" {
			add("vnd.lemonvox.url", u)
		}
	}
	add("vnd.lemonvox.journalSeq", ev.Seq)
	return d
}

// Build returns the webhook body of an event.
func (p *PayloadBuilder) Build(ev *vmstore.Event) ([]byte, error) {
	return json.Marshal(fields{
		{"type", EventTypeName(ev.Type)},
		{"timestamp", ev.Time.UTC().Format(time.RFC3339Nano)},
		{"data", p.Data(ev)},
	})
}

func joinSpace(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

func atoiOr0(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
