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
//
// A grant is also bound to the mailbox's URLAUTH access key (RFC 4467
// s3): it carries a MAC of its ID under that key (made on the first grant
// when the mailbox has none), and Open recomputes it with the key the
// mailbox has now. RESETKEY of the mailbox, or of all the account's
// mailboxes, removes the key, so every CHANNEL URL handed out before it
// stops working, as the URLAUTH URLs do (IMAP notes s9.2: "RESETKEY on
// the mailbox revokes CHANNEL URLs too").

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

	bind []byte // MAC of ID under the mailbox access key (Issue, Unseal)
}

// Grant limits.
const (
	// grantVersion 2 carries the access-key binding; version 1 grants
	// (at most MaxGrantLife old) are no longer accepted.
	grantVersion  = 2
	grantBindSize = 16
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
	// Limiter, when set, counts invalid tokens given to OpenFrom.
	Limiter FailureLimiter
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
	return &Grants{st: st, aead: aead, Now: time.Now}, nil
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
	key, _, _, err := gs.st.URLAuthKey(g.User, g.AccountID, g.Mailbox)
	switch {
	case errors.Is(err, vmstore.ErrUnknownAccount):
		return "", nil, ErrGrantRevoked
	case errors.Is(err, vmstore.ErrNotFound):
		return "", nil, ErrGrantGone
	case err != nil:
		return "", nil, err
	}
	bind := grantBind(key, g.ID)
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
	p = append(p, bind...)
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
	if err != nil || len(p) < 35+grantBindSize {
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
	g.bind = append([]byte(nil), p[35:35+grantBindSize]...)
	p = p[35+grantBindSize:]
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
	// The mailbox's access key must still be the one the grant was
	// issued under (RESETKEY removes it). The MAC is computed whether or
	// not a key was found.
	t, found, err := gs.st.URLAuthLookup(g.User, g.Mailbox)
	if err != nil {
		return nil, err
	}
	if ok := hmac.Equal(grantBind(t.Key, g.ID), g.bind); !ok || !found || t.AccountID != g.AccountID || t.MailboxID != mb.ID {
		return nil, ErrGrantRevoked
	}
	return g, nil
}

// grantBind is the MAC that ties a grant to the mailbox access key it was
// issued under; a nil key (none found) gives a MAC no grant carries.
func grantBind(key []byte, id [8]byte) []byte {
	if key == nil {
		key = make([]byte, vmstore.URLAuthKeySize)
		id[0] ^= 0xff
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("lemonvox CHANNEL grant binding"))
	m.Write(id[:])
	return m.Sum(nil)[:grantBindSize]
}

// Use counts one session opened with g; ErrGrantUsed once MaxUses were.
// The counts are the store's (vmstore.UseGrant), durable before Use
// returns and kept until the grant expires, so a restart does not give a
// used-up grant (MAXUSES, default one session) its uses back.
func (gs *Grants) Use(g *Grant) error {
	err := gs.st.UseGrant(g.ID[:], g.Expires, g.MaxUses)
	if errors.Is(err, vmstore.ErrGrantUsedUp) {
		return ErrGrantUsed
	}
	return err
}

// HashToken names a token in logs (never log the token itself).
func HashToken(token string) string {
	s := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(s[:9])
}
