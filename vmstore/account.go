package vmstore

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/crypto/argon2"
)

// Quota limits an account; zero means unlimited.
type Quota struct {
	Bytes    int64 `json:"bytes,omitempty"`
	Messages int64 `json:"messages,omitempty"`
}

// Retention rules applied by the sweeper; zero disables a rule.
type Retention struct {
	// TrashDays: messages in Trash are removed this many days after they were
	// put there.
	TrashDays int `json:"trashDays,omitempty"`
	// HeardDays: read (\Seen) messages are removed this many days after they
	// were first read.
	HeardDays int `json:"heardDays,omitempty"`
	// MaxDays: any message older than this is removed.
	MaxDays int `json:"maxDays,omitempty"`
	// MaxDurationSec: deposits with a longer audio duration are refused.
	MaxDurationSec int `json:"maxDurationSec,omitempty"`
}

// MWITarget is a PBX or phone that gets unsolicited message-summary NOTIFYs.
type MWITarget struct {
	URI       string `json:"uri"`                 // sip:... address of the device or PBX
	Transport string `json:"transport,omitempty"` // udp, tcp, tls
}

// AccountOptions are per-account settings that later services read.
type AccountOptions struct {
	MWITargets      []MWITarget       `json:"mwiTargets,omitempty"`
	Retention       Retention         `json:"retention,omitempty"`
	Notify          map[string]string `json:"notify,omitempty"` // notification preferences
	Language        string            `json:"language,omitempty"`
	Email           string            `json:"email,omitempty"`
	DisplayName     string            `json:"displayName,omitempty"`
	TutorialDone    bool              `json:"tutorialDone,omitempty"`
	HoldWhileOnline bool              `json:"holdWhileOnline,omitempty"`
}

// Account is a subscriber. Secrets are only held as argon2id hashes.
type Account struct {
	// ID is the account's identity: handed out at creation from a
	// store-wide sequence and never reused, so that an account created
	// again under a deleted account's name is another account. Sessions,
	// subscriptions and keys bind to it, not to the name.
	ID           uint64         `json:"id,omitempty"`
	Name         string         `json:"name"`
	PasswordHash string         `json:"passwordHash"`
	PINHash      string         `json:"pinHash,omitempty"`
	Quota        Quota          `json:"quota"`
	Options      AccountOptions `json:"options"`
	Created      time.Time      `json:"created"`
	// OverQuota records that a QuotaExceed was sent and no QuotaWithin yet.
	OverQuota bool `json:"overQuota,omitempty"`
}

// AccountSpec describes a new account.
type AccountSpec struct {
	Name     string
	Password string
	PIN      string
	Quota    Quota
	Options  AccountOptions
}

// DefaultMailboxes are created with every account (RFC 6154 special use).
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{"INBOX", ""},
	{"Greetings", ""},
	{"Drafts", `\Drafts`},
	{"Sent", `\Sent`},
	{"Trash", `\Trash`},
}

// MaxUserNameLen is the longest account name, in octets.
const MaxUserNameLen = 64

// ValidUserName reports whether name is an account name that CreateAccount
// accepts (see CheckUserName and the package doc, "Account names").
func ValidUserName(name string) bool { return CheckUserName(name) == nil }

// FoldUserName returns the canonical (ASCII lower case) form of a name.
// CreateAccount folds the name it is given; lookups try the name as given
// first, then its folded form.
func FoldUserName(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// NameError tells why a name is not an account name; it is an ErrBadName.
type NameError struct {
	Name   string
	Reason string
}

func (e *NameError) Error() string { return fmt.Sprintf("%v %q: %s", ErrBadName, e.Name, e.Reason) }
func (e *NameError) Unwrap() error { return ErrBadName }

// CheckUserName returns nil when name (already folded) fits the account-name
// syntax, else a *NameError that says why. The syntax fits
// an IMAP URL user (RFC 5092 enc-user without escapes), the user part of a
// SIP URI (RFC 3261 user, unescaped) and a file name, and is the same
// through a URL path: 1 to 64 characters of a-z 0-9 . _ + -, starting with
// a letter or a digit, or with "+" and a digit (an E.164 number such as
// +15551234567), ending with a letter or a digit, and with no "..".
func CheckUserName(name string) error {
	bad := func(why string) error { return &NameError{Name: name, Reason: why} }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxUserNameLen:
		return bad(fmt.Sprintf("longer than %d characters", MaxUserNameLen))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '+', c == '-':
		case c >= 'A' && c <= 'Z':
			return bad("upper case (names are folded to lower case)")
		default:
			return bad("only a-z, 0-9 and . _ + - are allowed")
		}
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	switch {
	case name[0] == '+':
		if len(name) < 2 || name[1] < '0' || name[1] > '9' {
			return bad(`"+" must be followed by a digit`)
		}
	case !alnum(name[0]):
		return bad("must start with a letter, a digit or \"+\"")
	}
	if !alnum(name[len(name)-1]) {
		return bad("must end with a letter or a digit")
	}
	if strings.Contains(name, "..") {
		return bad(`must not contain ".."`)
	}
	return nil
}

