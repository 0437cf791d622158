package imap

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/channel"
)

const voiceMsg = "From: <+15551234@example.net>\r\nTo: alice@example.net\r\nSubject: voice\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nA message.\r\n" +
	"--b1\r\nContent-Type: audio/basic\r\nContent-Transfer-Encoding: base64\r\n\r\n//////////////////////8=\r\n--b1--\r\n"

// TestChannel: capabilities, the CHANNEL response (UID first, a URL per
// playable part, NIL for the others), the grant in the URL, expiry
// clamping and CHANNELEXPIRE, and the refusals of s9.2.
func TestChannel(t *testing.T) {
	var grants *channel.Grants
	e := newTestEnv(t, func(s *Server) {
		g, err := channel.NewGrants(s.Store)
		if err != nil {
			t.Fatal(err)
		}
		grants = g
		s.Channel = &ChannelService{Grants: g, URLs: map[string]string{"RTSPS": "rtsps://127.0.0.1:8555/"}}
	})
	uid := e.deposit("alice", "INBOX", voiceMsg)
	rc := e.raw()
	lines := rc.ok("CAPABILITY")
	if strings.Contains(lines[0], "CHANNEL") {
		t.Fatalf("CHANNEL before login: %s", lines[0])
	}
	rc.login("alice")
	lines = rc.ok("CAPABILITY")
	if !strings.Contains(lines[0], " CHANNEL CHANNEL=RTSPS") || strings.Contains(lines[0], "CHANNEL=RTSP ") {
		t.Fatalf("capabilities: %s", lines[0])
	}
	if _, tagged := rc.cmd("UID CHANNEL %d ([2]) RTSPS", uid); !strings.Contains(tagged, "BAD") {
		t.Fatalf("CHANNEL without a selected mailbox: %s", tagged)
	}
	rc.ok("SELECT INBOX")
	before := time.Now()
	lines, tagged := rc.cmd("UID CHANNEL %d ([2] [1] [9] [2.MIME]) rtsps (EXPIRE 99999 SEEN RESUME)", uid)
	re := regexp.MustCompile(`^\* 1 CHANNEL \(UID (\d+) \[2\] "rtsps://127\.0\.0\.1:8555/([A-Za-z0-9_-]+)" \[1\] NIL \[9\] NIL \[2\.MIME\] NIL\)$`)
	if len(lines) != 1 || !re.MatchString(lines[0]) {
		t.Fatalf("response %q", lines)
	}
	m := re.FindStringSubmatch(lines[0])
	exp := regexp.MustCompile(`OK \[CHANNELEXPIRE (\S+)\]`).FindStringSubmatch(tagged)
	if exp == nil {
		t.Fatalf("tagged %s", tagged)
	}
	at, err := time.Parse(time.RFC3339, exp[1])
	if err != nil || at.After(before.Add(channel.MaxGrantLife+time.Second)) || at.Before(before.Add(50*time.Minute)) {
		t.Fatalf("CHANNELEXPIRE %s (clamped to an hour expected)", exp[1])
	}
	g, err := grants.Open(m[2])
	if err != nil {
		t.Fatal(err)
	}
	id, _ := e.store.AccountID("alice")
	if g.User != "alice" || g.AccountID != id || g.UID != uid || g.Section != "2" || g.Mailbox != "INBOX" || !g.Seen || !g.Resume {
		t.Fatalf("grant %+v", g)
	}
	// MSN form, default options.
	lines = rc.ok("CHANNEL 1 ([2]) RTSPS")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `* 1 CHANNEL ([2] "rtsps://`) {
		t.Fatalf("MSN form %q", lines)
	}
	if _, tagged := rc.cmd("UID CHANNEL %d ([2]) FTP", uid); !strings.Contains(tagged, "NO [CANNOT]") {
		t.Fatalf("unknown scheme: %s", tagged)
	}
	if _, tagged := rc.cmd("UID CHANNEL %d ([2]) RTSP", uid); !strings.Contains(tagged, "NO [CANNOT]") {
		t.Fatalf("plain RTSP not offered: %s", tagged)
	}
	if _, tagged := rc.cmd("UID CHANNEL %d [2] RTSPS", uid); !strings.Contains(tagged, "BAD") {
		t.Fatalf("syntax: %s", tagged)
	}
	if _, tagged := rc.cmd("UID CHANNEL %d ([2]) RTSPS (CONVERT (\"image/png\"))", uid); !strings.Contains(tagged, "NO [CANNOT]") {
		t.Fatalf("CONVERT to image: %s", tagged)
	}
	// Nonexistent UIDs are skipped.
	if lines := rc.ok("UID CHANNEL 999 ([2]) RTSPS"); len(lines) != 0 {
		t.Fatalf("nonexistent UID: %q", lines)
	}
}
