package smtp

import (
	"strings"
	"testing"

	"github.com/lemonvox/lemonvox/vmstore"
)

// TestSubmissionSenderCheck: MAIL FROM must be an address the
// authenticated account may use (RFC 6409 s6.1): its name in a local
// domain (any case), its e-mail address, a SendAs entry, or the null
// reverse-path; anything else is 553 5.7.1 and opens no transaction.
// Python's smtplib drives it.
func TestSubmissionSenderCheck(t *testing.T) {
	e := newEnv(t, func(s *Submission) {
		s.LocalDomains = []string{"example.net"}
		s.SendAs = map[string][]string{"alice": {"voicemail@service.example", "@team.example"}}
	})
	if _, err := e.st.SetOptions("alice", vmstore.AccountOptions{Email: "Alice.Smith@home.example"}); err != nil {
		t.Fatal(err)
	}
	out := runPy(t, map[string]string{"ADDR": e.addr}, pyPrelude+`
for name, addr in [("other-local", "bob@vm.example.net"), ("other-domain", "alice@elsewhere.example"),
                   ("other-local2", "bob@example.net"), ("nodomain-other", "bob"), ("lookalike", "alice.x@vm.example.net"),
                   ("own", "alice@vm.example.net"), ("own-case", "ALICE@VM.Example.NET"), ("own-alias-domain", "alice@example.net"),
                   ("email", "alice.smith@HOME.example"), ("sendas", "voicemail@service.example"), ("sendas-domain", "anyone@team.example"),
                   ("null", "")]:
    r = s.docmd("MAIL FROM:<%s>" % addr)
    print(name, r)
    if r[0] == 250:
        s.docmd("RSET")
try:
    s.sendmail("bob@vm.example.net", ["bob@vm.example.net"], "Subject: forged\r\n\r\nx\r\n")
except smtplib.SMTPSenderRefused as e:
    print("sendmail-refused", e.smtp_code, e.smtp_error)
s.quit()
`)
	for _, want := range []string{
		"other-local (553, b'5.7.1 Sender address not owned by the authenticated user alice')",
		"other-domain (553, b'5.7.1 ", "other-local2 (553, b'5.7.1 ", "nodomain-other (553, b'5.7.1 ", "lookalike (553, b'5.7.1 ",
		"own (250, b'2.1.0 Sender OK')", "own-case (250, ", "own-alias-domain (250, ", "email (250, ", "sendas (250, ",
		"sendas-domain (250, ", "null (250, ",
		"sendmail-refused 553 b'5.7.1 Sender address not owned by the authenticated user alice'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if got := mailboxMessages(t, e.st, "bob", "INBOX"); len(got) != 0 {
		t.Fatalf("a forged message was delivered: %q", got)
	}
}
