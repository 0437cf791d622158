package imap

import (
	"errors"
	"regexp"
	"testing"

	"github.com/lemonvox/lemonvox/channel"
)

var channelURLRe = regexp.MustCompile(`"rtsps://127\.0\.0\.1:8555/([A-Za-z0-9_-]+)"`)

// channelEnv is a urlEnv with CHANNEL (RTSPS) configured.
func channelEnv(t *testing.T) (*urlEnv, *channel.Grants) {
	var grants *channel.Grants
	e := newURLEnv(t, func(s *Server) {
		g, err := channel.NewGrants(s.Store)
		if err != nil {
			t.Fatal(err)
		}
		grants = g
		s.Channel = &ChannelService{Grants: g, URLs: map[string]string{"RTSPS": "rtsps://127.0.0.1:8555/"}}
	})
	return e, grants
}

// grantOf runs a CHANNEL command and returns the grant of its one URL.
func (rc *rawClient) grantOf(format string, args ...any) string {
	rc.t.Helper()
	lines := rc.ok(format, args...)
	if len(lines) != 1 {
		rc.t.Fatalf("CHANNEL: %q", lines)
	}
	m := channelURLRe.FindStringSubmatch(lines[0])
	if m == nil {
		rc.t.Fatalf("CHANNEL response without a URL: %q", lines[0])
	}
	return m[1]
}

// TestChannelGrantsRevokedByResetKey: CHANNEL grants are bound to the
// mailbox's URLAUTH access key, so RESETKEY of the mailbox revokes the
// playback URLs handed out for it (IMAP notes s9.2), RESETKEY of another
// mailbox does not, RESETKEY without arguments revokes all, and grants
// issued afterwards work.
func TestChannelGrantsRevokedByResetKey(t *testing.T) {
	e, grants := channelEnv(t)
	if _, err := e.store.CreateMailbox("alice", "Saved", ""); err != nil {
		t.Fatal(err)
	}
	saved := e.deposit("alice", "Saved", urlVoiceMessage(e.audio))
	a := e.raw()
	a.login("alice")
	a.ok("SELECT Saved")
	inSaved := a.grantOf("UID CHANNEL %d ([2]) RTSPS", saved)
	a.ok("SELECT INBOX")
	inInbox := a.grantOf("UID CHANNEL %d ([2]) RTSPS", e.uid)
	for _, tok := range []string{inSaved, inInbox} {
		if _, err := grants.Open(tok); err != nil {
			t.Fatalf("fresh grant: %v", err)
		}
	}

	a.exact("OK [URLMECH INTERNAL] RESETKEY completed", 0, "RESETKEY Saved")
	if _, err := grants.Open(inSaved); !errors.Is(err, channel.ErrGrantRevoked) {
		t.Fatalf("grant of Saved after RESETKEY Saved: %v, want ErrGrantRevoked", err)
	}
	if _, err := grants.Open(inInbox); err != nil {
		t.Fatalf("grant of INBOX after RESETKEY Saved: %v", err)
	}
	a.exact("OK [URLMECH INTERNAL] RESETKEY completed", -1, "RESETKEY INBOX") // "* OK [URLMECH INTERNAL]" may come first
	if _, err := grants.Open(inInbox); !errors.Is(err, channel.ErrGrantRevoked) {
		t.Fatalf("grant of INBOX after RESETKEY INBOX: %v, want ErrGrantRevoked", err)
	}
	again := a.grantOf("UID CHANNEL %d ([2]) RTSPS", e.uid)
	if g, err := grants.Open(again); err != nil || g.UID != e.uid {
		t.Fatalf("grant issued after RESETKEY: %v", err)
	}
	// A URLAUTH URL and a grant die together.
	u := a.genurlauth(e.rump("/;SECTION=2;URLAUTH=authuser"))
	a.exact("OK RESETKEY completed, every mailbox access key removed", -1, "RESETKEY")
	if _, err := grants.Open(again); !errors.Is(err, channel.ErrGrantRevoked) {
		t.Fatalf("grant after RESETKEY (all): %v, want ErrGrantRevoked", err)
	}
	b := e.raw()
	b.login("bob")
	if got := b.urlfetch(`"`+u+`"`, u); got != "NIL" {
		t.Fatalf("URLAUTH URL after RESETKEY (all): %.60q", got)
	}
}

// TestChannelConvert: CHANNEL's CONVERT option is either honoured or
// refused, never ignored: the default conversion (NIL) gives URLs; an
// explicit audio type, conversion parameters and non-audio types are NO
// [CANNOT] with nothing returned; a malformed type is BAD.
func TestChannelConvert(t *testing.T) {
	e, grants := channelEnv(t)
	a := e.raw()
	a.login("alice")
	a.ok("SELECT INBOX")
	tok := a.grantOf("UID CHANNEL %d ([2]) RTSPS (CONVERT (NIL))", e.uid)
	if _, err := grants.Open(tok); err != nil {
		t.Fatal(err)
	}
	a.exact(`NO [CANNOT] CHANNEL does not convert to audio/amr: the player and the playback server negotiate the codec; use CONVERT (NIL) or no CONVERT`, 0,
		`UID CHANNEL %d ([2]) RTSPS (EXPIRE 600 CONVERT ("audio/amr") SEEN)`, e.uid)
	a.exact(`NO [CANNOT] CHANNEL CONVERT takes no conversion parameters`, 0,
		`UID CHANNEL %d ([2]) RTSPS (CONVERT (NIL ("u.sample-rate" "8000")))`, e.uid)
	a.exact(`NO [CANNOT] streams are audio; cannot convert to image/png`, 0, `UID CHANNEL %d ([2]) RTSPS (CONVERT ("image/png"))`, e.uid)
	a.exact(`BAD CONVERT: "audio" is not a type/subtype media type`, 0, `UID CHANNEL %d ([2]) RTSPS (CONVERT ("audio"))`, e.uid)
	a.exact(`BAD CONVERT: "audio/a b" is not a type/subtype media type`, 0, `UID CHANNEL %d ([2]) RTSPS (CONVERT ("audio/a b"))`, e.uid)
}
