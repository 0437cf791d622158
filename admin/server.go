// Package admin serves the appliance's HTTP administration interface: the
// JSON API (accounts, deposits, mailboxes, messages, MWI, backup), health
// and Prometheus metrics.
//
// Implementation notes:
//   - /healthz and /metrics need no token; everything under /api/ needs
//     "Authorization: Bearer <token>", compared in constant time.
//   - Errors are RFC 9457 problem bodies (application/problem+json).
//   - Deposits stream: the request body goes to the store as it arrives.
package admin

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/netlimit"
	"github.com/lemonvox/lemonvox/vmstore"
)

// Server is the admin HTTP server.
type Server struct {
	Store  *vmstore.Store
	Listen string // e.g. 127.0.0.1:8080
	Token  string
	// TLS, if set, serves HTTPS.
	TLS    *tls.Config
	Logger *slog.Logger
	Probe  Prober
	// Registry for /metrics; nil means prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// MaxDeposit bounds a deposit request body; 0 means the store's limit.
	MaxDeposit int64
	// Notify, if set, serves the notification sinks' status, dead letters
	// and replay under /api/v1/notify.
	Notify Notifications
	// Listeners, if set, are reported by /healthz: 503 when one of them is
	// not accepting connections.
	Listeners *netlimit.Registry
	// AuthLimiter slows down wrong tokens (shared with the other protocols);
	// nil means one of this server with the default rules.
	AuthLimiter *authlimit.Limiter
	// WHEP, if set, serves WebRTC playback (/whep, /whep/...) and the web
	// player (/player/) without the admin token: grants authorize.
	WHEP http.Handler
	// Grants, if set, issues playback grants:
	// POST /api/v1/accounts/{user}/grants.
	Grants *channel.Grants

	ln   net.Listener
	srv  *http.Server
	wg   sync.WaitGroup
	addr string
}

// Addr is the address actually listened on (after Initialize).
func (s *Server) Addr() string { return s.addr }

// URL is the base URL of the server.
func (s *Server) URL() string {
	scheme := "http"
	if s.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + s.addr
}

// Initialize starts listening and serving.
func (s *Server) Initialize() error {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Token == "" {
		return errors.New("admin: no token configured")
	}
	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return fmt.Errorf("admin: listen %s: %w", s.Listen, err)
	}
	if s.TLS != nil {
		ln = tls.NewListener(ln, s.TLS)
	}
	s.ln = ln
	s.addr = ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("admin: serve", "err", err)
		}
	}()
	s.Logger.Info("admin API listening", "url", s.URL())
	return nil
}

// Close stops the server, letting requests in progress finish for a while.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.wg.Wait()
	return err
}

// Handler returns the HTTP handler (also usable without Initialize).
func (s *Server) Handler() http.Handler {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	g := s.Gatherer
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/accounts", s.listAccounts)
	api.HandleFunc("POST /api/v1/accounts", s.createAccount)
	api.HandleFunc("GET /api/v1/accounts/{user}", s.getAccount)
	api.HandleFunc("PATCH /api/v1/accounts/{user}", s.patchAccount)
	api.HandleFunc("DELETE /api/v1/accounts/{user}", s.deleteAccount)
	api.HandleFunc("GET /api/v1/accounts/{user}/mwi", s.getMWI)
	api.HandleFunc("GET /api/v1/accounts/{user}/mailboxes", s.listMailboxes)
	api.HandleFunc("GET /api/v1/accounts/{user}/mailboxes/{mailbox...}", s.listMessages)
	api.HandleFunc("POST /api/v1/accounts/{user}/messages", s.deposit)
	api.HandleFunc("GET /api/v1/backup", s.backup)
	api.HandleFunc("GET /api/v1/queue", s.listQueue)
	api.HandleFunc("DELETE /api/v1/queue/{id}", s.cancelQueued)
	s.notifyRoutes(api)
	s.whepRoutes(mux, api)
	// Go runtime profiles for operators (behind the token).
	api.Handle("GET /api/v1/debug/pprof/", http.StripPrefix("/api/v1", http.HandlerFunc(pprof.Index)))
	api.HandleFunc("GET /api/v1/debug/pprof/profile", pprof.Profile)
	api.HandleFunc("GET /api/v1/debug/pprof/trace", pprof.Trace)
	api.HandleFunc("POST /api/v1/debug/free-memory", s.freeMemory)
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
	mux.Handle("/api/", s.auth(api))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "not found: "+r.URL.Path)
	})
	return s.logRequests(mux)
}

