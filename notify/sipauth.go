package notify

// SIP digest authentication of subscribers (RFC 3261 s22 with RFC 2617
// qop=auth). Kept apart from the MWI logic: it belongs to the SIP endpoint.
//
//   - Nonces are issued by us: 8 octets of issue time, 4 of a counter, and
//     an HMAC-SHA256 tag (16 octets) under a per-process key. A nonce we
//     did not sign gets a fresh challenge; an expired one gets stale=true.
//   - Every issued nonce is tracked with the highest nonce count (nc) seen
//     with it: nc must increase, so a captured Authorization header cannot
//     be replayed. The table is bounded (oldest nonces go first; their
//     users get stale=true and retry with a fresh one).
//   - qop=auth is required (RFC 2069 responses without qop are refused),
//     and the digest uri must be the Request-URI.
//   - Wrong responses go through the shared authentication limiter
//     (authlimit): an offending source is slowed, the account never locked.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/vmstore"
)

// Defaults of the digest settings.
const (
	DefaultNonceLifetime = 5 * time.Minute
	DefaultMaxNonces     = 65536
)

const nonceLen = 8 + 4 + 16

// nonceTable tracks issued nonces and the last nc used with each.
type nonceTable struct {
	key      []byte
	lifetime time.Duration
	max      int

	mu    sync.Mutex
	seq   uint32
	nc    map[string]int // nonce -> highest nc accepted (0: none yet)
	order []string       // issue order (FIFO), for expiry and the bound
	head  int
}

func newNonceTable(key []byte, lifetime time.Duration, max int) *nonceTable {
	return &nonceTable{key: key, lifetime: lifetime, max: max, nc: map[string]int{}}
}

func (t *nonceTable) sign(b []byte) []byte {
	mac := hmac.New(sha256.New, t.key)
	mac.Write(b[:12])
	return mac.Sum(nil)[:16]
}

// issue returns a fresh nonce and tracks it.
func (t *nonceTable) issue(now time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(now)
	for len(t.nc) >= t.max {
		t.dropOldest()
	}
	t.seq++
	b := make([]byte, 12, nonceLen)
	binary.BigEndian.PutUint64(b, uint64(now.UnixNano()))
	binary.BigEndian.PutUint32(b[8:], t.seq)
	b = append(b, t.sign(b)...)
	n := base64.RawURLEncoding.EncodeToString(b)
	t.nc[n] = 0
	t.order = append(t.order, n)
	return n
}

func (t *nonceTable) dropOldest() {
	if t.head >= len(t.order) {
		return
	}
	delete(t.nc, t.order[t.head])
	t.order[t.head] = ""
	t.head++
	if t.head > 1024 && t.head*2 > len(t.order) {
		t.order = append([]string(nil), t.order[t.head:]...)
		t.head = 0
	}
}

// expire drops nonces past their lifetime (they are in issue order).
func (t *nonceTable) expire(now time.Time) {
	for t.head < len(t.order) {
		b, _ := base64.RawURLEncoding.DecodeString(t.order[t.head])
		if now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(b)))) < t.lifetime {
			return
		}
		t.dropOldest()
	}
}

type nonceStatus int

const (
	nonceForged nonceStatus = iota // not ours
	nonceStale                     // ours, but expired or forgotten
	nonceFresh                     // ours and tracked
)

// check classifies a nonce without using it.
func (t *nonceTable) check(n string, now time.Time) nonceStatus {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != nonceLen || !hmac.Equal(t.sign(b), b[12:]) {
		return nonceForged
	}
	age := now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(b))))
	if age < -time.Minute || age >= t.lifetime {
		return nonceStale
	}
	t.mu.Lock()
	_, ok := t.nc[n]
	t.mu.Unlock()
	if !ok {
		return nonceStale
	}
	return nonceFresh
}

// use records nc for the nonce; false when it does not increase (replay)
// or the nonce is gone.
func (t *nonceTable) use(n string, nc int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	last, ok := t.nc[n]
	if !ok || nc <= last {
		return false
	}
	t.nc[n] = nc
	return true
}

