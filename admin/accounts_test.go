package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/lemonvox/lemonvox/vmstore"
)

// Account names outside the syntax are refused with a 400 problem; stored
// accounts of such names (from before the syntax) can still be listed and
// deleted, through the client too (dot segments are percent-encoded); the
// account JSON carries the account's id.
func TestAccountNamesAndIDs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	st, err := vmstore.Open(vmstore.Options{Dir: dir, GCInterval: -1, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// Records as earlier stores wrote them: any name, no id, no format
	// version (so the account-id migration runs at the next Open).
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{".", "..", "Old Name"} {
		b, _ := json.Marshal(map[string]any{"name": n, "passwordHash": "x", "created": time.Now()})
		if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("A/"+n), b) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DropPrefix([]byte("V/")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err = vmstore.Open(vmstore.Options{Dir: dir, GCInterval: -1, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer((&Server{Store: st, Token: "tok"}).Handler())
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Token: "tok", HTTP: srv.Client()}

	for _, name := range []string{".", "..", "a..b", "-x", "bad name", "x@example.net", strings.Repeat("a", 65)} {
		body, _ := json.Marshal(map[string]any{"name": name, "password": "p"})
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/accounts", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p Problem
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" || err != nil ||
			p.Status != 400 || !strings.Contains(p.Detail, "account name") {
			t.Errorf("create %q: %d %+v %v", name, resp.StatusCode, p, err)
		}
	}
	v, err := c.CreateAccount(AccountRequest{Name: "+15551234567", Password: ptr("p")})
	if err != nil || v.ID == 0 || v.Name != "+15551234567" {
		t.Fatalf("create E.164 name: %+v %v", v, err)
	}
	list, err := c.Accounts()
	if err != nil || len(list) != 4 {
		t.Fatalf("list: %+v %v", list, err)
	}
	ids := map[uint64]bool{}
	for _, a := range list {
		if a.ID == 0 || ids[a.ID] {
			t.Fatalf("ids: %+v", list)
		}
		ids[a.ID] = true
	}
	for _, name := range []string{".", "..", "Old Name", "+15551234567"} {
		if err := c.DeleteAccount(name); err != nil {
			t.Fatalf("delete %q: %v", name, err)
		}
	}
	if list, _ := c.Accounts(); len(list) != 0 {
		t.Fatalf("left: %+v", list)
	}
}

func ptr(s string) *string { return &s }
