package channel

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// kaKey is 00 01 02 ... 1f; kaRump is the GENURLAUTH argument of RFC 4467.
var (
	kaKey = func() []byte {
		k := make([]byte, 32)
		for i := range k {
			k[i] = byte(i)
		}
		return k
	}()
	kaRump = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred"
)

// kaMAC is HMAC-SHA-256(kaKey, kaRump), computed outside Go with
//
//	printf '%s' 'imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred' |
//	  openssl dgst -sha256 -mac HMAC -macopt hexkey:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
//
// and the same with Python's hmac.new(bytes(range(32)), rump, hashlib.sha256).
const kaMAC = "0cb7a969612e90de95f649a8f4a62f6e2132ccf63bd73ad1b9384eb28746df27"

func TestSignKnownAnswer(t *testing.T) {
	got := Sign(kaKey, kaRump)
	if want := "02" + kaMAC; got != want {
		t.Fatalf("Sign = %s\nwant   %s", got, want)
	}
	if len(got) != TokenLen || got != strings.ToLower(got) {
		t.Fatalf("token %q: want %d lower-case hex digits", got, TokenLen)
	}
}

// TestSignAgainstPython recomputes the MAC with Python's hmac module, so the
// constant above is not the only witness.
func TestSignAgainstPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is required in CI: ", err)
		}
		t.Skip("SKIPPING: python3 not installed; the HMAC known-answer test against Python did not run")
	}
	key := bytes.Repeat([]byte{0xa5}, 32)
	rump := "imap://bob@vm.example.net/Old%20Messages;UIDVALIDITY=7/;UID=4711/;SECTION=2;EXPIRE=2026-05-01T12:00:00Z;URLAUTH=stream"
	cmd := exec.Command(py, "-c", `import hmac,hashlib,sys
print(hmac.new(bytes.fromhex(sys.argv[1]), sys.argv[2].encode(), hashlib.sha256).hexdigest())`, hex.EncodeToString(key), rump)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "02" + strings.TrimSpace(string(out)); Sign(key, rump) != want {
		t.Fatalf("Sign = %s, python says %s", Sign(key, rump), want)
	}
}

func TestVerify(t *testing.T) {
	tok := Sign(kaKey, kaRump)
	if !Verify(kaKey, kaRump, tok) {
		t.Fatal("own token refused")
	}
	if !Verify(kaKey, kaRump, strings.ToUpper(tok)) {
		t.Fatal("upper-case hex refused (HEXDIG is case-insensitive)")
	}
	mixed := []byte(tok)
	for i := range mixed {
		if i%2 == 0 {
			mixed[i] = bytes.ToUpper(mixed[i : i+1])[0]
		}
	}
	if !Verify(kaKey, kaRump, string(mixed)) {
		t.Fatal("mixed-case hex refused")
	}
	// Every single flipped nibble is refused.
	for i := range tok {
		b := []byte(tok)
		b[i] = "0123456789abcdef"[(unhex(b[i])+1)%16]
		if Verify(kaKey, kaRump, string(b)) {
			t.Fatalf("token with digit %d changed accepted", i)
		}
	}
	other := bytes.Clone(kaKey)
	other[31] ^= 1
	for _, c := range []struct {
		name      string
		key       []byte
		rump, tok string
	}{
		{"other key", other, kaRump, tok},
		{"rump case changed", kaKey, strings.Replace(kaRump, "uid=20", "UID=20", 1), tok},
		{"rump encoding changed", kaKey, strings.Replace(kaRump, "fred", "%66red", 1), tok},
		{"truncated", kaKey, kaRump, tok[:len(tok)-2]},
		{"MAC without version", kaKey, kaRump, kaMAC},
		{"other version", kaKey, kaRump, "01" + kaMAC},
		{"extended", kaKey, kaRump, tok + "00"},
		{"odd length", kaKey, kaRump, tok + "0"},
		{"not hex", kaKey, kaRump, strings.Replace(tok, "0", "g", 1)},
		{"empty", kaKey, kaRump, ""},
		{"short key", kaKey[:15], kaRump, Sign(kaKey[:16], kaRump)},
		{"nil key", nil, kaRump, tok},
	} {
		if Verify(c.key, c.rump, c.tok) {
			t.Errorf("%s: accepted", c.name)
		}
	}
	// A short key verifies nothing, not even the token of the all-zero
	// key that stands in for it to keep the timing.
	if Verify(nil, kaRump, Sign(make([]byte, KeySize), kaRump)) || Verify(kaKey[:15], kaRump, Sign(make([]byte, KeySize), kaRump)) {
		t.Error("short key accepted the stand-in key's token")
	}
	if Sign(kaKey[:15], kaRump) != "" {
		t.Error("Sign with a key under 128 bits must not produce a token")
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != KeySize || len(b) != KeySize || bytes.Equal(a, b) || bytes.Equal(a, make([]byte, KeySize)) {
		t.Fatalf("keys %x %x", a, b)
	}
}

// TestAuthorizeRoundTrip is GENURLAUTH then URLFETCH in miniature: the
// client's rump octets are signed, the returned URL parses, its rump is the
// same octets and its token verifies; a changed octet does not.
func TestAuthorizeRoundTrip(t *testing.T) {
	key, _ := GenerateKey()
	in := "imap://Joe@example.com/INBOX/;uid=20/;section=1.2;EXPIRE=2030-01-01T00:00:00Z;urlauth=user+bob"
	u, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Authorize(key); err != nil {
		t.Fatal(err)
	}
	full := u.String()
	if !strings.HasPrefix(full, in+":internal:") || len(full) != len(in)+len(":internal:")+TokenLen {
		t.Fatalf("authorized URL %q does not extend the rump byte for byte", full)
	}
	v, err := Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rump() != in || !v.VerifyToken(key) {
		t.Fatalf("rump %q, verify %v", v.Rump(), v.VerifyToken(key))
	}
	w, _ := Parse(strings.Replace(full, "uid=20", "uid=21", 1))
	if w.VerifyToken(key) {
		t.Fatal("token accepted for another message")
	}
	other, _ := GenerateKey()
	if v.VerifyToken(other) {
		t.Fatal("token accepted under another key (RESETKEY)")
	}
	x, _ := Parse(strings.Replace(full, ":internal:", ":x-other:", 1))
	if x.VerifyToken(key) {
		t.Fatal("token accepted for another mechanism")
	}
	plain, _ := Parse("imap://joe@example.com/INBOX/;uid=20")
	if err := plain.Authorize(key); err == nil {
		t.Fatal("Authorize without access identifier")
	}
	if err := u.Authorize(key[:8]); err == nil {
		t.Fatal("Authorize with a short key")
	}
}
