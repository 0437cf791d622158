package notify

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// OMTP Visual Voicemail v1.3 SYNC SMS (notes s8.2). The server builds the
// text; an SMS gateway delivers it to the handset (often as a data SMS to
// the client's application port).

// VVM SYNC events.
const (
	VVMNewMessage    = "NM"  // ev=NM: a new message; id, t, s, dt, l set
	VVMMailboxUpdate = "MBU" // ev=MBU: the mailbox changed elsewhere
	VVMGreeting      = "GU"  // ev=GU: greetings changed
)

// VVMDefaultPrefix is the default client prefix (carrier config
// vvm_client_prefix_string).
const VVMDefaultPrefix = "//VVM"

// VVMSync is one SYNC message.
type VVMSync struct {
	Event    string    // NM, MBU, GU
	UID      uint32    // id: IMAP UID of the new message (NM)
	Unseen   uint32    // c: new (unseen) messages in INBOX, always sent
	Type     string    // t: v voice, o video, f fax, i infotainment, e ECC (NM)
	Sender   string    // s: caller MSISDN; "" for a withheld number (NM)
	Time     time.Time // dt: deposit time (NM)
	Duration int       // l: length in seconds (NM)
}

// VVMDateLayout is the dt format "dd/MM/yyyy HH:mm Z" (e.g. 02/08/2026 12:53 +0200).
const VVMDateLayout = "02/01/2006 15:04 -0700"

// Format renders the SMS text: <prefix>:SYNC:ev=..;... Values never
// contain ";" (the field separator): it is dropped from the sender.
func (s VVMSync) Format(prefix string) string {
	if prefix == "" {
		prefix = VVMDefaultPrefix
	}
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString(":SYNC:ev=")
	b.WriteString(s.Event)
	if s.Event == VVMNewMessage {
		b.WriteString(";id=" + strconv.FormatUint(uint64(s.UID), 10))
	}
	b.WriteString(";c=" + strconv.FormatUint(uint64(min(s.Unseen, 99999)), 10)) // c: at most 5 digits
	if s.Event == VVMNewMessage {
		t := s.Type
		if t == "" {
			t = "v"
		}
		b.WriteString(";t=" + t)
		b.WriteString(";s=" + strings.ReplaceAll(s.Sender, ";", ""))
		b.WriteString(";dt=" + s.Time.Format(VVMDateLayout))
		b.WriteString(";l=" + strconv.Itoa(s.Duration))
	}
	return b.String()
}

// ParseVVMSMS parses a VVM SMS text with the rules of Android's framework
// parser (notes s8.2): the text starts with prefix and ":", the event runs
// to the next ":", the rest is key=value entries separated by ";" (empty
// entries skipped, trailing ";" allowed); every entry needs a key and "=";
// values may be empty and may contain "=" and ":". Keys are case-sensitive.
// The alternative form "EVENT?k=v;..." (no prefix) is accepted only for
// MBOXUPDATE and UNRECOGNIZED.
func ParseVVMSMS(prefix, text string) (event string, fields map[string]string, err error) {
	if rest, ok := strings.CutPrefix(text, prefix+":"); ok {
		ev, body, ok := strings.Cut(rest, ":")
		if !ok {
			return "", nil, fmt.Errorf("%w: no event type", ErrVVMFormat)
		}
		f, err := parseVVMFields(body)
		if err != nil {
			return "", nil, err
		}
		return ev, f, nil
	}
	if ev, body, ok := strings.Cut(text, "?"); ok && (ev == "MBOXUPDATE" || ev == "UNRECOGNIZED") {
		f, err := parseVVMFields(body)
		if err != nil {
			return "", nil, err
		}
		return ev, f, nil
	}
	return "", nil, fmt.Errorf("%w: missing prefix %q", ErrVVMFormat, prefix)
}

func parseVVMFields(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, e := range strings.Split(s, ";") {
		if e == "" {
			continue
		}
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: entry %q", ErrVVMFormat, e)
		}
		out[k] = v
	}
	return out, nil
}

// vvmType maps an RFC 3458 context to the OMTP t= letter.
func vvmType(c vmstore.Context) string {
	switch c {
	case vmstore.ContextVideo, vmstore.ContextMultimedia:
		return "o"
	case vmstore.ContextFax:
		return "f"
	}
	return "v"
}

// callerNumber extracts an MSISDN from a From header ("+1555...@host",
// "Name <+1555@host>", "+1555"); "" (withheld) if there is no number.
func callerNumber(from string) string {
	addr := from
	if a, err := mail.ParseAddress(from); err == nil {
		addr = a.Address
	}
	local, _, _ := strings.Cut(addr, "@")
	local = strings.TrimPrefix(strings.TrimPrefix(local, "sip:"), "tel:")
	if local == "" {
		return ""
	}
	for i, c := range local {
		if !(c >= '0' && c <= '9' || c == '+' && i == 0) {
			return ""
		}
	}
	return local
}

