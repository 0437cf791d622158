package notify

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore"
)

const testSecret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func TestStandardWebhooksVector(t *testing.T) {
	key, err := DecodeSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"mailbox.MessageNew","timestamp":"2026-01-01T00:00:00Z","data":{"event":"MessageNew","uidnext":43}}`)
	got := Sign(key, "evt_01J0000000000000000000042", 1767225600, body)
	if want := "v1,YM+qULSk6QYhDrHQrjV/5CWelPl51TmWPxZ5/bs1Kfw="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	h := http.Header{}
	h.Set(HeaderWebhookID, "evt_01J0000000000000000000042")
	h.Set(HeaderWebhookTimestamp, "1767225600")
	h.Set(HeaderWebhookSignature, "v1,bm90IGl0 "+got)
	now := time.Unix(1767225600, 0)
	if err := Verify([][]byte{key}, h, body, now.Add(time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	if err := Verify([][]byte{key}, h, body, now.Add(10*time.Minute), 0); !errors.Is(err, ErrSignatureTimestamp) {
		t.Fatal(err)
	}
	if err := Verify([][]byte{key}, h, append(body, ' '), now, 0); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatal(err)
	}
	if err := Verify([][]byte{key}, http.Header{}, body, now, 0); !errors.Is(err, ErrSignatureMissing) {
		t.Fatal(err)
	}
	// Rotation: two keys sign, either verifies.
	k2 := []byte("another key")
	sh := SignatureHeader([][]byte{key, k2}, "x", 5, body)
	if len(strings.Fields(sh)) != 2 {
		t.Fatal(sh)
	}
	h.Set(HeaderWebhookID, "x")
	h.Set(HeaderWebhookTimestamp, "5")
	h.Set(HeaderWebhookSignature, sh)
	if err := Verify([][]byte{k2}, h, body, time.Unix(5, 0), 0); err != nil {
		t.Fatal(err)
	}
}

func TestUIDSetAndIMAPURL(t *testing.T) {
	for _, c := range []struct {
		in   []uint32
		want string
	}{{nil, ""}, {[]uint32{42}, "42"}, {[]uint32{9, 3, 4, 5, 6, 7}, "3:7,9"}, {[]uint32{1, 1, 2, 4}, "1:2,4"}} {
		if got := uidSet(c.in); got != c.want {
			t.Errorf("uidSet(%v) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := imapURL("alice", "vm.example.net", "INBOX", 1767000000, 42); got != "imap://alice@vm.example.net/INBOX;UIDVALIDITY=1767000000/;UID=42" {
		t.Error(got)
	}
	if got := imapURL("+1555@example.net", "vm", "Old Messages/2026", 7, 0); got != "imap://+1555%40example.net@vm/Old%20Messages/2026;UIDVALIDITY=7" {
		t.Error(got)
	}
	// A UTF-8 mailbox name is percent-encoded UTF-8 (RFC 5092 s8), a
	// server with a port keeps it, and a name that would read as
	// dot-segments is encoded; each URL parses back to the same fields.
	for _, c := range []struct {
		user, server, mailbox string
		uidv, uid             uint32
		want                  string
	}{
		{"bob", "vm.example.net:1143", "Entwürfe", 9, 3, "imap://bob@vm.example.net:1143/Entw%C3%BCrfe;UIDVALIDITY=9/;UID=3"},
		{"bob", "vm", "../x", 9, 0, "imap://bob@vm/%2E%2E/x;UIDVALIDITY=9"},
	} {
		got := imapURL(c.user, c.server, c.mailbox, c.uidv, c.uid)
		if got != c.want {
			t.Errorf("imapURL = %q, want %q", got, c.want)
		}
		u, err := channel.Parse(got)
		if err != nil || u.User != c.user || u.Mailbox != c.mailbox || u.UIDValidity != c.uidv || u.UID != c.uid {
			t.Errorf("Parse(%q) = %+v, %v", got, u, err)
		}
	}
}

func TestPayloadMessageNew(t *testing.T) {
	p := PayloadBuilder{ServerName: "vm.example.net"}
	ev := &vmstore.Event{Seq: 88213, Type: vmstore.EventMessageNew, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		User: "alice", Mailbox: "INBOX", UIDValidity: 1767000000, UIDs: []uint32{42}, UIDNext: 43, ModSeq: 9107,
		Messages: 7, Unseen: 2, Size: 48213, Service: "lmtp", Context: vmstore.ContextVoice, Duration: 26.6,
		MWI: &vmstore.MWI{Counts: map[vmstore.Context]vmstore.MWICount{vmstore.ContextVoice: {New: 2, Old: 5}}}}
	b, err := p.Build(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"type":"mailbox.MessageNew","timestamp":"2026-01-01T00:00:00Z","data":{"event":"MessageNew","uri":"imap://alice@vm.example.net/INBOX;UIDVALIDITY=1767000000/;UID=42"`) {
		t.Fatal(string(b))
	}
	var m struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"mailboxID": "imap://alice@vm.example.net/INBOX;UIDVALIDITY=1767000000", "uidset": "42",
		"uidnext": 43.0, "modseq": 9107.0, "messages": 7.0, "messageSize": 48213.0, "service": "lmtp",
		"vnd.lemonvox.context": "voice-message", "vnd.lemonvox.duration": 27.0, "vnd.lemonvox.unseen": 2.0,
		"vnd.lemonvox.journalSeq": 88213.0, "vnd.lemonvox.newVoice": 2.0, "vnd.lemonvox.oldVoice": 5.0}
	for k, v := range want {
		if m.Data[k] != v {
			t.Errorf("%s = %v, want %v", k, m.Data[k], v)
		}
	}
	if _, ok := m.Data["vnd.lemonvox.url"]; ok {
		t.Error("url without URLFor")
	}
	p.URLFor = func(ev *vmstore.Event) string { return "imap://x;URLAUTH=anonymous:internal:abc" }
	b2, _ := p.Build(ev)
	if !strings.Contains(string(b2), `"vnd.lemonvox.url":"imap://x;URLAUTH=anonymous:internal:abc"`) {
		t.Fatal(string(b2))
	}
	b3, _ := p.Build(ev)
	if string(b3) != string(b2) {
		t.Fatal("payload not deterministic")
	}
	fl, _ := p.Build(&vmstore.Event{Type: vmstore.EventFlagsSet, User: "alice", Mailbox: "INBOX", UIDs: []uint32{3, 4}, Flags: []string{`\Flagged`, "$Urgent"}})
	if !strings.Contains(string(fl), `"uri":"imap://alice@vm.example.net/INBOX"`) || !strings.Contains(string(fl), `"flagNames":"\\Flagged $Urgent"`) || !strings.Contains(string(fl), `"uidset":"3:4"`) {
		t.Fatal(string(fl))
	}
	lo, _ := p.Build(&vmstore.Event{Type: vmstore.EventLogin, User: "alice", Service: "imap", ClientAddr: "192.0.2.7:50123", ServerAddr: "vm.example.net:993"})
	if !strings.Contains(string(lo), `"user":"alice","clientIP":"192.0.2.7","clientPort":50123,"serverDomain":"vm.example.net","serverPort":993`) {
		t.Fatal(string(lo))
	}
}

