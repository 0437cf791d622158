package channel

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// CHANNEL grants (IMAP notes s9.2): the bearer token in a playback URL
// (rtsps://host/<grant>, POST /whep/<grant>). A grant is sealed with
// AES-256-GCM under a key derived from a store secret, so it is both
// secret (the client learns nothing of what it names) and unforgeable;
// it names the account's identity, the mailbox and its UIDVALIDITY, the
// UID and section, and expires. Open refuses a grant whose account name
// now belongs to another identity (deleted and created again), whose
// mailbox was re-created, or whose message is gone.

// Grant errors (errors.Is).
var (
	// ErrGrantInvalid: not a grant of this store (malformed, tampered,
	// sealed under another key).
	ErrGrantInvalid = errors.New("channel: invalid grant")
	// ErrGrantExpired: the grant's time is over.
	ErrGrantExpired = errors.New("channel: grant expired")
	// ErrGrantRevoked: the account, mailbox or UIDVALIDITY the grant names
	// is no longer the same identity.
	ErrGrantRevoked = errors.New("channel: grant no longer valid for its account")
	// ErrGrantGone: the message or mailbox does not exist any more.
	ErrGrantGone = errors.New("channel: granted message is gone")
	// ErrGrantUsed: the grant was used as many times as allowed.
	ErrGrantUsed = errors.New("channel: grant used up")
)

// Grant is what a CHANNEL token allows: playing one section of one
// message.
type Grant struct {
	AccountID   uint64
	User        string
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	Section     string // part numbers, e.g. "2" or "1.2"; "" the whole message
	Expires     time.Time
	MaxUses     int  // sessions the grant may open; 0 is 1
	Seen        bool // set \Seen when playback starts (CHANNEL SEEN option)
	Resume      bool // start where the account's last playback stopped
	ID          [8]byte
}

// Grant limits.
const (
	grantVersion = 1
	// MaxGrantLife bounds Expires (IMAP notes s9.2: server max 3600 s).
	MaxGrantLife = time.Hour
	maxGrantText = 1024
)

// Grants issues and opens grants of one store.
type Grants struct {
	st   *vmstore.Store
	aead cipher.AEAD
	// Now is the clock (tests).
	Now func() time.Time

	mu   sync.Mutex
	uses map[[8]byte]grantUse
}

type grantUse struct {
	n       int
	expires time.Time
}

// NewGrants derives the grant key from the store's "channel-grant" secret.
func NewGrants(st *vmstore.Store) (*Grants, error) {
	secret, err := st.Secret("channel-grant")
	if err != nil {
		return nil, err
	}
	return newGrants(st, secret)
}

func newGrants(st *vmstore.Store, secret []byte) (*Grants, error) {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("lemonvox CHANNEL grant v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Grants{st: st, aead: aead, Now: time.Now, uses: map[[8]byte]grantUse{}}, nil
}

// Issue seals g into a token (URL-safe base64, no padding). The account
// ID must be the user's; an Expires beyond MaxGrantLife is clamped, a zero
// one is five minutes. A fresh random ID is set.
func (gs *Grants) Issue(g Grant) (string, *Grant, error) {
	now := gs.Now()
	if g.Expires.IsZero() {
		g.Expires = now.Add(5 * time.Minute)
	}
	if g.Expires.After(now.Add(MaxGrantLife)) {
		g.Expires = now.Add(MaxGrantLife)
	}
	if len(g.User)+len(g.Mailbox)+len(g.Section) > maxGrantText || g.UID == 0 || g.AccountID == 0 {
		return "", nil, fmt.Errorf("%w: grant fields", ErrGrantInvalid)
	}
	if g.MaxUses <= 0 {
		g.MaxUses = 1
	}
	if id, err := gs.st.AccountID(g.User); err != nil || id != g.AccountID {
		return "", nil, ErrGrantRevoked
	}
	if _, err := rand.Read(g.ID[:]); err != nil {
		return "", nil, err
	}
	p := make([]byte, 0, 64+len(g.User)+len(g.Mailbox)+len(g.Section))
	p = binary.BigEndian.AppendUint64(p, g.AccountID)
	p = binary.BigEndian.AppendUint32(p, g.UIDValidity)
	p = binary.BigEndian.AppendUint32(p, g.UID)
	p = binary.BigEndian.AppendUint64(p, uint64(g.Expires.Unix()))
	p = binary.BigEndian.AppendUint16(p, uint16(min(g.MaxUses, 0xffff)))
	var flags byte
	if g.Seen {
		flags |= 1
	}
	if g.Resume {
		flags |= 2
	}
	p = append(p, flags)
	p = append(p, g.ID[:]...)
	for _, s := range []string{g.User, g.Mailbox, g.Section} {
		p = binary.BigEndian.AppendUint16(p, uint16(len(s)))
		p = append(p, s...)
	}
	out := make([]byte, 1+gs.aead.NonceSize(), 1+gs.aead.NonceSize()+len(p)+gs.aead.Overhead())
	out[0] = grantVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return "", nil, err
	}
	out = gs.aead.Seal(out, out[1:1+gs.aead.NonceSize()], p, out[:1])
	g.Expires = time.Unix(g.Expires.Unix(), 0)
	return base64.RawURLEncoding.EncodeToString(out), &g, nil
}

