package vmstore

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"runtime"
	"sync"
	"time"
)

// Password checks cost an argon2id computation (19 MiB, tens of
// milliseconds). Two guards keep a login storm from exhausting the
// appliance: at most GOMAXPROCS hashes run at once, and a successful check
// is remembered for a few minutes as an HMAC under a per-process key (never
// the password), so clients that reconnect (IDLE re-logins, handsets
// polling) do not pay again. The entry is bound to the stored hash: a
// password change invalidates it.
const authCacheTTL = 5 * time.Minute

type authCache struct {
	sem     chan struct{}
	key     [32]byte
	mu      sync.Mutex
	entries map[string]authEntry
}

type authEntry struct {
	mac     []byte
	hash    string // the stored hash it was verified against
	expires time.Time
}

func newAuthCache() *authCache {
	c := &authCache{sem: make(chan struct{}, runtime.GOMAXPROCS(0)), entries: map[string]authEntry{}}
	_, _ = rand.Read(c.key[:])
	return c
}

func (c *authCache) mac(user, secret, storedHash string) []byte {
	m := hmac.New(sha256.New, c.key[:])
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(storedHash))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// verify checks secret against storedHash, from the cache when it can.
func (c *authCache) verify(kind, user, secret, storedHash string, now time.Time) bool {
	k := kind + "\x00" + user
	mac := c.mac(user, secret, storedHash)
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if ok && e.hash == storedHash && now.Before(e.expires) && hmac.Equal(e.mac, mac) {
		return true
	}
	c.sem <- struct{}{}
	good := verifyHash(storedHash, secret)
	<-c.sem
	if good {
		c.mu.Lock()
		if len(c.entries) > 100000 {
			for x, old := range c.entries {
				if now.After(old.expires) {
					delete(c.entries, x)
				}
			}
		}
		c.entries[k] = authEntry{mac: mac, hash: storedHash, expires: now.Add(authCacheTTL)}
		c.mu.Unlock()
	}
	return good
}

// burn spends the cost of a check (unknown accounts), under the same limit.
func (c *authCache) burn(p HashParams, secret string) {
	c.sem <- struct{}{}
	p.hash(secret)
	<-c.sem
}