// freeMemory collects garbage and returns free memory to the operating
// system at once (debug.FreeOSMemory), then reports the heap: for memory
// measurements that should not depend on when the runtime's background
// scavenger last ran.
func (s *Server) freeMemory(w http.ResponseWriter, r *http.Request) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	writeJSON(w, http.StatusOK, map[string]uint64{
		"heapInuseBytes": ms.HeapInuse, "heapReleasedBytes": ms.HeapReleased,
		"stackInuseBytes": ms.StackInuse, "sysBytes": ms.Sys, "goroutines": uint64(runtime.NumGoroutine())})
}

func (s *Server) auth(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.Token)
	lim := s.AuthLimiter
	if lim == nil {
		lim = authlimit.New(authlimit.Config{})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A wrong token is answered later and later from the address that
		// sent it (authlimit); the right token is never refused because
		// of failures, only delayed while its address is being slowed.
		att, err := lim.Begin(r.Context(), "admin", authlimit.AddrOf(r.RemoteAddr), "")
		if err != nil {
			w.Header().Set("Retry-After", "30")
			writeProblem(w, http.StatusTooManyRequests, "too many failed authentications from your address; retry later")
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			att.Failed()
			w.Header().Set("WWW-Authenticate", `Bearer realm="lemonvox"`)
			writeProblem(w, http.StatusUnauthorized, "missing or wrong admin token")
			return
		}
		att.Succeeded()
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(c int) { w.status = c; w.ResponseWriter.WriteHeader(c) }

func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: 200}
		next.ServeHTTP(sw, r)
		httpRequests.WithLabelValues(strconv.Itoa(sw.status/100) + "xx").Inc()
		s.Logger.Debug("http", "method", r.Method, "path", redactPath(r.URL.Path), "status", sw.status, "dur", time.Since(start), "remote", r.RemoteAddr)
	})
}

// healthProblem is /healthz's RFC 9457 body when a listener is down.
type healthProblem struct {
	Problem
	Listeners []netlimit.Status `json:"listeners"`
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Store.ListAccounts(); err != nil {
		writeProblem(w, http.StatusServiceUnavailable, "store: "+err.Error())
		return
	}
	var listeners []netlimit.Status
	if s.Listeners != nil {
		listeners = s.Listeners.Status()
		slices.SortFunc(listeners, func(a, b netlimit.Status) int { return strings.Compare(a.Name, b.Name) })
		var down []string
		for _, l := range listeners {
			if !l.Accepting {
				down = append(down, l.Name)
			}
		}
		if len(down) > 0 {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(healthProblem{
				Problem: Problem{Type: "about:blank", Title: http.StatusText(http.StatusServiceUnavailable), Status: http.StatusServiceUnavailable,
					Detail: "not accepting connections: " + strings.Join(down, ", ")},
				Listeners: listeners})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "journalSeq": s.Store.LastSeq(), "listeners": listeners})
}

// AccountView is an account as the API shows it (no secrets).
type AccountView struct {
	// ID is the account's identity (vmstore.Account.ID): an account
	// created again under a deleted one's name has another.
	ID      uint64                 `json:"id"`
	Name    string                 `json:"name"`
	Quota   vmstore.Quota          `json:"quota"`
	Usage   vmstore.Usage          `json:"usage"`
	Options vmstore.AccountOptions `json:"options"`
	Created time.Time              `json:"created"`
	HasPIN  bool                   `json:"hasPin"`
	// Secrets names the write-only options that are set (their values,
	// password-equivalent, never leave through the API).
	Secrets []string `json:"secrets,omitempty"`
}

// secretNotifyOptions are account options (Options.Notify keys) that are
// credentials: write-only through the API. notify.sip_ha1 is
// MD5(user:realm:secret), enough to answer any digest challenge.
var secretNotifyOptions = []string{"sip_ha1"}

func (s *Server) view(a *vmstore.Account) AccountView { return AccountViewOf(s.Store, a) }

// AccountViewOf shows an account without its secrets.
func AccountViewOf(st *vmstore.Store, a *vmstore.Account) AccountView {
	u, _ := st.Usage(a.Name)
	v := AccountView{ID: a.ID, Name: a.Name, Quota: a.Quota, Usage: u, Options: a.Options, Created: a.Created, HasPIN: a.PINHash != ""}
	if len(a.Options.Notify) > 0 {
		v.Options.Notify = make(map[string]string, len(a.Options.Notify))
		for k, val := range a.Options.Notify {
			if slices.Contains(secretNotifyOptions, k) {
				v.Secrets = append(v.Secrets, "notify."+k)
				continue
			}
			v.Options.Notify[k] = val
		}
		if len(v.Options.Notify) == 0 {
			v.Options.Notify = nil
		}
		slices.Sort(v.Secrets)
	}
	return v
}

