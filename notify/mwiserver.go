package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/sipep"
	"github.com/lemonvox/lemonvox/vmstore"
)

// MWIServer is the RFC 3842 message-waiting notifier: it accepts SUBSCRIBE
// for the message-summary event package and NOTIFYs subscribers, and sends
// unsolicited NOTIFYs to each account's configured MWI targets
// (vmstore.AccountOptions.MWITargets). It is a Sink: plug it into the
// Dispatcher, which feeds it the events that carry MWI counts.
type MWIServer struct {
	// Store is the message store. Required.
	Store *vmstore.Store
	// Endpoint is the appliance's SIP endpoint (transport, digest,
	// limits); the server registers SUBSCRIBE on it in Initialize, before
	// the endpoint starts. Required.
	Endpoint *sipep.Endpoint
	// Domain is the host of Message-Account and From URIs
	// (sip:<user>@<Domain>). Default: the endpoint's Domain.
	Domain string
	// MinExpires (423 below it), MaxExpires (longer requests are shortened)
	// and DefaultExpires (no Expires header) of subscriptions; 0 means 60 s,
	// 3600 s and 3600 s (RFC 3842 default).
	MinExpires, MaxExpires, DefaultExpires time.Duration
	// Coalesce is the minimum time between two NOTIFYs for one account: the
	// first change goes out at once, later changes in the window go out
	// together at its end with the latest counts. 0 means 200 ms.
	Coalesce time.Duration
	// TargetRefresh resends the state to MWI targets periodically; 0 means
	// 1 h, negative disables.
	TargetRefresh time.Duration
	// NotifyTimeout bounds one NOTIFY transaction; 0 means 8 s.
	NotifyTimeout time.Duration
	// MaxSubscriptions (in all, 503 beyond), MaxSubsPerSource (per
	// untrusted source address, 503) and MaxSubsPerAccount (403); 0 means
	// 50,000, 100 and 20, negative no limit.
	MaxSubscriptions, MaxSubsPerSource, MaxSubsPerAccount int
	// FanOut bounds the NOTIFYs of one account in flight at once, so that
	// one account's subscribers cannot hold up the others'; 0 means 8.
	FanOut int
	// SinkName is the dispatcher sink name; default "mwi".
	SinkName string
	// Logger; nil means slog.Default.
	Logger *slog.Logger

	log    *slog.Logger
	ep     *sipep.Endpoint
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	accounts map[string]*mwiAccount
	subs     map[string]*mwiSub // by dialog id
	bySource map[netip.Addr]int // subscriptions per source address
	unhook   func()             // stops the account-deleted calls
}

// mwiAccount is the notification state of one account.
type mwiAccount struct {
	subs     map[string]*mwiSub
	lastSent time.Time
	timer    *time.Timer
}

// mwiSub is one subscription dialog (RFC 6665 s4.2, RFC 3261 s12). We are
// the notifier: our tag is the To tag of the SUBSCRIBE.
type mwiSub struct {
	id        string
	user      string
	accountID uint64 // the account's identity (vmstore.Account.ID)
	callID    string
	localTag  string
	remoteTag string
	localURI  sip.Uri // To of the SUBSCRIBE
	remoteURI sip.Uri // From of the SUBSCRIBE
	target    sip.Uri // Contact of the SUBSCRIBE
	routes    []sip.Uri
	transport string
	eventID   string
	source    netip.Addr // where the SUBSCRIBE came from

	mu       sync.Mutex // serializes NOTIFYs: order and CSeq
	cseq     uint32
	expires  time.Time
	lastBody string
	failures int
	acked    int
	gone     bool
}

