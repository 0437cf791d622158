package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lemonvox/lemonvox/notify"
	"github.com/lemonvox/lemonvox/vmstore"
)

type fakeNotify struct{ replayed []uint64 }

func (f *fakeNotify) Status() ([]notify.SinkStatus, error) {
	return []notify.SinkStatus{{Name: "crm", Cursor: 7, DeadLetters: 1}}, nil
}
func (f *fakeNotify) DeadLetters(sink string) ([]notify.DeadLetter, error) {
	if sink != "crm" {
		return nil, notify.ErrUnknownSink
	}
	return []notify.DeadLetter{{Seq: 5, User: "a", Type: "MessageNew", Attempts: 10, Error: "503"}}, nil
}
func (f *fakeNotify) Replay(_ context.Context, sink string, seqs []uint64) (int, error) {
	f.replayed = seqs
	return len(seqs), nil
}
func (f *fakeNotify) DropDeadLetters(sink string, seqs []uint64) (int, error) { return 1, nil }
func (f *fakeNotify) EnableSink(sink string) error                            { return nil }

func TestNotifyEndpoints(t *testing.T) {
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := &fakeNotify{}
	h := (&Server{Store: st, Token: "t", Notify: f}).Handler()
	do := func(method, path, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if c, b := do("GET", "/api/v1/notify/sinks", ""); c != 200 || !strings.Contains(b, `"deadLetters": 1`) {
		t.Fatalf("status %d %s", c, b)
	}
	if c, b := do("GET", "/api/v1/notify/sinks/crm/dead-letters", ""); c != 200 || !strings.Contains(b, `"seq": 5`) {
		t.Fatalf("dead letters %d %s", c, b)
	}
	if c, _ := do("GET", "/api/v1/notify/sinks/nope/dead-letters", ""); c != http.StatusNotFound {
		t.Fatalf("unknown sink %d", c)
	}
	if c, b := do("POST", "/api/v1/notify/sinks/crm/replay", `{"seqs":[5]}`); c != 200 || !strings.Contains(b, `"delivered": 1`) || len(f.replayed) != 1 {
		t.Fatalf("replay %d %s", c, b)
	}
	if c, _ := do("POST", "/api/v1/notify/sinks/crm/replay", `{"seqs":"x"}`); c != http.StatusBadRequest {
		t.Fatalf("bad replay body %d", c)
	}
	if c, _ := do("POST", "/api/v1/notify/sinks/crm/enable", ""); c != http.StatusNoContent {
		t.Fatalf("enable %d", c)
	}
	// Without sinks the endpoints say so.
	h2 := (&Server{Store: st, Token: "t"}).Handler()
	req := httptest.NewRequest("GET", "/api/v1/notify/sinks", nil)
	req.Header.Set("Authorization", "Bearer t")
	rec := httptest.NewRecorder()
	h2.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("no sinks: %d", rec.Code)
	}
}