// keepSecrets carries the account's write-only options over into a
// replacement of its options, unless the request names them: options read
// from the API (where secrets are left out) and written back keep them. A
// secret named with an empty value is removed.
func keepSecrets(old, upd *vmstore.AccountOptions) {
	for _, k := range secretNotifyOptions {
		v, named := upd.Notify[k]
		switch {
		case named && v == "":
			delete(upd.Notify, k)
		case !named && old.Notify[k] != "":
			if upd.Notify == nil {
				upd.Notify = map[string]string{}
			}
			upd.Notify[k] = old.Notify[k]
		}
	}
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) {
	accts, err := s.Store.ListAccounts()
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]AccountView, 0, len(accts))
	for i := range accts {
		out = append(out, s.view(&accts[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// AccountRequest creates or changes an account.
type AccountRequest struct {
	Name     string                  `json:"name,omitempty"`
	Password *string                 `json:"password,omitempty"`
	PIN      *string                 `json:"pin,omitempty"`
	Quota    *vmstore.Quota          `json:"quota,omitempty"`
	Options  *vmstore.AccountOptions `json:"options,omitempty"`
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := jsonDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		writeProblem(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	var req AccountRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	spec := vmstore.AccountSpec{Name: req.Name}
	if req.Password == nil {
		writeProblem(w, http.StatusBadRequest, "password is required")
		return
	}
	spec.Password = *req.Password
	if req.PIN != nil {
		spec.PIN = *req.PIN
	}
	if req.Quota != nil {
		spec.Quota = *req.Quota
	}
	if req.Options != nil {
		spec.Options = *req.Options
	}
	a, err := s.Store.CreateAccount(spec)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.view(a))
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	a, err := s.Store.GetAccount(r.PathValue("user"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(a))
}

func (s *Server) patchAccount(w http.ResponseWriter, r *http.Request) {
	var req AccountRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	old, err := s.Store.GetAccount(r.PathValue("user"))
	if err != nil {
		writeError(w, err)
		return
	}
	user := old.Name // as stored (the path may differ in case)
	if req.Password != nil {
		err = s.Store.SetPassword(user, *req.Password)
	}
	if err == nil && req.PIN != nil {
		err = s.Store.SetPIN(user, *req.PIN)
	}
	if err == nil && req.Quota != nil {
		err = s.Store.SetQuota(user, *req.Quota)
	}
	if err == nil && req.Options != nil {
		keepSecrets(&old.Options, req.Options)
		_, err = s.Store.SetOptions(user, *req.Options)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	s.getAccount(w, r)
}

func (s *Server) deleteAccount(w http.ResponseWriter, r *http.Request) {
	// No name check here: accounts stored before names were checked
	// (CheckUserName) must stay deletable.
	a, err := s.Store.GetAccount(r.PathValue("user"))
	if err == nil {
		err = s.Store.DeleteAccount(a.Name)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// MWIView is the message-waiting state of an account.
type MWIView struct {
	Account         string                               `json:"account"`
	MessagesWaiting bool                                 `json:"messagesWaiting"`
	Counts          map[vmstore.Context]vmstore.MWICount `json:"counts"`
}

func (s *Server) getMWI(w http.ResponseWriter, r *http.Request) {
	v, err := MWIOf(s.Store, r.PathValue("user"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// MWIOf returns an account's message-waiting state.
func MWIOf(st *vmstore.Store, user string) (*MWIView, error) {
	m, err := st.AccountMWI(user)
	if err != nil {
		return nil, err
	}
	return &MWIView{Account: user, MessagesWaiting: m.Waiting(), Counts: m.Counts}, nil
}

// MailboxView is a mailbox with its counters.
type MailboxView struct {
	Name          string `json:"name"`
	UIDValidity   uint32 `json:"uidvalidity"`
	UIDNext       uint32 `json:"uidnext"`
	HighestModSeq uint64 `json:"highestmodseq"`
	SpecialUse    string `json:"specialUse,omitempty"`
	Messages      uint32 `json:"messages"`
	Unseen        uint32 `json:"unseen"`
	Bytes         int64  `json:"bytes"`
}

func (s *Server) listMailboxes(w http.ResponseWriter, r *http.Request) {
	mbs, err := s.Store.Mailboxes(r.PathValue("user"))
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]MailboxView, 0, len(mbs))
	for i := range mbs {
		out = append(out, mailboxView(&mbs[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

func mailboxView(mb *vmstore.Mailbox) MailboxView {
	return MailboxView{Name: mb.Name, UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext, HighestModSeq: mb.HighestModSeq,
		SpecialUse: mb.SpecialUse, Messages: mb.Counts.Messages, Unseen: mb.Counts.Unseen, Bytes: mb.Counts.Bytes}
}

// MessageView is a message as listed by the API.
type MessageView struct {
	UID          uint32          `json:"uid"`
	Flags        []string        `json:"flags"`
	InternalDate time.Time       `json:"internalDate"`
	Size         int64           `json:"size"`
	Context      vmstore.Context `json:"context,omitempty"`
	Duration     float64         `json:"duration,omitempty"`
	Urgent       bool            `json:"urgent,omitempty"`
	From         string          `json:"from,omitempty"`
	Subject      string          `json:"subject,omitempty"`
	ModSeq       uint64          `json:"modseq"`
}

func messageView(m *vmstore.Message) MessageView {
	fl := m.Flags
	if fl == nil {
		fl = []string{}
	}
	return MessageView{UID: m.UID, Flags: fl, InternalDate: m.InternalDate, Size: m.Size, Context: m.Context,
		Duration: m.Duration, Urgent: m.Urgent, From: m.From, Subject: m.Subject, ModSeq: m.ModSeq}
}

// MessageList is a mailbox listing.
type MessageList struct {
	Mailbox  MailboxView   `json:"mailbox"`
	Messages []MessageView `json:"messages"`
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	out, err := MessagesOf(s.Store, r.PathValue("user"), r.PathValue("mailbox"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// MessagesOf lists a mailbox.
func MessagesOf(st *vmstore.Store, user, mailbox string) (*MessageList, error) {
	mb, err := st.Mailbox(user, mailbox)
	if err != nil {
		return nil, err
	}
	msgs, err := st.Messages(mb.ID, 1, 0)
	if err != nil {
		return nil, err
	}
	out := &MessageList{Mailbox: mailboxView(mb), Messages: make([]MessageView, 0, len(msgs))}
	for i := range msgs {
		out.Messages = append(out.Messages, messageView(&msgs[i]))
	}
	return out, nil
}

// DepositView answers a deposit.
type DepositView struct {
	Mailbox     string      `json:"mailbox"`
	UIDValidity uint32      `json:"uidvalidity"`
	Message     MessageView `json:"message"`
}

func (s *Server) deposit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := DepositOptions{
		User:    r.PathValue("user"),
		Mailbox: q.Get("mailbox"),
		From:    q.Get("from"),
		To:      q.Get("to"),
		Subject: q.Get("subject"),
		Service: "http",
	}
	if v := q.Get("urgent"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "urgent must be true or false")
			return
		}
		o.Urgent = b
	}
	if v := q.Get("context"); v != "" {
		o.Context = vmstore.ParseContext(v)
		if o.Context == vmstore.ContextUnknown {
			writeProblem(w, http.StatusBadRequest, "unknown context "+strconv.Quote(v)+" (voice, fax, video, multimedia, text)")
			return
		}
	}
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	o.AsMessage = strings.HasPrefix(ct, "message/rfc822")
	o.Size = r.ContentLength
	body := r.Body
	if s.MaxDeposit > 0 {
		body = http.MaxBytesReader(w, r.Body, s.MaxDeposit)
	}
	res, err := Deposit(s.Store, s.Probe, body, o)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeProblem(w, http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, DepositViewOf(res))
}

// DepositViewOf shows a deposit's result.
func DepositViewOf(res *vmstore.DepositRes) *DepositView {
	return &DepositView{Mailbox: res.Mailbox.Name, UIDValidity: res.Mailbox.UIDValidity, Message: messageView(&res.Message)}
}

func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="lemonvox.backup"`)
	lsm, vlog := s.Store.DB().Size()
	w.Header().Set("X-Lemonvox-Estimated-Size", strconv.FormatInt(lsm+vlog, 10))
	if _, err := s.Store.Backup(w, nil); err != nil {
		s.Logger.Error("admin: backup", "err", err)
		// Headers are gone; abort the connection so the client sees a failure.
		panic(http.ErrAbortHandler)
	}
}
