package sipep

// SIP digest authentication (RFC 3261 s22 with RFC 2617 qop=auth) of the
// requests a service wants authenticated.
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
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/lemonvox/lemonvox/authlimit"
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

// Authenticate admits a trusted source, or a request carrying digest
// credentials of user (RFC 2617 qop=auth) that match ha1, the hex
// MD5(user:realm:secret) of HA1 (empty: the user has no SIP credentials).
// When it returns false it has answered the request (400, 401, 403 or
// 503).
func (e *Endpoint) Authenticate(req *sip.Request, tx sip.ServerTransaction, user, ha1 string) bool {
	if e.Trusted(req.Source()) {
		return true
	}
	h := req.GetHeader("Authorization")
	if h == nil {
		e.challenge(req, tx, false)
		return false
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		e.Respond(req, tx, 400, "Bad Authorization")
		return false
	}
	if cred.Username != user {
		e.Respond(req, tx, 403, "Forbidden")
		return false
	}
	ha1 = strings.ToLower(ha1)
	if ha1 == "" || cred.Realm != e.Realm {
		e.Respond(req, tx, 403, "Forbidden")
		return false
	}
	if cred.Algorithm != "" && !strings.EqualFold(cred.Algorithm, "MD5") {
		e.Respond(req, tx, 403, "Forbidden (algorithm MD5 only)")
		return false
	}
	// RFC 2617 s3.2.2: we offered qop="auth"; RFC 2069 responses without
	// qop carry no nonce count and cannot be protected from replay.
	if !strings.EqualFold(cred.QOP, "auth") || cred.Cnonce == "" || cred.Nc <= 0 {
		e.Respond(req, tx, 403, "Forbidden (qop=auth required)")
		return false
	}
	// RFC 2617 s3.2.2.5: the digest uri must be the Request-URI.
	if !digestURIMatches(cred.URI, req.Recipient) {
		e.Respond(req, tx, 400, "Bad Request (digest uri differs from Request-URI)")
		return false
	}
	now := time.Now()
	switch e.nonces.check(cred.Nonce, now) {
	case nonceForged:
		e.challenge(req, tx, false)
		return false
	case nonceStale:
		e.challenge(req, tx, true)
		return false
	}
	att, err := e.authLimiter().Begin(e.ctx, "sip", authlimit.AddrOf(req.Source()), user)
	if err != nil {
		if errors.Is(err, authlimit.ErrThrottled) {
			e.Respond(req, tx, 503, "Service Unavailable (too many failed authentications)", sip.NewHeader("Retry-After", "30"))
		}
		return false
	}
	// RFC 2617 s3.2.2.1 (RFC 3261 s22.4).
	ha2 := md5hex(string(req.Method) + ":" + cred.URI)
	want := md5hex(fmt.Sprintf("%s:%s:%08x:%s:%s:%s", ha1, cred.Nonce, cred.Nc, cred.Cnonce, cred.QOP, ha2))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(cred.Response))) {
		att.Failed()
		e.Respond(req, tx, 403, "Forbidden")
		return false
	}
	if !e.nonces.use(cred.Nonce, cred.Nc) {
		// A replayed (or reordered) nonce count: the credentials were
		// right once; ask again with a fresh nonce.
		att.Succeeded()
		metricDigestReplays.Inc()
		e.challenge(req, tx, false)
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

func (e *Endpoint) challenge(req *sip.Request, tx sip.ServerTransaction, stale bool) {
	v := fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=MD5, qop="auth"`, e.Realm, e.nonces.issue(time.Now()))
	if stale {
		v += ", stale=true"
	}
	e.Respond(req, tx, 401, "Unauthorized", sip.NewHeader("WWW-Authenticate", v))
}

func (e *Endpoint) authLimiter() *authlimit.Limiter {
	if e.AuthLimiter == nil {
		return e.ownLim
	}
	return e.AuthLimiter
}

// HA1 computes the digest credential a service stores for a user: hex
// MD5(user:realm:secret) (RFC 2617 s3.2.2.2). The secret itself is not
// stored.
func HA1(user, realm, secret string) string { return md5hex(user + ":" + realm + ":" + secret) }
