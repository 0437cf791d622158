package imap

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/lemonvox/lemonvox/vmstore"
)

func TestQuota(t *testing.T) {
	e := newTestEnv(t)
	c := e.client("alice")
	// No limits: no quota root.
	qr, err := c.GetQuotaRoot("INBOX").Wait()
	if err != nil || len(qr) != 0 {
		t.Fatalf("GETQUOTAROOT without quota: %+v %v", qr, err)
	}
	if err := e.store.SetQuota("alice", vmstore.Quota{Bytes: 10 * 1024, Messages: 2}); err != nil {
		t.Fatal(err)
	}
	e.deposit("alice", "INBOX", testMessage("q1", strings.Repeat("x", 3000)))
	qr, err = c.GetQuotaRoot("INBOX").Wait()
	if err != nil || len(qr) != 1 || qr[0].Root != "user/alice" {
		t.Fatalf("GETQUOTAROOT: %+v %v", qr, err)
	}
	st := qr[0].Resources[imap.QuotaResourceStorage]
	if st.Limit != 10 || st.Usage != 4 || qr[0].Resources[imap.QuotaResourceMessage].Usage != 1 {
		t.Fatalf("quota: %+v", qr[0].Resources)
	}
	if _, err := c.GetQuota("user/alice").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetQuota("user/bob").Wait(); err == nil {
		t.Fatal("other user's root answered")
	}
	// Over quota: APPEND fails with OVERQUOTA.
	big := testMessage("q2", strings.Repeat("y", 9000))
	ac := c.Append("INBOX", int64(len(big)), nil)
	ac.Write([]byte(big))
	ac.Close()
	if _, err := ac.Wait(); err == nil || !strings.Contains(err.Error(), "OVERQUOTA") {
		t.Fatalf("APPEND over quota: %v", err)
	}
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	rc.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
	if l := rc.ok("STATUS INBOX (DELETED DELETED-STORAGE)"); l[0] != "* STATUS INBOX (DELETED 1 DELETED-STORAGE 4)" {
		t.Fatal(l)
	}
	// SETQUOTA is not offered: unknown command.
	if _, tagged := rc.cmd("SETQUOTA user/alice (STORAGE 1)"); !strings.Contains(tagged, "BAD") {
		t.Fatal(tagged)
	}
}