// VVMSink sends OMTP SYNC texts to an SMS gateway through the webhook
// machinery (signed JSON POST, same retry and dead-letter handling):
//
//	{"to":"<msisdn>","text":"//VVM:SYNC:...","port":<app port>,"account":"<user>","event":"NM"}
//
// The handset number is the account's preference Options.Notify["vvm_msisdn"];
// accounts without it are skipped.
type VVMSink struct {
	// ID is the sink name; default "vvm".
	ID string
	// URL of the SMS gateway; https unless AllowInsecure. Required.
	URL string
	// Secrets sign the POSTs as for WebhookSink. Required.
	Secrets []string
	// Store looks up the account's number. Required.
	Store *vmstore.Store
	// Prefix is the client prefix; default "//VVM".
	Prefix string
	// AppPort, if non-zero, asks the gateway for a data SMS to that port.
	AppPort int
	// Location of dt; nil means UTC.
	Location *time.Location
	// TLSConfig, AllowInsecure, AllowPrivate, Timeout as for WebhookSink.
	TLSConfig     *tls.Config
	AllowInsecure bool
	AllowPrivate  bool
	Timeout       time.Duration
	Logger        *slog.Logger

	w *WebhookSink
}

// Initialize validates the configuration.
func (v *VVMSink) Initialize() error {
	if v.ID == "" {
		v.ID = "vvm"
	}
	if v.Store == nil {
		return fmt.Errorf("%w: VVMSink.Store is nil", ErrConfig)
	}
	if v.Prefix == "" {
		v.Prefix = VVMDefaultPrefix
	}
	if v.Location == nil {
		v.Location = time.UTC
	}
	// The webhook sink does the URL checks, signing and HTTP.
	v.w = &WebhookSink{ID: v.ID, URL: v.URL, Secrets: v.Secrets, Payload: PayloadBuilder{ServerName: "vvm"},
		TLSConfig: v.TLSConfig, AllowInsecure: v.AllowInsecure, AllowPrivate: v.AllowPrivate, Timeout: v.Timeout, Logger: v.Logger}
	if err := v.w.Initialize(); err != nil {
		return err
	}
	return nil
}

// Name implements Sink.
func (v *VVMSink) Name() string { return v.ID }

// Accept implements Sink.
func (v *VVMSink) Accept(ev *vmstore.Event) bool { return VVMSyncFor(ev, nil) != nil }

// VVMSyncFor maps an event to the SYNC message it calls for, or nil:
// a deposit into INBOX -> NM; a change of INBOX counts (read, deleted,
// expunged, expired) -> MBU; a deposit or removal in Greetings -> GU.
// loc sets the dt time zone (nil: UTC).
func VVMSyncFor(ev *vmstore.Event, loc *time.Location) *VVMSync {
	if loc == nil {
		loc = time.UTC
	}
	switch {
	case ev.Mailbox == "INBOX" && ev.Type == vmstore.EventMessageNew && len(ev.UIDs) == 1:
		return &VVMSync{Event: VVMNewMessage, UID: ev.UIDs[0], Unseen: ev.Unseen, Type: vvmType(ev.Context),
			Sender: callerNumber(ev.From), Time: ev.Time.In(loc), Duration: int(math.Round(ev.Duration))}
	case ev.Mailbox == "INBOX" && ev.MWI != nil && ev.Type != vmstore.EventMessageNew:
		return &VVMSync{Event: VVMMailboxUpdate, Unseen: ev.Unseen}
	case strings.EqualFold(ev.Mailbox, "Greetings") && (ev.Type == vmstore.EventMessageNew || ev.Type == vmstore.EventMessageAppend ||
		ev.Type == vmstore.EventMessageExpunge || ev.Type == vmstore.EventMessageExpire):
		return &VVMSync{Event: VVMGreeting}
	}
	return nil
}

// Deliver implements Sink.
func (v *VVMSink) Deliver(ctx context.Context, ev *vmstore.Event, _ int) error {
	s := VVMSyncFor(ev, v.Location)
	if s == nil {
		return nil
	}
	if s.Event == VVMGreeting {
		// c is always sent: the INBOX unseen count at send time.
		mb, err := v.Store.Mailbox(ev.User, "INBOX")
		if err != nil {
			return fmt.Errorf("%w: %v", ErrDelivery, err)
		}
		s.Unseen = mb.Counts.Unseen
	}
	acct, err := v.Store.GetAccount(ev.User)
	if err != nil {
		return nil // account gone: nothing to tell
	}
	to := acct.Options.Notify["vvm_msisdn"]
	if to == "" {
		return nil
	}
	msg := struct {
		To      string `json:"to"`
		Text    string `json:"text"`
		Port    int    `json:"port,omitempty"`
		Account string `json:"account"`
		Event   string `json:"event"`
		Seq     uint64 `json:"journalSeq"`
	}{to, s.Format(v.Prefix), v.AppPort, ev.User, s.Event, ev.Seq}
	body, err := json.Marshal(msg)
	if err != nil {
		return Permanent(err)
	}
	return postSigned(ctx, v.w.client, v.URL, v.w.keys, v.w.MessageID(ev), body)
}