// Initialize registers the server's methods on the endpoint and starts
// its timers; NOTIFYs go out once the endpoint has started.
func (m *MWIServer) Initialize() error {
	if m.Store == nil || m.Endpoint == nil {
		return fmt.Errorf("%w: MWIServer needs Store and Endpoint", ErrConfig)
	}
	m.ep = m.Endpoint
	m.log = m.Logger
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("pkg", "notify", "svc", "mwi")
	if m.MinExpires <= 0 {
		m.MinExpires = 60 * time.Second
	}
	if m.MaxExpires <= 0 {
		m.MaxExpires = time.Hour
	}
	if m.DefaultExpires <= 0 {
		m.DefaultExpires = time.Hour
	}
	if m.Coalesce <= 0 {
		m.Coalesce = 200 * time.Millisecond
	}
	if m.TargetRefresh == 0 {
		m.TargetRefresh = time.Hour
	}
	if m.NotifyTimeout <= 0 {
		m.NotifyTimeout = 8 * time.Second
	}
	if m.SinkName == "" {
		m.SinkName = "mwi"
	}
	m.accounts = map[string]*mwiAccount{}
	m.subs = map[string]*mwiSub{}
	m.bySource = map[netip.Addr]int{}
	m.limitDefaults()
	m.ep.Handle(sip.SUBSCRIBE, m.handleSubscribe)
	m.ep.AllowEvents("message-summary")
	// A subscriber's connection lives as long as its subscription may go
	// without a refresh.
	m.ep.KeepIdle(m.MaxExpires + 2*time.Minute)
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.expiryLoop()
	if m.TargetRefresh > 0 {
		m.wg.Add(1)
		go m.refreshLoop()
	}
	m.unhook = m.Store.Hub().OnAccountDeleted(m.accountDeleted)
	return nil
}

// domain is the host of the server's URIs.
func (m *MWIServer) domain() string {
	if m.Domain != "" {
		return m.Domain
	}
	return m.ep.Domain
}

// accountDeleted ends the subscriptions of a deleted account at once
// (they belong to its identity, not to its name: an account created again
// under the name is not reported to them), with a final NOTIFY
// "terminated;reason=noresource" (RFC 6665 s4.1.3), and drops its
// coalescing state. The hub calls it on the committing goroutine.
func (m *MWIServer) accountDeleted(user string, id uint64) {
	m.mu.Lock()
	var ended []*mwiSub
	a := m.accounts[user]
	if a != nil {
		for sid, s := range a.subs {
			if id != 0 && s.accountID != 0 && s.accountID != id {
				continue // a later account of the name
			}
			ended = append(ended, s)
			delete(a.subs, sid)
			delete(m.subs, sid)
			if n := m.bySource[s.source] - 1; n > 0 {
				m.bySource[s.source] = n
			} else {
				delete(m.bySource, s.source)
			}
			metricSIPSubscriptions.Dec()
		}
		if len(a.subs) == 0 {
			if a.timer != nil && a.timer.Stop() {
				m.wg.Done() // the timer's function will not run
			}
			delete(m.accounts, user)
		}
	}
	if m.ctx == nil || m.ctx.Err() != nil {
		m.mu.Unlock()
		return
	}
	m.wg.Add(len(ended))
	m.mu.Unlock()
	for _, s := range ended {
		go func() {
			defer m.wg.Done()
			m.notifySub(s, "terminated;reason=noresource", true)
		}()
	}
}

// Addr is the endpoint's bound UDP/TCP address.
func (m *MWIServer) Addr() string { return m.ep.Addr() }

// Close ends every subscription with a final NOTIFY
// (terminated;reason=deactivated, RFC 6665 s4.2.2: retry later) and stops;
// close the endpoint afterwards.
func (m *MWIServer) Close() {
	if m.cancel == nil {
		return
	}
	if m.unhook != nil {
		m.unhook()
	}
	m.mu.Lock()
	subs := make([]*mwiSub, 0, len(m.subs))
	for _, s := range m.subs {
		subs = append(subs, s)
	}
	for _, a := range m.accounts {
		if a.timer != nil && a.timer.Stop() {
			a.timer = nil
			m.wg.Done() // the timer's function will not run
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.notifySub(s, "terminated;reason=deactivated", true)
		}()
	}
	wg.Wait()
	m.cancel()
	m.wg.Wait()
}

