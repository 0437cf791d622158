package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lemonvox/lemonvox/vmstore"
)

// notify.sip_ha1 is password-equivalent: it never leaves through the API,
// can be set, and survives a read-modify-write of the options.
func TestAccountSecretsAreWriteOnly(t *testing.T) {
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hs := httptest.NewServer((&Server{Store: st, Token: "tok"}).Handler())
	defer hs.Close()
	const ha1 = "0123456789abcdef0123456789abcdef"
	call := func(method, path, body string, want int) string {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		return string(b)
	}
	out := call("POST", "/api/v1/accounts", `{"name":"ivy","password":"pw","options":{"notify":{"sip_ha1":"`+ha1+`","lang":"en"}}}`, 201)
	for _, got := range []string{out, call("GET", "/api/v1/accounts/ivy", "", 200), call("GET", "/api/v1/accounts", "", 200)} {
		if strings.Contains(got, ha1) || strings.Contains(got, `"sip_ha1"`) {
			t.Fatalf("secret in API output: %s", got)
		}
		if compact := strings.Join(strings.Fields(got), ""); !strings.Contains(compact, `"secrets":["notify.sip_ha1"]`) || !strings.Contains(compact, `"lang":"en"`) {
			t.Fatalf("view: %s", got)
		}
	}
	// Options written back without the secret keep it.
	call("PATCH", "/api/v1/accounts/ivy", `{"options":{"notify":{"lang":"fr"}}}`, 200)
	a, _ := st.GetAccount("ivy")
	if a.Options.Notify["sip_ha1"] != ha1 || a.Options.Notify["lang"] != "fr" {
		t.Fatalf("after PATCH: %v", a.Options.Notify)
	}
	// It can be changed, and removed with an empty value.
	call("PATCH", "/api/v1/accounts/ivy", `{"options":{"notify":{"sip_ha1":"ffffffffffffffffffffffffffffffff"}}}`, 200)
	if a, _ := st.GetAccount("ivy"); a.Options.Notify["sip_ha1"] != "ffffffffffffffffffffffffffffffff" {
		t.Fatalf("set: %v", a.Options.Notify)
	}
	out = call("PATCH", "/api/v1/accounts/ivy", `{"options":{"notify":{"sip_ha1":""}}}`, 200)
	if a, _ := st.GetAccount("ivy"); a.Options.Notify["sip_ha1"] != "" || strings.Contains(out, "secrets") {
		t.Fatalf("remove: %v %s", a.Options.Notify, out)
	}
}