// ValidPIN reports whether pin is a telephone PIN: 4 to 16 digits.
func ValidPIN(pin string) bool {
	if len(pin) < 4 || len(pin) > 16 {
		return false
	}
	for _, c := range pin {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CreateAccount creates an account and its default mailboxes.
func (s *Store) CreateAccount(spec AccountSpec) (*Account, error) {
	spec.Name = FoldUserName(spec.Name)
	if err := CheckUserName(spec.Name); err != nil {
		return nil, err
	}
	if spec.Password == "" || !utf8.ValidString(spec.Password) {
		return nil, fmt.Errorf("%w: empty or invalid password", ErrInvalid)
	}
	if spec.PIN != "" && !ValidPIN(spec.PIN) {
		return nil, fmt.Errorf("%w: PIN must be 4 to 16 digits", ErrInvalid)
	}
	if spec.Quota.Bytes < 0 || spec.Quota.Messages < 0 {
		return nil, fmt.Errorf("%w: negative quota", ErrInvalid)
	}
	acct := &Account{
		Name:         spec.Name,
		PasswordHash: s.opts.Hash.hash(spec.Password),
		Quota:        spec.Quota,
		Options:      spec.Options,
		Created:      s.now().UTC(),
	}
	if spec.PIN != "" {
		acct.PINHash = s.opts.Hash.hash(spec.PIN)
	}
	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	_, err := s.update(spec.Name, func(w *wtx) error {
		if ok, err := w.exists(accountKey(spec.Name)); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("%w: account %q", ErrExists, spec.Name)
		}
		id, err := w.nextAccountID()
		if err != nil {
			return err
		}
		acct.ID = id
		if err := w.put(accountKey(spec.Name), acct); err != nil {
			return err
		}
		w.emit(Event{Type: EventAccountCreate, User: spec.Name, AccountID: id})
		for _, d := range DefaultMailboxes {
			mb, err := w.createMailbox(spec.Name, d.Name, d.SpecialUse)
			if err != nil {
				return err
			}
			if err := w.set(subKey(spec.Name, mb.Name), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return acct, nil
}

// GetAccount returns an account. A name not found as given is looked up
// again in its folded form (FoldUserName), so "Alice" finds "alice" while
// accounts stored before names were folded are still found as they are.
func (s *Store) GetAccount(name string) (*Account, error) {
	a, err := s.getAccount(name)
	if errors.Is(err, ErrNotFound) {
		if f := FoldUserName(name); f != name {
			if fa, ferr := s.getAccount(f); ferr == nil {
				return fa, nil
			}
		}
	}
	return a, err
}

func (s *Store) getAccount(name string) (*Account, error) {
	var a Account
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, accountKey(name), &a) })
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w %q", ErrUnknownAccount, name)
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// ListAccounts returns every account, sorted by name.
func (s *Store) ListAccounts() ([]Account, error) {
	var out []Account
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kAccount), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var a Account
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &a) }); err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// DeleteAccount removes an account with all its mailboxes and messages.
func (s *Store) DeleteAccount(name string) error {
	err := s.deleteAccount(name)
	if errors.Is(err, badger.ErrTxnTooBig) {
		// Too many messages for one transaction: remove them in parts.
		if err := s.emptyMailboxes(name, ""); err != nil {
			return err
		}
		err = s.deleteAccount(name)
	}
	return err
}

func (s *Store) deleteAccount(name string) error {
	_, err := s.update(name, func(w *wtx) error {
		var a Account
		if err := w.get(accountKey(name), &a); err != nil {
			return fmt.Errorf("%w: account %q", err, name)
		}
		mbs, err := w.listMailboxes(name)
		if err != nil {
			return err
		}
		for _, mb := range mbs {
			if err := w.dropMailbox(&mb); err != nil {
				return err
			}
		}
		for _, p := range [][]byte{subPrefix(name), metaPrefix(name, 0)[:len(kMeta)+len(name)+1], urlauthPrefix(a.ID)} {
			if err := w.delPrefix(p); err != nil {
				return err
			}
		}
		if err := w.del(accountKey(name)); err != nil {
			return err
		}
		w.emit(Event{Type: EventAccountDelete, User: name, AccountID: a.ID})
		w.deletesAccount = true
		for i := range w.events { // the record is gone at commit
			if w.events[i].AccountID == 0 {
				w.events[i].AccountID = a.ID
			}
		}
		return nil
	})
	return err
}