// Name implements Sink.
func (m *MWIServer) Name() string { return m.SinkName }

// Accept implements Sink: events that may change an account's MWI counts.
func (m *MWIServer) Accept(ev *vmstore.Event) bool { return ev.MWI != nil }

// Deliver implements Sink. MWI is state: the NOTIFYs carry the account's
// counts read at send time, so a late or repeated event never rolls a lamp
// back. Delivery to phones is the SIP transaction layer's business
// (retransmission, RFC 3261 s17.1.2); failures there are not retried here.
func (m *MWIServer) Deliver(_ context.Context, ev *vmstore.Event, _ int) error {
	m.Changed(ev.User)
	return nil
}

// Changed schedules a NOTIFY of the account's current counts to its
// subscribers and MWI targets, coalesced (see Coalesce).
func (m *MWIServer) Changed(user string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil || m.ctx.Err() != nil {
		return
	}
	a := m.account(user)
	if a.timer != nil {
		return // a NOTIFY is already scheduled; it will read the latest counts
	}
	wait := time.Until(a.lastSent.Add(m.Coalesce))
	if wait <= 0 {
		a.lastSent = time.Now()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.sendAll(user)
		}()
		return
	}
	m.wg.Add(1)
	a.timer = time.AfterFunc(wait, func() {
		defer m.wg.Done()
		m.mu.Lock()
		a.timer = nil
		a.lastSent = time.Now()
		m.mu.Unlock()
		m.sendAll(user)
	})
}

func (m *MWIServer) account(user string) *mwiAccount {
	a := m.accounts[user]
	if a == nil {
		a = &mwiAccount{subs: map[string]*mwiSub{}}
		m.accounts[user] = a
	}
	return a
}

// sendAll NOTIFYs the account's subscribers and targets.
func (m *MWIServer) sendAll(user string) {
	if m.ctx.Err() != nil {
		return
	}
	m.mu.Lock()
	var subs []*mwiSub
	if a := m.accounts[user]; a != nil {
		for _, s := range a.subs {
			subs = append(subs, s)
		}
	}
	m.mu.Unlock()
	// At most FanOut NOTIFYs of this account at once (siplimits.go).
	var wg sync.WaitGroup
	sem := make(chan struct{}, m.FanOut)
	for _, s := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m.notifySub(s, "", false)
		}()
	}
	acct, err := m.Store.GetAccount(user)
	if err == nil && len(acct.Options.MWITargets) > 0 {
		body, err := m.summary(user)
		if err != nil {
			m.log.Error("reading MWI counts", "user", user, "err", err)
		} else {
			for _, t := range acct.Options.MWITargets {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := m.SendUnsolicited(m.ctx, user, t, body, "active"); err != nil {
						m.log.Warn("unsolicited NOTIFY failed", "user", user, "target", t.URI, "err", err)
					}
				}()
			}
		}
	}
	wg.Wait()
}

// summary is the current message-summary body of an account. A failure to
// read the counts is an error, never a zero count (STYLE s5).
func (m *MWIServer) summary(user string) ([]byte, error) {
	mwi, err := m.Store.AccountMWI(user)
	if err != nil {
		return nil, err
	}
	return FormatSummary(m.accountURI(user), mwi), nil
}

func (m *MWIServer) accountURI(user string) string {
	u := sip.Uri{Scheme: "sip", User: user, Host: m.domain()}
	return u.String()
}

