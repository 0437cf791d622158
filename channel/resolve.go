package channel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// Errors of Authorize, Resolve and Reset, besides ErrBadURL (the URL does
// not parse, or is not one that can be authorized) and the store's own
// failures (transient: the caller answers "try again", not "no").
var (
	// ErrNotPart: the URL names a server, a mailbox or a search, not a
	// message or a part of one (RFC 5092 s6: URLAUTH only there).
	ErrNotPart = errors.New("channel: URL names no message part")
	// ErrNotOurs: the URL names another server than the configured
	// [imap] url_host (or one of its aliases).
	ErrNotOurs = errors.New("channel: URL names another server")
	// ErrBadToken: the token does not verify, the URL carries none, or
	// what it names (account, mailbox, access key) does not exist. These
	// cases are one error on purpose: a requester must not learn from
	// the answer whether a mailbox exists (RFC 4467 s9).
	ErrBadToken = errors.New("channel: URL authorization does not verify")
	// ErrExpired: the URL's ;EXPIRE= time has passed.
	ErrExpired = errors.New("channel: URL expired")
	// ErrNotPermitted: the requester is not one the URL's access
	// identifier admits, or (GENURLAUTH) the URL names another user's
	// mailbox, or (URL without URLAUTH) the requester has no own rights
	// there.
	ErrNotPermitted = errors.New("channel: not permitted")
	// ErrGone: the URL was valid but what it names is not there any more:
	// UIDVALIDITY changed, the message was expunged, the section does not
	// exist (then message.ErrNoSuchPart matches too), or (GENURLAUTH,
	// RESETKEY) the mailbox does not exist.
	ErrGone = errors.New("channel: message or part no longer exists")
	// ErrMechanism: a URLAUTH mechanism other than INTERNAL.
	ErrMechanism = errors.New("channel: unsupported URLAUTH mechanism")
	// ErrPolicy (GENURLAUTH): a valid URL the server's policy will not
	// authorize, e.g. an anonymous URL without a near enough ;EXPIRE=.
	// It matches ErrNotPermitted too. IMAP answers it NO, not BAD: the
	// arguments are valid, the server "can't generate a URLAUTH" (RFC
	// 4467 s7.1).
	ErrPolicy = errors.New("channel: refused by policy")
)

// DefaultAnonymousMaxLifetime is the longest an anonymous URL may live
// (Resolver.AnonymousMaxLifetime): GENURLAUTH of "anonymous" needs an
// ;EXPIRE= at most that far ahead.
const DefaultAnonymousMaxLifetime = 24 * time.Hour

// RoleSubmit is the application name of message submission entities
// (access identifier submit+<user>, RFC 4468).
const RoleSubmit = "submit"

// Resolver authorizes IMAP URLs to message parts (GENURLAUTH), checks them
// when they come back (URLFETCH, BURL, CATENATE, playback) and opens what
// they name through the store's part API.
//
// Set the exported fields before first use; a Resolver is then safe for
// concurrent use.
type Resolver struct {
	// Roles maps an application to the account names registered for it:
	// "submit" for submission entities (submit+<user> URLs, RFC 4468),
	// RFC 5593 applications such as "stream" (media servers, RFC 5616).
	// GENURLAUTH accepts only applications listed here (and submit+).
	Roles map[string][]string
	// AnonymousMaxLifetime bounds "anonymous" URLs: GENURLAUTH wants an
	// ;EXPIRE= at most this far ahead (RFC 5616 s3.2 asks that at least
	// one hour be accepted). 0 means DefaultAnonymousMaxLifetime; < 0
	// means no bound (and no ;EXPIRE= needed).
	AnonymousMaxLifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	st    *vmstore.Store
	host  string
	hosts []hostPort
}

type hostPort struct {
	host string
	port int
}

// NewResolver returns a resolver over the store for URLs naming host
// ("imap.example.net:1993", "[2001:db8::1]:993", "vm.example.net" for port
// 143), the [imap] url_host setting; aliases are other names URLs may use.
// URLs the server makes itself (AuthorizeMessage, BaseURL) name host. An
// empty host admits URLs naming any server (for embedding and tests). A
// host that is not host[:port] admits none; see CheckURLHost.
func NewResolver(st *vmstore.Store, host string, aliases ...string) *Resolver {
	r := &Resolver{st: st, host: host}
	for _, h := range append([]string{host}, aliases...) {
		if hp, err := parseURLHost(h); err == nil {
			r.hosts = append(r.hosts, hp)
		}
	}
	return r
}