// Unseal decrypts a token and checks its expiry, without looking at the
// store.
func (gs *Grants) Unseal(token string) (*Grant, error) {
	if len(token) > 4*maxGrantText {
		return nil, ErrGrantInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	ns := gs.aead.NonceSize()
	if err != nil || len(b) < 1+ns+gs.aead.Overhead() || b[0] != grantVersion {
		return nil, ErrGrantInvalid
	}
	p, err := gs.aead.Open(nil, b[1:1+ns], b[1+ns:], b[:1])
	if err != nil || len(p) < 35 {
		return nil, ErrGrantInvalid
	}
	g := &Grant{
		AccountID:   binary.BigEndian.Uint64(p),
		UIDValidity: binary.BigEndian.Uint32(p[8:]),
		UID:         binary.BigEndian.Uint32(p[12:]),
		Expires:     time.Unix(int64(binary.BigEndian.Uint64(p[16:])), 0),
		MaxUses:     int(binary.BigEndian.Uint16(p[24:])),
		Seen:        p[26]&1 != 0,
		Resume:      p[26]&2 != 0,
	}
	copy(g.ID[:], p[27:35])
	p = p[35:]
	for _, s := range []*string{&g.User, &g.Mailbox, &g.Section} {
		if len(p) < 2 || len(p) < 2+int(binary.BigEndian.Uint16(p)) {
			return nil, ErrGrantInvalid
		}
		n := int(binary.BigEndian.Uint16(p))
		*s, p = string(p[2:2+n]), p[2+n:]
	}
	if len(p) != 0 {
		return nil, ErrGrantInvalid
	}
	if !gs.Now().Before(g.Expires) {
		return nil, ErrGrantExpired
	}
	return g, nil
}

// Open unseals a token and checks it against the store: the account name
// still has the identity, the mailbox its UIDVALIDITY, and the message
// exists. It does not count a use (Use does).
func (gs *Grants) Open(token string) (*Grant, error) {
	g, err := gs.Unseal(token)
	if err != nil {
		return nil, err
	}
	id, err := gs.st.AccountID(g.User)
	if err != nil || id != g.AccountID {
		return nil, ErrGrantRevoked
	}
	mb, err := gs.st.Mailbox(g.User, g.Mailbox)
	if err != nil {
		return nil, ErrGrantGone
	}
	if mb.UIDValidity != g.UIDValidity {
		return nil, ErrGrantRevoked
	}
	if _, err := gs.st.Message(mb.ID, g.UID); err != nil {
		return nil, ErrGrantGone
	}
	return g, nil
}

// Use counts one session opened with g; ErrGrantUsed once MaxUses were.
// Counts are kept in memory until the grant expires.
func (gs *Grants) Use(g *Grant) error {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	now := gs.Now()
	if len(gs.uses) > 1024 {
		for k, u := range gs.uses {
			if !now.Before(u.expires) {
				delete(gs.uses, k)
			}
		}
	}
	u := gs.uses[g.ID]
	if u.n >= max(g.MaxUses, 1) {
		return ErrGrantUsed
	}
	gs.uses[g.ID] = grantUse{n: u.n + 1, expires: g.Expires}
	return nil
}

// HashToken names a token in logs (never log the token itself).
func HashToken(token string) string {
	s := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(s[:9])
}