// authorize admits trusted sources, or a digest-authenticated subscriber
// watching its own account (see the package doc). It answers the request
// itself when it returns false (400, 401, 403 or 503).
func (m *MWIServer) authorize(req *sip.Request, tx sip.ServerTransaction, acct *vmstore.Account) bool {
	if m.trusted(req.Source()) {
		return true
	}
	h := req.GetHeader("Authorization")
	if h == nil {
		m.challenge(req, tx, false)
		return false
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		m.respond(req, tx, 400, "Bad Authorization")
		return false
	}
	if cred.Username != acct.Name {
		m.respond(req, tx, 403, "Forbidden")
		return false
	}
	ha1 := strings.ToLower(acct.Options.Notify["sip_ha1"])
	if ha1 == "" || cred.Realm != m.Realm {
		m.respond(req, tx, 403, "Forbidden")
		return false
	}
	if cred.Algorithm != "" && !strings.EqualFold(cred.Algorithm, "MD5") {
		m.respond(req, tx, 403, "Forbidden (algorithm MD5 only)")
		return false
	}
	// RFC 2617 s3.2.2: we offered qop="auth"; RFC 2069 responses without
	// qop carry no nonce count and cannot be protected from replay.
	if !strings.EqualFold(cred.QOP, "auth") || cred.Cnonce == "" || cred.Nc <= 0 {
		m.respond(req, tx, 403, "Forbidden (qop=auth required)")
		return false
	}
	// RFC 2617 s3.2.2.5: the digest uri must be the Request-URI.
	if !digestURIMatches(cred.URI, req.Recipient) {
		m.respond(req, tx, 400, "Bad Request (digest uri differs from Request-URI)")
		return false
	}
	now := time.Now()
	switch m.nonces.check(cred.Nonce, now) {
	case nonceForged:
		m.challenge(req, tx, false)
		return false
	case nonceStale:
		m.challenge(req, tx, true)
		return false
	}
	att, err := m.authLimiter().Begin(m.ctx, "sip", authlimit.AddrOf(req.Source()), acct.Name)
	if err != nil {
		if errors.Is(err, authlimit.ErrThrottled) {
			m.respond(req, tx, 503, "Service Unavailable (too many failed authentications)", sip.NewHeader("Retry-After", "30"))
		}
		return false
	}
	// RFC 2617 s3.2.2.1 (RFC 3261 s22.4).
	ha2 := md5hex(string(req.Method) + ":" + cred.URI)
	want := md5hex(fmt.Sprintf("%s:%s:%08x:%s:%s:%s", ha1, cred.Nonce, cred.Nc, cred.Cnonce, cred.QOP, ha2))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(cred.Response))) {
		att.Failed()
		m.respond(req, tx, 403, "Forbidden")
		return false
	}
	if !m.nonces.use(cred.Nonce, cred.Nc) {
		// A replayed (or reordered) nonce count: the credentials were
		// right once; ask again with a fresh nonce.
		att.Succeeded()
		metricSIPReplays.Inc()
		m.challenge(req, tx, false)
		return false
	}
	att.Succeeded()
	return true
}

// digestURIMatches compares the digest uri with the Request-URI as URIs
// (RFC 3261 s19.1.4: scheme and host case-insensitive, user exact).
func digestURIMatches(s string, ruri sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		return false
	}
	port := func(p int, scheme string) int {
		if p != 0 {
			return p
		}
		if strings.EqualFold(scheme, "sips") {
			return 5061
		}
		return 5060
	}
	return strings.EqualFold(u.Scheme, ruri.Scheme) && u.User == ruri.User &&
		strings.EqualFold(u.Host, ruri.Host) && port(u.Port, u.Scheme) == port(ruri.Port, ruri.Scheme)
}

func (m *MWIServer) challenge(req *sip.Request, tx sip.ServerTransaction, stale bool) {
	v := fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=MD5, qop="auth"`, m.Realm, m.nonces.issue(time.Now()))
	if stale {
		v += ", stale=true"
	}
	m.respond(req, tx, 401, "Unauthorized", sip.NewHeader("WWW-Authenticate", v))
}

func (m *MWIServer) authLimiter() *authlimit.Limiter {
	if m.AuthLimiter == nil {
		return m.ownLimiter
	}
	return m.AuthLimiter
}

func (m *MWIServer) trusted(src string) bool {
	return m.trustedAddr(authlimit.AddrOf(src))
}

// trustedAddr tells whether an address is in TrustedNetworks.
func (m *MWIServer) trustedAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range m.TrustedNetworks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// SIPHA1 computes the digest credential to store as
// Account.Options.Notify["sip_ha1"]: hex MD5(user:realm:secret) (RFC 2617
// s3.2.2.2). The secret itself is not stored.
func SIPHA1(user, realm, secret string) string { return md5hex(user + ":" + realm + ":" + secret) }