// modifyAccount applies fn to the account record.
func (s *Store) modifyAccount(name string, fn func(w *wtx, a *Account) error) (*Account, error) {
	var out Account
	_, err := s.update(name, func(w *wtx) error {
		if err := w.get(accountKey(name), &out); err != nil {
			return fmt.Errorf("%w: account %q", err, name)
		}
		if err := fn(w, &out); err != nil {
			return err
		}
		return w.put(accountKey(name), &out)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// SetPassword replaces the account's password.
func (s *Store) SetPassword(name, password string) error {
	if password == "" || !utf8.ValidString(password) {
		return fmt.Errorf("%w: empty or invalid password", ErrInvalid)
	}
	h := s.opts.Hash.hash(password)
	_, err := s.modifyAccount(name, func(_ *wtx, a *Account) error { a.PasswordHash = h; return nil })
	return err
}

// SetPIN replaces the account's telephone PIN.
func (s *Store) SetPIN(name, pin string) error {
	if !ValidPIN(pin) {
		return fmt.Errorf("%w: PIN must be 4 to 16 digits", ErrInvalid)
	}
	h := s.opts.Hash.hash(pin)
	_, err := s.modifyAccount(name, func(_ *wtx, a *Account) error { a.PINHash = h; return nil })
	return err
}

// SetQuota changes the account's quota and records QuotaChange.
func (s *Store) SetQuota(name string, q Quota) error {
	if q.Bytes < 0 || q.Messages < 0 {
		return fmt.Errorf("%w: negative quota", ErrInvalid)
	}
	_, err := s.modifyAccount(name, func(w *wtx, a *Account) error {
		a.Quota = q
		w.emit(Event{Type: EventQuotaChange, User: name, QuotaBytes: q.Bytes, QuotaMessages: q.Messages})
		return nil
	})
	return err
}

// SetOptions replaces the account's options.
func (s *Store) SetOptions(name string, o AccountOptions) (*Account, error) {
	return s.modifyAccount(name, func(_ *wtx, a *Account) error { a.Options = o; return nil })
}

// CheckPassword verifies a password in constant time. It returns the account
// on success and ErrAuth (also for unknown accounts, after spending the same
// work) otherwise.
func (s *Store) CheckPassword(name, password string) (*Account, error) {
	a, err := s.GetAccount(name)
	if err != nil {
		s.auth.burn(s.opts.Hash, password) // same cost as a real check
		return nil, ErrAuth
	}
	if !s.auth.verify("pw", a.Name, password, a.PasswordHash, s.now()) {
		return nil, ErrAuth
	}
	return a, nil
}

// CheckPIN verifies the telephone PIN.
func (s *Store) CheckPIN(name, pin string) (*Account, error) {
	a, err := s.GetAccount(name)
	if err != nil || a.PINHash == "" {
		s.auth.burn(s.opts.Hash, pin)
		return nil, ErrAuth
	}
	if !s.auth.verify("pin", a.Name, pin, a.PINHash, s.now()) {
		return nil, ErrAuth
	}
	return a, nil
}

// RecordSession journals a Login or Logout (RFC 5423 s4.4) of a protocol
// session, so that notifiers can hold outband notifications meanwhile.
func (s *Store) RecordSession(user string, login bool, service, clientAddr, serverAddr string) error {
	t := EventLogout
	if login {
		t = EventLogin
	}
	_, err := s.update(user, func(w *wtx) error {
		if ok, err := w.exists(accountKey(user)); err != nil || !ok {
			return fmt.Errorf("%w %q", ErrUnknownAccount, user)
		}
		w.emit(Event{Type: t, User: user, Service: service, ClientAddr: clientAddr, ServerAddr: serverAddr})
		return nil
	})
	return err
}

// HashParams are argon2id cost parameters (RFC 9106).
type HashParams struct {
	Time    uint32
	MemKiB  uint32
	Threads uint8
}

func (p HashParams) withDefaults() HashParams {
	if p.Time == 0 {
		p.Time = 2
	}
	if p.MemKiB == 0 {
		p.MemKiB = 19 * 1024
	}
	if p.Threads == 0 {
		p.Threads = 1
	}
	return p
}

// hash returns a PHC-format argon2id string.
func (p HashParams) hash(secret string) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	key := argon2.IDKey([]byte(secret), salt, p.Time, p.MemKiB, p.Threads, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

func verifyHash(encoded, secret string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || t == 0 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(secret), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