// notifySub sends one in-dialog NOTIFY (RFC 6665 s4.2.2, RFC 3842 s5).
// state "" means active with the remaining time; force sends even when the
// body did not change. A terminated state removes the subscription.
func (m *MWIServer) notifySub(s *mwiSub, state string, force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return
	}
	terminated := strings.HasPrefix(state, "terminated")
	if state == "" {
		rem := time.Until(s.expires).Round(time.Second)
		if rem <= 0 {
			return // the expiry loop ends it
		}
		state = "active;expires=" + strconv.Itoa(int(rem/time.Second))
	}
	var body []byte
	var err error
	if !strings.Contains(state, "reason=noresource") {
		// (The account is gone: another of the name is none of this
		// subscriber's business.)
		body, err = m.summary(s.user)
	}
	if err != nil {
		m.log.Error("reading MWI counts", "user", s.user, "err", err)
		if !terminated {
			return
		}
		body = nil
	}
	if !force && !terminated && string(body) == s.lastBody {
		return
	}
	if terminated {
		s.gone = true
		m.removeSub(s)
	}
	s.cseq++
	req := sip.NewRequest(sip.NOTIFY, s.target)
	req.SetTransport(s.transport)
	from := &sip.FromHeader{Address: s.localURI, Params: sip.NewParams()}
	from.Params.Add("tag", s.localTag)
	to := &sip.ToHeader{Address: s.remoteURI, Params: sip.NewParams()}
	to.Params.Add("tag", s.remoteTag)
	req.AppendHeader(from)
	req.AppendHeader(to)
	cid := sip.CallIDHeader(s.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: s.cseq, MethodName: sip.NOTIFY})
	for _, r := range s.routes {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	m.commonNotifyHeaders(req, s.transport, s.eventID, state, body)
	ctx, cancel := context.WithTimeout(m.ctx, m.NotifyTimeout)
	defer cancel()
	res, err := m.do(ctx, req, s.transport)
	switch {
	case err != nil:
		metricSIPNotifies.WithLabelValues("dialog", "error").Inc()
		s.failures++
		m.log.Warn("NOTIFY failed", "user", s.user, "call-id", s.callID, "err", err, "failures", s.failures)
		if s.failures >= 3 && !s.gone {
			s.gone = true
			m.removeSub(s)
		}
	case res.StatusCode == 481:
		// RFC 6665 s4.1.3: the subscriber no longer knows the dialog.
		metricSIPNotifies.WithLabelValues("dialog", "error").Inc()
		if !s.gone {
			s.gone = true
			m.removeSub(s)
		}
	case res.IsSuccess():
		metricSIPNotifies.WithLabelValues("dialog", "ok").Inc()
		s.failures = 0
		s.lastBody = string(body)
		s.acked++
	default:
		metricSIPNotifies.WithLabelValues("dialog", "error").Inc()
		s.failures++
		m.log.Warn("NOTIFY rejected", "user", s.user, "status", res.StatusCode)
	}
}

func (m *MWIServer) commonNotifyHeaders(req *sip.Request, transport, eventID, state string, body []byte) {
	ev := "message-summary"
	if eventID != "" {
		ev += ";id=" + eventID
	}
	req.AppendHeader(sip.NewHeader("Event", ev))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Allow-Events", "message-summary"))
	req.AppendHeader(&sip.ContactHeader{Address: m.contactURI(transport)})
	maxf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxf)
	if body != nil {
		ct := sip.ContentTypeHeader(MWIContentType)
		req.AppendHeader(&ct)
	}
	req.SetBody(body)
}

func (m *MWIServer) contactURI(transport string) sip.Uri { return m.ep.ContactURI(transport) }

// do runs a client transaction through the endpoint.
func (m *MWIServer) do(ctx context.Context, req *sip.Request, _ string) (*sip.Response, error) {
	return m.ep.Do(ctx, req)
}