// CheckURLHost reports whether s is usable as a url_host: host[:port] with
// a host name or address and a port in 1..65535.
func CheckURLHost(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	_, err := parseURLHost(s)
	return err
}

func parseURLHost(s string) (hostPort, error) {
	if s == "" {
		return hostPort{}, errors.New("empty host")
	}
	u, err := Parse("imap://" + s + "/")
	if err != nil || u.Host == "" || u.User != "" || u.AuthType != "" {
		return hostPort{}, fmt.Errorf("%q is not host[:port]", s)
	}
	port := u.Port
	if port == 0 {
		port = DefaultPort
	}
	return hostPort{host: u.Host, port: port}, nil
}

// Host returns the configured url_host.
func (r *Resolver) Host() string { return r.host }

// ours reports whether u names this server.
func (r *Resolver) ours(u *URL) bool {
	if r.host == "" {
		return true
	}
	port := u.Port
	if port == 0 {
		port = DefaultPort
	}
	for _, h := range r.hosts {
		if strings.EqualFold(h.host, u.Host) && h.port == port {
			return true
		}
	}
	return false
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Resolver) anonMax() time.Duration {
	if r.AnonymousMaxLifetime == 0 {
		return DefaultAnonymousMaxLifetime
	}
	return r.AnonymousMaxLifetime
}

// inRole reports whether user is registered for the application.
func (r *Resolver) inRole(app, user string) bool {
	for name, users := range r.Roles {
		if strings.EqualFold(name, app) && slices.Contains(users, user) {
			return true
		}
	}
	return false
}

func (r *Resolver) knownApp(app string) bool {
	for name := range r.Roles {
		if strings.EqualFold(name, app) {
			return true
		}
	}
	return false
}

// Requester returns the requester an IMAP session authenticated as user
// is (a non-anonymous one), with the roles Roles gives it. A session of a
// submission or application entity may redeem submit+X and app+X URLs
// for any X (OnBehalfOfAny): over IMAP it does not say for whom it acts.
// Own is false: set it for CATENATE.
func (r *Resolver) Requester(user string) Requester {
	req := Requester{User: user, Authenticated: true, Submit: r.inRole(RoleSubmit, user)}
	for name, users := range r.Roles {
		if !strings.EqualFold(name, RoleSubmit) && slices.Contains(users, user) {
			req.Applications = append(req.Applications, strings.ToLower(name))
		}
	}
	slices.Sort(req.Applications)
	req.OnBehalfOfAny = req.Submit || len(req.Applications) > 0
	return req
}

// BaseURL returns "imap://<user>@<url_host>/", the base against which
// absolute-path references ("/INBOX;UIDVALIDITY=1/;UID=2", CATENATE)
// resolve with ParseRef.
func (r *Resolver) BaseURL(user string) *URL {
	u := &URL{User: user}
	if len(r.hosts) > 0 {
		u.Host = r.hosts[0].host
		if r.hosts[0].port != DefaultPort {
			u.Port = r.hosts[0].port
		}
	} else {
		u.Host = "localhost"
	}
	return u
}

// AuthorizeURL is Authorize of a rump URL in text form; the returned URL
// starts with exactly those octets.
func (r *Resolver) AuthorizeURL(user, rump, mech string) (string, error) {
	u, err := Parse(rump)
	if err != nil {
		return "", err
	}
	return r.Authorize(user, u, mech)
}

