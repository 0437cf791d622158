package notify

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore"
)

// MessageURLs makes the URLAUTH URL of an event's message that webhooks
// carry as vnd.lemonvox.url (PayloadBuilder.URLFor): imap://<user>@<url
// host>/<mailbox>;UIDVALIDITY=n/;UID=n;EXPIRE=<event time + Lifetime>;
// URLAUTH=<access>:internal:<token>. The URL depends only on the event
// (and the mailbox's access key), so a retried delivery carries the same
// one; a RESETKEY of the mailbox kills it like any other.
type MessageURLs struct {
	// Resolver signs the URLs (channel.Resolver.AuthorizeMessage).
	Resolver *channel.Resolver
	// Access is "anonymous" (anyone holding the URL), "authuser", "submit"
	// (submit+<the event's user>: for a submission server to forward the
	// message), or an RFC 5593 application ("stream", or "stream+user"
	// for the event's user).
	Access string
	// Lifetime is the time from the event to the URL's ;EXPIRE=; 0 means
	// no expiry (refused for anonymous).
	Lifetime time.Duration
	// Logger, nil means slog.Default.
	Logger *slog.Logger
}

// Check validates Access and Lifetime.
func (m *MessageURLs) Check() error {
	if m.Resolver == nil {
		return fmt.Errorf("notify: URLs without a resolver")
	}
	if _, err := m.access("x"); err != nil {
		return err
	}
	if m.Lifetime < 0 {
		return fmt.Errorf("notify: negative URL lifetime")
	}
	if strings.EqualFold(m.Access, "anonymous") && m.Lifetime == 0 {
		return fmt.Errorf("notify: anonymous URLs need a lifetime")
	}
	return nil
}

func (m *MessageURLs) access(user string) (channel.Access, error) {
	s := strings.ToLower(m.Access)
	switch {
	case s == "submit":
		return channel.Access{Kind: channel.AccessSubmit, User: user}, nil
	case s == "user", s == "":
		return channel.Access{}, fmt.Errorf("notify: URL access %q: anonymous, authuser, submit or an application", m.Access)
	case strings.HasSuffix(s, "+user"):
		a, err := channel.ParseAccess(strings.TrimSuffix(s, "+user"))
		if err != nil || a.Kind != channel.AccessApplication {
			return channel.Access{}, fmt.Errorf("notify: URL access %q: not an application", m.Access)
		}
		a.User = user
		return a, nil
	}
	a, err := channel.ParseAccess(s)
	if err != nil || a.User != "" || a.Kind == channel.AccessUser {
		return channel.Access{}, fmt.Errorf("notify: URL access %q: anonymous, authuser, submit or an application", m.Access)
	}
	return a, nil
}

// URLFor is the PayloadBuilder.URLFor function: the URL of the event's
// message for events about one message that is still there, "" for the
// others and when the URL cannot be made (the mailbox is gone).
func (m *MessageURLs) URLFor(ev *vmstore.Event) string {
	switch ev.Type {
	case vmstore.EventMessageNew, vmstore.EventMessageAppend, vmstore.EventMessageRead,
		vmstore.EventFlagsSet, vmstore.EventFlagsClear:
	default:
		return ""
	}
	if len(ev.UIDs) != 1 || ev.Mailbox == "" || ev.User == "" || ev.UIDValidity == 0 {
		return ""
	}
	a, err := m.access(ev.User)
	if err != nil {
		return ""
	}
	var expire time.Time
	if m.Lifetime > 0 {
		expire = ev.Time.Add(m.Lifetime)
	}
	u, err := m.Resolver.AuthorizeMessage(ev.User, ev.Mailbox, ev.UIDValidity, ev.UIDs[0], "", a, expire)
	if err != nil {
		log := m.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Debug("notify: no URL for the message", "user", ev.User, "seq", ev.Seq, "err", err)
		return ""
	}
	return u
}