// SendUnsolicited sends an out-of-dialog NOTIFY to a target (notes s5.3,
// Asterisk practice; not RFC 6665 but what PBXs and phones accept): fresh
// Call-ID and From tag, no To tag. A 2xx is success.
func (m *MWIServer) SendUnsolicited(ctx context.Context, user string, t vmstore.MWITarget, body []byte, state string) error {
	var uri sip.Uri
	if err := sip.ParseUri(t.URI, &uri); err != nil {
		return fmt.Errorf("%w: MWI target %q: %v", ErrConfig, t.URI, err)
	}
	transport := strings.ToUpper(t.Transport)
	if transport == "" {
		transport = "UDP"
	}
	req := sip.NewRequest(sip.NOTIFY, uri)
	req.SetTransport(transport)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: m.domain()}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: uri, Params: sip.NewParams()})
	cid := sip.CallIDHeader(randomToken(12) + "@" + m.domain())
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.NOTIFY})
	m.commonNotifyHeaders(req, transport, "", state, body)
	ctx, cancel := context.WithTimeout(ctx, m.NotifyTimeout)
	defer cancel()
	res, err := m.do(ctx, req, transport)
	if err != nil {
		metricSIPNotifies.WithLabelValues("unsolicited", "error").Inc()
		return fmt.Errorf("%w: %v", ErrDelivery, err)
	}
	if !res.IsSuccess() {
		metricSIPNotifies.WithLabelValues("unsolicited", "error").Inc()
		return fmt.Errorf("%w: %d %s", ErrDelivery, res.StatusCode, res.Reason)
	}
	metricSIPNotifies.WithLabelValues("unsolicited", "ok").Inc()
	return nil
}

func (m *MWIServer) removeSub(s *mwiSub) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.subs[s.id]; !ok {
		return
	}
	delete(m.subs, s.id)
	if n := m.bySource[s.source] - 1; n > 0 {
		m.bySource[s.source] = n
	} else {
		delete(m.bySource, s.source)
	}
	metricSIPSubscriptions.Dec()
	if a := m.accounts[s.user]; a != nil {
		delete(a.subs, s.id)
	}
}

// Subscriptions counts the active subscriptions of an account ("" = all).
func (m *MWIServer) Subscriptions(user string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if user == "" {
		return len(m.subs)
	}
	if a := m.accounts[user]; a != nil {
		return len(a.subs)
	}
	return 0
}

// ackedNotifies sums the NOTIFYs answered 2xx for an account's live
// subscriptions (tests and benchmarks).
func (m *MWIServer) ackedNotifies(user string) int {
	m.mu.Lock()
	var subs []*mwiSub
	if a := m.accounts[user]; a != nil {
		for _, s := range a.subs {
			subs = append(subs, s)
		}
	}
	m.mu.Unlock()
	n := 0
	for _, s := range subs {
		s.mu.Lock()
		n += s.acked
		s.mu.Unlock()
	}
	return n
}

func (m *MWIServer) expiryLoop() {
	defer m.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case now := <-t.C:
			// Lock order: s.mu before m.mu (notifySub -> removeSub).
			m.mu.Lock()
			all := make([]*mwiSub, 0, len(m.subs))
			for _, s := range m.subs {
				all = append(all, s)
			}
			m.mu.Unlock()
			for _, s := range all {
				s.mu.Lock()
				due := !now.Before(s.expires)
				s.mu.Unlock()
				if due {
					m.wg.Add(1)
					go func() {
						defer m.wg.Done()
						m.notifySub(s, "terminated;reason=timeout", true)
					}()
				}
			}
		}
	}
}

func (m *MWIServer) refreshLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.TargetRefresh)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			accts, err := m.Store.ListAccounts()
			if err != nil {
				m.log.Error("listing accounts for MWI refresh", "err", err)
				continue
			}
			for _, a := range accts {
				if len(a.Options.MWITargets) > 0 {
					m.Changed(a.Name)
				}
			}
		}
	}
}

// ---- SUBSCRIBE (RFC 6665 s4.2.1, RFC 3842 s4, notes s5.1) ----

