package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lemonvox/lemonvox/vmstore"
)

// TestFreeMemory: the endpoint needs the token and reports the heap.
func TestFreeMemory(t *testing.T) {
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := (&Server{Store: st, Token: "tok"}).Handler()
	do := func(method, tok string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/api/v1/debug/free-memory", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do("POST", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("without token: %d", rec.Code)
	}
	if rec := do("GET", "tok"); rec.Code == http.StatusOK {
		t.Fatalf("GET: %d", rec.Code)
	}
	rec := do("POST", "tok")
	var m map[string]uint64
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &m) != nil || m["heapInuseBytes"] == 0 || m["goroutines"] == 0 {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body.String())
	}
}
