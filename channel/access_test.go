package channel

import (
	"errors"
	"testing"
)

func TestParseAccess(t *testing.T) {
	for _, c := range []struct {
		in, canon string
		want      Access
	}{
		{"anonymous", "anonymous", Access{Kind: AccessAnonymous}},
		{"ANONYMOUS", "anonymous", Access{Kind: AccessAnonymous}},
		{"authuser", "authuser", Access{Kind: AccessAuthUser}},
		{"user+fred", "user+fred", Access{Kind: AccessUser, User: "fred"}},
		{"User+%2B1555%40vm", "user++1555%40vm", Access{Kind: AccessUser, User: "+1555@vm"}},
		{"submit+fred", "submit+fred", Access{Kind: AccessSubmit, User: "fred"}},
		{"SUBMIT+bob.ar", "submit+bob.ar", Access{Kind: AccessSubmit, User: "bob.ar"}},
		{"stream", "stream", Access{Kind: AccessApplication, Application: "stream"}},
		{"exampleapp3+testuser", "exampleapp3+testuser", Access{Kind: AccessApplication, Application: "exampleapp3", User: "testuser"}},
	} {
		a, err := ParseAccess(c.in)
		if err != nil || a != c.want {
			t.Errorf("ParseAccess(%q) = %+v, %v; want %+v", c.in, a, err, c.want)
			continue
		}
		if a.String() != c.canon {
			t.Errorf("String() = %q, want %q", a.String(), c.canon)
		}
		if b, err := ParseAccess(a.String()); err != nil || b != a {
			t.Errorf("round trip of %q: %+v %v", a.String(), b, err)
		}
	}
	for _, in := range []string{"", "user", "submit", "user+", "submit+", "anonymous+x", "authuser+x", "+x",
		"st-ream", "user+a:b", "user+a/b", "user+%0A", "user+%FF", "user+a%2"} {
		if a, err := ParseAccess(in); !errors.Is(err, ErrBadAccess) || !errors.Is(err, ErrBadURL) {
			t.Errorf("ParseAccess(%q) = %+v, %v; want ErrBadAccess", in, a, err)
		}
	}
	if (Access{}).String() != "" || AccessSubmit.String() != "submit" {
		t.Error("String of the zero Access or of a kind")
	}
}

// TestPermits is the access matrix of RFC 5092 s6.1.2 / RFC 5593: each
// identifier against each kind of requester.
func TestPermits(t *testing.T) {
	var (
		nobody    = Requester{}                  // not logged in
		anonymous = Requester{User: "anonymous"} // SASL ANONYMOUS
		alice     = Requester{User: "alice", Authenticated: true}
		fred      = Requester{User: "fred", Authenticated: true}
		submitFor = Requester{User: "fred", Authenticated: true, Submit: true} // submission server acting for fred
		submitBob = Requester{User: "bob", Authenticated: true, Submit: true}
		fakeSub   = Requester{User: "fred", Submit: true} // claims submit but not authenticated
		streamer  = Requester{User: "fred", Authenticated: true, Applications: []string{"STREAM"}}
	)
	reqs := []Requester{nobody, anonymous, alice, fred, submitFor, submitBob, fakeSub, streamer}
	for _, c := range []struct {
		access Access
		want   [8]bool // in the order of reqs
	}{
		{Access{}, [8]bool{}},
		{Access{Kind: AccessAnonymous}, [8]bool{true, true, true, true, true, true, true, true}},
		// authuser: users acting for themselves, not the submission or
		// stream entities (RFC 4467 s3, RFC 4468 s3.3, RFC 5616).
		{Access{Kind: AccessAuthUser}, [8]bool{false, false, true, true, false, false, false, false}},
		{Access{Kind: AccessUser, User: "fred"}, [8]bool{false, false, false, true, true, false, false, true}},
		{Access{Kind: AccessUser}, [8]bool{}},
		{Access{Kind: AccessSubmit, User: "fred"}, [8]bool{false, false, false, false, true, false, false, false}},
		{Access{Kind: AccessApplication, Application: "stream"}, [8]bool{false, false, false, false, false, false, false, true}},
		{Access{Kind: AccessApplication, Application: "stream", User: "bob"}, [8]bool{}},
		{Access{Kind: AccessApplication, Application: "stream", User: "fred"}, [8]bool{false, false, false, false, false, false, false, true}},
		{Access{Kind: AccessApplication, Application: "other"}, [8]bool{}},
	} {
		for i, r := range reqs {
			if got := Permits(c.access, r); got != c.want[i] {
				t.Errorf("%q permits %+v = %v, want %v", c.access.String(), r, got, c.want[i])
			}
		}
	}
}