func (m *MWIServer) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	m.ep.Respond(req, tx, code, reason, hdrs...)
	metricSIPRequests.WithLabelValues(string(req.Method), strconv.Itoa(code/100)+"xx").Inc()
}

func (m *MWIServer) handleSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	evh := req.GetHeader("Event")
	pkg, eventID := "", ""
	if evh != nil {
		parts := strings.Split(evh.Value(), ";")
		pkg = strings.ToLower(strings.TrimSpace(parts[0]))
		for _, p := range parts[1:] {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "id") {
				eventID = v
			}
		}
	}
	if pkg != "message-summary" {
		// RFC 6665 s4.2.1: unknown package -> 489 with Allow-Events.
		m.respond(req, tx, 489, "Bad Event", sip.NewHeader("Allow-Events", "message-summary"))
		return
	}
	if acc := req.GetHeaders("Accept"); len(acc) > 0 {
		ok := false
		for _, h := range acc {
			for _, t := range strings.Split(h.Value(), ",") {
				t = strings.ToLower(strings.TrimSpace(strings.SplitN(t, ";", 2)[0]))
				if t == MWIContentType || t == "application/*" || t == "*/*" {
					ok = true
				}
			}
		}
		if !ok {
			m.respond(req, tx, 406, "Not Acceptable", sip.NewHeader("Accept", MWIContentType))
			return
		}
	}
	expires := m.DefaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			m.respond(req, tx, 400, "Bad Expires")
			return
		}
		expires = time.Duration(n) * time.Second
	}
	if expires > 0 && expires < m.MinExpires {
		m.respond(req, tx, 423, "Interval Too Brief",
			sip.NewHeader("Min-Expires", strconv.Itoa(int(m.MinExpires/time.Second))))
		return
	}
	expires = min(expires, m.MaxExpires)

	to, from := req.To(), req.From()
	if to == nil || from == nil || req.CallID() == nil {
		m.respond(req, tx, 400, "Bad Request")
		return
	}
	if tag, ok := to.Params.Get("tag"); ok && tag != "" {
		m.refresh(req, tx, tag, expires)
		return
	}

	user := req.Recipient.User
	if user == "" {
		user = to.Address.User
	}
	acct, err := m.Store.GetAccount(user)
	if err != nil {
		if errors.Is(err, vmstore.ErrNotFound) {
			m.respond(req, tx, 404, "Not Found")
		} else {
			m.log.Error("looking up account", "user", user, "err", err)
			m.respond(req, tx, 500, "Server Error")
		}
		return
	}
	if !m.ep.Authenticate(req, tx, acct.Name, acct.Options.Notify["sip_ha1"]) {
		return
	}
	contact := req.Contact()
	if contact == nil {
		m.respond(req, tx, 400, "Missing Contact")
		return
	}
	fromTag, _ := from.Params.Get("tag")
	s := &mwiSub{
		user:      acct.Name,
		accountID: acct.ID,
		callID:    string(*req.CallID()),
		localTag:  randomToken(8),
		remoteTag: fromTag,
		localURI:  to.Address,
		remoteURI: from.Address,
		target:    m.notifyTarget(req, contact.Address),
		transport: req.Transport(),
		eventID:   eventID,
		expires:   time.Now().Add(expires),
	}
	// RFC 3261 s12.1.1: the route set is the Record-Route list, in order
	// (from trusted proxies only: see notifyTarget).
	for _, h := range req.GetHeaders("Record-Route") {
		if !m.ep.Trusted(req.Source()) {
			break
		}
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			s.routes = append(s.routes, rr.Address)
		}
	}
	s.id = s.callID + "\x00" + s.localTag
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if t := res.To(); t != nil {
		t.Params.Remove("tag")
		t.Params.Add("tag", s.localTag)
	}
	exp := sip.ExpiresHeader(uint32(expires / time.Second))
	res.AppendHeader(&exp)
	res.AppendHeader(&sip.ContactHeader{Address: m.contactURI(s.transport)})
	if expires > 0 {
		s.source = authlimit.AddrOf(req.Source())
		m.mu.Lock()
		if code, reason := m.admitSub(s.user, s.source, m.ep.Trusted(req.Source())); code != 0 {
			m.mu.Unlock()
			metricSIPSubsRefused.WithLabelValues(strconv.Itoa(code)).Inc()
			var hdrs []sip.Header
			if code == 503 {
				hdrs = append(hdrs, sip.NewHeader("Retry-After", strconv.Itoa(sipep.RetryAfterSeconds)))
			}
			m.respond(req, tx, code, reason, hdrs...)
			return
		}
		m.subs[s.id] = s
		m.account(s.user).subs[s.id] = s
		m.bySource[s.source]++
		m.mu.Unlock()
		metricSIPSubscriptions.Inc()
	}
	if err := tx.Respond(res); err != nil {
		m.log.Debug("responding", "err", err)
	}
	metricSIPRequests.WithLabelValues("SUBSCRIBE", "2xx").Inc()
	m.log.Debug("subscription", "user", s.user, "call-id", s.callID, "expires", expires)
	// RFC 6665 s4.2.1: a NOTIFY with the current state follows at once;
	// with Expires 0 (a fetch) it is the final one.
	state := ""
	if expires == 0 {
		state = "terminated;reason=timeout"
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.notifySub(s, state, true)
	}()
}

