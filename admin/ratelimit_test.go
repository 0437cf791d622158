package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

func TestTokenGuessingIsRateLimited(t *testing.T) {
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := &Server{Store: st, Token: "right"}
	h := srv.Handler()
	do := func(tok string) int {
		req := httptest.NewRequest("GET", "/api/v1/accounts", nil)
		req.RemoteAddr = "192.0.2.7:5555"
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := 0; i < 10; i++ {
		if c := do("wrong"); c != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, c)
		}
	}
	if c := do("right"); c != http.StatusTooManyRequests {
		t.Fatalf("after 10 failures: %d, want 429", c)
	}
	l := newAuthLimiter(2, time.Minute)
	now := time.Now()
	l.now = func() time.Time { return now }
	l.fail("a:1")
	l.fail("a:2")
	if !l.blocked("a:3") || l.blocked("b:1") {
		t.Fatal("limiter per host")
	}
	now = now.Add(2 * time.Minute)
	if l.blocked("a:3") {
		t.Fatal("limiter does not forget")
	}
}