// Authorize is GENURLAUTH (RFC 4467 s7.1): u must be a rump URL (message
// or part, ;URLAUTH=<access> without mechanism and token) naming one of
// user's mailboxes on this server; mech must be INTERNAL. It checks that
// the message (UIDVALIDITY if given, UID, section) exists, makes the
// mailbox's access key on first use and returns the rump followed by
// ":internal:<token>". Policy: an ;EXPIRE= in the past is ErrExpired;
// "anonymous" needs an ;EXPIRE= within AnonymousMaxLifetime
// (ErrPolicy, which matches ErrNotPermitted too); an RFC 5593 application not in Roles is ErrBadURL.
// The user named by user+, submit+ and <app>+ is not checked (RFC 4467
// s9: a URL that can never validate is as good as a refusal).
func (r *Resolver) Authorize(user string, u *URL, mech string) (string, error) {
	if u == nil {
		return "", urlErr(ErrBadURL, 0, "no URL")
	}
	if !strings.EqualFold(mech, MechanismInternal) {
		return "", fmt.Errorf("%w: %s", ErrMechanism, mech)
	}
	if !u.IsMessagePart() {
		return "", fmt.Errorf("%w: URLAUTH is only for a message or a part (;UID= missing)", ErrNotPart)
	}
	if u.Access.Kind == AccessNone {
		return "", urlErr(ErrBadURL, 0, "no ;URLAUTH=<access> to authorize")
	}
	if u.Mechanism != "" || u.Token != "" {
		return "", urlErr(ErrBadURL, 0, "URL is already authorized (it has :mechanism:token)")
	}
	if !r.ours(u) {
		return "", fmt.Errorf("%w: not %s", ErrNotOurs, r.host)
	}
	if u.User == "" {
		return "", urlErr(ErrBadURL, 0, "URL names no user (imap://<user>@host/ is required)")
	}
	if vmstore.FoldUserName(u.User) != user {
		return "", fmt.Errorf("%w: URLs can be authorized for your own mailboxes only", ErrNotPermitted)
	}
	if u.Access.Kind == AccessApplication && !r.knownApp(u.Access.Application) {
		return "", urlErr(ErrBadAccess, 0, "unknown application "+strconv.Quote(u.Access.Application))
	}
	now := r.now()
	if u.Expired(now) {
		return "", fmt.Errorf("%w: ;EXPIRE= is in the past", ErrExpired)
	}
	if u.Access.Kind == AccessAnonymous && r.anonMax() > 0 {
		if u.Expire.IsZero() || u.Expire.After(now.Add(r.anonMax())) {
			return "", fmt.Errorf("%w: %w: anonymous URLs need an ;EXPIRE= at most %s ahead", ErrPolicy, ErrNotPermitted, r.anonMax())
		}
	}
	mb, err := r.st.Mailbox(user, u.Mailbox)
	if err != nil {
		return "", storeErr(err, "no such mailbox")
	}
	if u.UIDValidity != 0 && u.UIDValidity != mb.UIDValidity {
		return "", fmt.Errorf("%w: UIDVALIDITY is now %d", ErrGone, mb.UIDValidity)
	}
	msg, err := r.st.Message(mb.ID, u.UID)
	if err != nil {
		return "", storeErr(err, "no such message")
	}
	sec, err := message.Parse(u.Section)
	if err != nil {
		return "", urlErr(ErrBadURL, 0, "section: "+err.Error())
	}
	m := message.New(r.st, msg)
	_, err = m.Open(sec, message.Raw)
	m.Release()
	if err != nil {
		return "", storeErr(err, "no such part")
	}
	key, _, _, err := r.st.URLAuthKey(user, 0, mb.Name)
	if err != nil {
		return "", storeErr(err, "no such mailbox")
	}
	a := *u
	a.Mechanism, a.Token = MechanismInternal, Sign(key, u.Rump())
	return a.String(), nil
}

// AuthorizeMessage makes an authorized URL to a message (section "" for
// the whole message) for the server's own use, e.g. a notification's link:
// imap://<user>@<url_host>/<mailbox>;UIDVALIDITY=n/;UID=n[/;SECTION=s]
// [;EXPIRE=t];URLAUTH=<access>:internal:<token>. It applies none of
// GENURLAUTH's policy (expiry, anonymous lifetime, message existence) and
// only needs the mailbox, so that the same arguments give the same URL as
// long as the mailbox's key stays.
func (r *Resolver) AuthorizeMessage(user, mailbox string, uidValidity, uid uint32, section string, access Access, expire time.Time) (string, error) {
	if access.Kind == AccessNone {
		return "", urlErr(ErrBadAccess, 0, "no access identifier")
	}
	u := r.BaseURL(user)
	u.Mailbox, u.UIDValidity, u.UID, u.Section, u.Access = mailbox, uidValidity, uid, section, access
	if !expire.IsZero() {
		u.Expire = expire.UTC().Truncate(time.Second)
	}
	if err := u.Validate(); err != nil {
		return "", err
	}
	key, _, _, err := r.st.URLAuthKey(user, 0, mailbox)
	if err != nil {
		return "", storeErr(err, "no such mailbox")
	}
	u.Mechanism, u.Token = MechanismInternal, Sign(key, u.Rump())
	return u.String(), nil
}

