package notify

import (
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

func TestUserFilterFromMetadata(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "quiet", vmstore.AccountOptions{})
	mustAccount(t, s, "picky", vmstore.AccountOptions{})
	mustAccount(t, s, "all", vmstore.AccountOptions{})
	set := func(user, v string) {
		if err := s.SetMetadata(user, 0, []vmstore.MetadataEntry{{Name: MetadataPrefix + "fake", Value: []byte(v)}}); err != nil {
			t.Fatal(err)
		}
	}
	set("quiet", "off")
	set("picky", "messageread, QuotaExceed")
	sink := newFakeSink("fake")
	sink.accept = func(ev *vmstore.Event) bool {
		return ev.Type == vmstore.EventMessageNew || ev.Type == vmstore.EventMessageRead
	}
	startDispatcher(t, s, t.TempDir(), &UserFilter{Sink: sink, Store: s})
	for _, u := range []string{"quiet", "picky", "all"} {
		res := deposit(t, s, u)
		markSeen(t, s, u, res)
	}
	waitFor(t, 5*time.Second, "3 deliveries", func() bool { return len(sink.events()) == 3 })
	waitSettled(t, s, "fake")
	got := map[string][]vmstore.EventType{}
	for _, ev := range sink.events() {
		got[ev.User] = append(got[ev.User], ev.Type)
	}
	if len(got["quiet"]) != 0 || len(got["picky"]) != 1 || got["picky"][0] != vmstore.EventMessageRead || len(got["all"]) != 2 {
		t.Fatalf("got %v", got)
	}
}