// receiver is a webhook endpoint that verifies signatures.
type receiver struct {
	t      testing.TB
	keys   [][]byte
	mu     sync.Mutex
	status func(n int) int // response status of the n-th request (from 1)
	n      int
	bodies []received
}

type received struct {
	ID, TS string
	Body   []byte
	Seq    uint64
	User   string
	Type   string
	UID    string
	ModSeq uint64
	At     time.Time
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := Verify(rc.keys, r.Header, body, time.Now(), 0); err != nil {
		rc.t.Errorf("signature: %v", err)
		w.WriteHeader(400)
		return
	}
	var m struct {
		Type string `json:"type"`
		Data struct {
			Seq    uint64 `json:"vnd.lemonvox.journalSeq"`
			User   string `json:"vnd.lemonvox.user"`
			UIDSet string `json:"uidset"`
			ModSeq uint64 `json:"modseq"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		rc.t.Errorf("json: %v", err)
	}
	rc.mu.Lock()
	rc.n++
	n := rc.n
	code := 204
	if rc.status != nil {
		code = rc.status(n)
	}
	if code/100 == 2 {
		rc.bodies = append(rc.bodies, received{ID: r.Header.Get(HeaderWebhookID), TS: r.Header.Get(HeaderWebhookTimestamp),
			Body: body, Seq: m.Data.Seq, User: m.Data.User, Type: m.Type, UID: m.Data.UIDSet, ModSeq: m.Data.ModSeq, At: time.Now()})
	}
	rc.mu.Unlock()
	if code/100 == 3 {
		w.Header().Set("Location", "https://example.net/")
	}
	w.WriteHeader(code)
}

func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.bodies...)
}

func newTLSReceiver(t testing.TB) (*receiver, *httptest.Server, *x509.CertPool) {
	key, _ := DecodeSecret(testSecret)
	rc := &receiver{t: t, keys: [][]byte{key}}
	srv := httptest.NewTLSServer(rc)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return rc, srv, pool
}

func newWebhook(t testing.TB, id, url string, pool *x509.CertPool) *WebhookSink {
	w := &WebhookSink{ID: id, URL: url, Secrets: []string{testSecret}, Payload: PayloadBuilder{ServerName: "vm.example.net"},
		AllowPrivate: true, Timeout: 2 * time.Second}
	if pool != nil {
		w.TLSConfig = tlsWithRoots(pool)
	}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWebhookDeliveryTLSAndFilters(t *testing.T) {
	rc, srv, pool := newTLSReceiver(t)
	s := openStore(t, "")
	mustAccount(t, s, "alice", vmstore.AccountOptions{})
	mustAccount(t, s, "bob", vmstore.AccountOptions{})
	w := newWebhook(t, "hook1", srv.URL, pool)
	w.Events = []vmstore.EventType{vmstore.EventMessageNew, vmstore.EventMessageRead}
	w.Accounts = []string{"alice"}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	startDispatcher(t, s, t.TempDir(), w)
	res := deposit(t, s, "alice")
	deposit(t, s, "bob")
	if _, err := s.StoreFlags(vmstore.StoreReq{User: "alice", MailboxID: res.Mailbox.ID, UIDs: []uint32{1}, Op: vmstore.FlagsAdd, Flags: []string{vmstore.FlagSeen}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "2 webhooks", func() bool { return len(rc.got()) == 2 })
	waitSettled(t, s, w.Name())
	got := rc.got()
	if len(got) != 2 || got[0].Type != "mailbox.MessageNew" || got[1].Type != "mailbox.MessageRead" || got[0].User != "alice" {
		t.Fatalf("got %+v", got)
	}
	if got[0].ID != w.MessageID(&vmstore.Event{Seq: got[0].Seq}) {
		t.Fatalf("id %s", got[0].ID)
	}
}

func TestWebhookRetryKeepsIDAndResigns(t *testing.T) {
	rc, srv, pool := newTLSReceiver(t)
	var ids []string
	var mu sync.Mutex
	rc.status = func(n int) int {
		if n <= 2 {
			return 503
		}
		return 200
	}
	s := openStore(t, "")
	mustAccount(t, s, "alice", vmstore.AccountOptions{})
	w := newWebhook(t, "hook1", srv.URL, pool)
	w.Events = []vmstore.EventType{vmstore.EventMessageNew}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	inner := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get(HeaderWebhookID))
		mu.Unlock()
		inner.ServeHTTP(rw, r)
	})
	startDispatcher(t, s, t.TempDir(), w)
	deposit(t, s, "alice")
	waitFor(t, 5*time.Second, "delivery", func() bool { return len(rc.got()) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 3 || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("ids %v", ids)
	}
}

func TestWebhookFailures(t *testing.T) {
	rc, srv, pool := newTLSReceiver(t)
	s := openStore(t, "")
	mustAccount(t, s, "alice", vmstore.AccountOptions{})
	ctx := t.Context()
	ev := &vmstore.Event{Seq: 1, Type: vmstore.EventMessageNew, User: "alice", Mailbox: "INBOX"}

	w := newWebhook(t, "h", srv.URL, pool)
	rc.status = func(int) int { return 302 }
	if err := w.Deliver(ctx, ev, 1); !errors.Is(err, ErrDelivery) {
		t.Fatalf("3xx: %v", err)
	}
	rc.status = func(int) int { return 410 }
	if err := w.Deliver(ctx, ev, 1); !errors.Is(err, ErrSinkDisabled) {
		t.Fatalf("410: %v", err)
	}
	rc.status = func(int) int { return 429 }
	srv.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Retry-After", "7")
		rw.WriteHeader(429)
	})
	var ra *RetryAfterError
	if err := w.Deliver(ctx, ev, 1); !errors.As(err, &ra) || ra.After != 7*time.Second {
		t.Fatalf("429: %v", err)
	}
	// Timeout.
	srv.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	})
	w.Timeout = 100 * time.Millisecond
	w.Initialize()
	if err := w.Deliver(ctx, ev, 1); !errors.Is(err, ErrDelivery) {
		t.Fatalf("timeout: %v", err)
	}
	// Certificates are checked: no CA, no delivery.
	w2 := newWebhook(t, "h2", srv.URL, nil)
	if err := w2.Deliver(ctx, ev, 1); !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted cert: %v", err)
	}
	// SSRF guard: loopback refused unless allowed.
	w3 := &WebhookSink{ID: "h3", URL: srv.URL, Secrets: []string{testSecret}, Payload: PayloadBuilder{ServerName: "x"}, TLSConfig: tlsWithRoots(pool)}
	if err := w3.Initialize(); err != nil {
		t.Fatal(err)
	}
	var perm *PermanentError
	if err := w3.Deliver(ctx, ev, 1); !errors.Is(err, ErrForbiddenAddress) || !errors.As(err, &perm) {
		t.Fatalf("loopback: %v", err)
	}
	// http:// refused without AllowInsecure.
	if err := (&WebhookSink{ID: "h4", URL: "http://example.net/", Secrets: []string{testSecret}, Payload: PayloadBuilder{ServerName: "x"}}).Initialize(); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
}
