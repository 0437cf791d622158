package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// queue list shows a held submission of the store (no daemon running);
// queue cancel removes it; cancelling again is "not found".
func TestQueueVerbs(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	var out, errb bytes.Buffer
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	st, lock, err := openStore(data, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: "pw-123456"}); err != nil {
		t.Fatal(err)
	}
	e, err := st.Enqueue(vmstore.DepositReq{User: "alice", Body: strings.NewReader("Subject: x\r\n\r\ny\r\n")},
		vmstore.QueueEntry{From: "alice@x", Rcpts: []string{"bob@y"}, Release: time.Now().Add(time.Hour), Hold: true})
	st.Close()
	lock.Release()
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"-data", data, "queue", "list"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), e.ID+"  held") {
		t.Fatalf("queue list: %d %q %s", code, out.String(), errb.String())
	}
	if code := run([]string{"-data", data, "queue", "cancel", e.ID}, &out, &errb); code != exitOK {
		t.Fatalf("queue cancel: %d %s", code, errb.String())
	}
	if code := run([]string{"-data", data, "queue", "cancel", e.ID}, &out, &errb); code != exitMissing {
		t.Fatalf("second cancel: exit %d", code)
	}
	out.Reset()
	if code := run([]string{"-data", data, "queue", "list", "alice"}, &out, &errb); code != exitOK || out.Len() != 0 {
		t.Fatalf("queue list after cancel: %d %q", code, out.String())
	}
}