// Reset is RESETKEY (RFC 4467 s7.2): it removes the access key of user's
// mailbox (all of user's keys when mailbox is ""), so that every URL
// authorized under it stops validating. mech may be "" or INTERNAL.
// Errors: ErrMechanism, ErrGone (no such mailbox, or no such account).
func (r *Resolver) Reset(user, mailbox, mech string) error {
	if mech != "" && !strings.EqualFold(mech, MechanismInternal) {
		return fmt.Errorf("%w: %s", ErrMechanism, mech)
	}
	if err := r.st.ResetURLAuthKeys(user, 0, mailbox); err != nil {
		return storeErr(err, "no such mailbox")
	}
	return nil
}

// storeErr maps the store's and the part API's "not there" errors to
// ErrGone (keeping the cause for errors.Is) and passes others on.
func storeErr(err error, what string) error {
	if errors.Is(err, vmstore.ErrNotFound) || errors.Is(err, message.ErrNoSuchPart) {
		return fmt.Errorf("%w: %s (%w)", ErrGone, what, err)
	}
	return err
}

// Resolved is what an URL named, opened.
type Resolved struct {
	URL         *URL
	User        string // the owner of the mailbox
	AccountID   uint64
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	Section     message.Section
	Msg         *message.Message
	// Part is the section opened in message.Raw mode (what BODY[section]
	// serves); Open gives another mode.
	Part *message.Part
}

// Close returns the read buffers of every reader of the resolved message.
func (r *Resolved) Close() error {
	if r.Msg != nil {
		r.Msg.Release()
	}
	return nil
}

// Open opens the section in another mode: message.Decoded for BINARY
// (RFC 5524), message.DecodedLeaf for playback.
func (r *Resolved) Open(mode message.Mode) (*message.Part, error) {
	if mode == message.Raw {
		return r.Part, nil
	}
	return r.Msg.Open(r.Section, mode)
}

// Partial returns the URL's ;PARTIAL= range: offset, length (-1 for to the
// end) and whether there is one (URL-PARTIAL, RFC 5550 s5.7.1).
func (r *Resolved) Partial() (off, n int64, ok bool) {
	if r.URL == nil || r.URL.Partial == nil {
		return 0, -1, false
	}
	n = -1
	if r.URL.Partial.Length != 0 {
		n = int64(r.URL.Partial.Length)
	}
	return int64(r.URL.Partial.Offset), n, true
}

// Content returns a reader of part's content cut to the URL's ;PARTIAL=
// range (for a decoded part, a range of the decoded octets) and the number
// of octets it yields; a range past the end yields none (RFC 5092 s5).
func (r *Resolved) Content(part *message.Part) (io.Reader, int64, error) {
	size, err := part.Size()
	if err != nil {
		return nil, 0, err
	}
	off, n, ok := r.Partial()
	if !ok {
		return part.Reader(), size, nil
	}
	if off >= size {
		return bytes.NewReader(nil), 0, nil
	}
	if n < 0 || n > size-off {
		n = size - off
	}
	rd, err := part.Range(off, n)
	if err != nil {
		return nil, 0, err
	}
	return rd, n, nil
}

// ResolveURL is Resolve of a URL in text form.
func (r *Resolver) ResolveURL(ctx context.Context, s string, req Requester) (*Resolved, error) {
	u, err := Parse(s)
	if err != nil {
		return nil, err
	}
	return r.Resolve(ctx, u, req)
}