// notifyTarget is where a subscription's NOTIFYs go. A trusted source (the
// PBX) may name any Contact; an untrusted one gets them at the address its
// SUBSCRIBE came from (RFC 3581 received/rport), whatever Contact it wrote,
// so that the server cannot be made to send NOTIFYs to third parties.
func (m *MWIServer) notifyTarget(req *sip.Request, contact sip.Uri) sip.Uri {
	if m.ep.Trusted(req.Source()) {
		return contact
	}
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return contact // not reached: sources are ip:port
	}
	u := sip.Uri{Scheme: "sip", User: contact.User, Host: ap.Addr().Unmap().String(), Port: int(ap.Port())}
	if ap.Addr().Unmap().Is6() {
		u.Host = "[" + u.Host + "]"
	}
	return u
}

// refresh handles an in-dialog SUBSCRIBE: new expiry, or Expires 0 to end.
func (m *MWIServer) refresh(req *sip.Request, tx sip.ServerTransaction, tag string, expires time.Duration) {
	id := string(*req.CallID()) + "\x00" + tag
	m.mu.Lock()
	s := m.subs[id]
	m.mu.Unlock()
	if s == nil {
		m.respond(req, tx, 481, "Subscription Does Not Exist")
		return
	}
	acct, err := m.Store.GetAccount(s.user)
	if err != nil {
		m.respond(req, tx, 481, "Subscription Does Not Exist")
		return
	}
	if !m.ep.Authenticate(req, tx, acct.Name, acct.Options.Notify["sip_ha1"]) {
		return
	}
	s.mu.Lock()
	s.expires = time.Now().Add(expires)
	s.mu.Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	exp := sip.ExpiresHeader(uint32(expires / time.Second))
	res.AppendHeader(&exp)
	res.AppendHeader(&sip.ContactHeader{Address: m.contactURI(s.transport)})
	_ = tx.Respond(res)
	metricSIPRequests.WithLabelValues("SUBSCRIBE", "2xx").Inc()
	state := ""
	if expires == 0 {
		// RFC 6665 s4.2.1.4: unsubscribe -> final NOTIFY, terminated.
		state = "terminated"
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.notifySub(s, state, true)
	}()
}

// SIPHA1 computes the digest credential to store as
// Account.Options.Notify["sip_ha1"]: hex MD5(user:realm:secret) (RFC 2617
// s3.2.2.2). The secret itself is not stored.
func SIPHA1(user, realm, secret string) string { return sipep.HA1(user, realm, secret) }

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