// Resolve checks a URL for a requester and opens the part it names
// (URLFETCH, BURL, CATENATE, playback). For a URLAUTH URL, in this order
// (RFC 4467 s9, imap-lemonade notes s1.8): message part (ErrNotPart), this
// server (ErrNotOurs), mechanism (ErrMechanism; a rump URL ErrBadToken),
// ;EXPIRE= (ErrExpired), access identifier against req (ErrNotPermitted),
// then the owner's account, mailbox and access key are read with the same
// store reads whether or not they exist, and the token is verified in
// constant time (ErrBadToken for a wrong token and for anything missing
// alike); only then UIDVALIDITY, the message and the section
// (ErrGone). A URL without URLAUTH resolves only for a requester with Own
// set, in its own mailboxes (ErrNotPermitted otherwise).
//
// The part is opened in message.Raw mode; the caller closes the result.
func (r *Resolver) Resolve(ctx context.Context, u *URL, req Requester) (*Resolved, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if u == nil {
		return nil, urlErr(ErrBadURL, 0, "no URL")
	}
	if !u.IsMessagePart() {
		return nil, fmt.Errorf("%w: ;UID= missing", ErrNotPart)
	}
	if !r.ours(u) {
		return nil, ErrNotOurs
	}
	if u.Access.Kind == AccessNone {
		return r.resolveOwn(u, req)
	}
	if u.Mechanism == "" || u.Token == "" {
		return nil, fmt.Errorf("%w: URL carries no token", ErrBadToken)
	}
	if !strings.EqualFold(u.Mechanism, MechanismInternal) {
		return nil, fmt.Errorf("%w: %s", ErrMechanism, u.Mechanism)
	}
	if u.Expired(r.now()) {
		return nil, ErrExpired
	}
	if !u.Access.Permits(req) {
		return nil, ErrNotPermitted
	}
	owner := vmstore.FoldUserName(u.User) // account names are lower case
	t, found, err := r.st.URLAuthLookup(owner, u.Mailbox)
	if err != nil {
		return nil, err
	}
	// Verify always computes the MAC: with the dummy key when nothing was
	// found, so that the time taken does not tell.
	valid := Verify(t.Key, u.Rump(), u.Token)
	if !found || !valid {
		return nil, ErrBadToken
	}
	mb, err := r.st.MailboxByID(t.MailboxID)
	if err != nil {
		return nil, storeErr(err, "mailbox gone")
	}
	if mb.User != owner {
		return nil, ErrBadToken
	}
	return r.open(u, mb, t.AccountID)
}

func (r *Resolver) resolveOwn(u *URL, req Requester) (*Resolved, error) {
	if !req.Own || !req.Authenticated || req.User == "" {
		return nil, fmt.Errorf("%w: URL without URLAUTH", ErrNotPermitted)
	}
	owner := vmstore.FoldUserName(u.User)
	if owner == "" {
		owner = req.User
	}
	if owner != req.User {
		return nil, fmt.Errorf("%w: another user's mailbox", ErrNotPermitted)
	}
	mb, err := r.st.Mailbox(owner, u.Mailbox)
	if err != nil {
		return nil, storeErr(err, "no such mailbox")
	}
	id, err := r.st.AccountID(owner)
	if err != nil {
		return nil, storeErr(err, "no such account")
	}
	return r.open(u, mb, id)
}

// open checks UIDVALIDITY and opens the message and section.
func (r *Resolver) open(u *URL, mb *vmstore.Mailbox, acct uint64) (*Resolved, error) {
	if u.UIDValidity != 0 && u.UIDValidity != mb.UIDValidity {
		return nil, fmt.Errorf("%w: UIDVALIDITY changed", ErrGone)
	}
	msg, err := r.st.Message(mb.ID, u.UID)
	if err != nil {
		return nil, storeErr(err, "no such message")
	}
	sec, err := message.Parse(u.Section)
	if err != nil {
		return nil, urlErr(ErrBadURL, 0, "section: "+err.Error())
	}
	m := message.New(r.st, msg)
	p, err := m.Open(sec, message.Raw)
	if err != nil {
		m.Release()
		return nil, storeErr(err, "no such part")
	}
	return &Resolved{URL: u, User: mb.User, AccountID: acct, Mailbox: mb.Name, UIDValidity: mb.UIDValidity,
		UID: u.UID, Section: sec, Msg: m, Part: p}, nil
}
