package channel

import "testing"

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, user, mailbox string }{
		{"fred", "fred", "fred"},
		{"+1555@vm", "+1555%40vm", "+1555@vm"},
		{"a;b:c/d@e", "a%3Bb%3Ac%2Fd%40e", "a%3Bb:c/d@e"},
		{"Old Messages", "Old%20Messages", "Old%20Messages"},
		{"x?y#z%", "x%3Fy%23z%25", "x%3Fy%23z%25"},
		{"Entwürfe", "Entw%C3%BCrfe", "Entw%C3%BCrfe"},
		{"!$'()*+,&=~-._", "!$'()*+,&=~-._", "!$'()*+,&=~-._"},
		{"/lead", "%2Flead", "%2Flead"},
		{"a/./b/../c/.../d.", "a%2F.%2Fb%2F..%2Fc%2F...%2Fd.", "a/%2E/b/%2E%2E/c/.../d."},
		{".", ".", "%2E"},
	} {
		if got := EscapeUser(c.in); got != c.user {
			t.Errorf("EscapeUser(%q) = %q, want %q", c.in, got, c.user)
		}
		if got := EscapeMailbox(c.in); got != c.mailbox {
			t.Errorf("EscapeMailbox(%q) = %q, want %q", c.in, got, c.mailbox)
		}
	}
	// Every octet survives escape and unescape in both classes.
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, class := range []charClass{classA, classB} {
		e := escape(string(all), class)
		back, _, ok := unescape(e, class)
		if !ok || back != string(all) {
			t.Fatalf("class %d: %q does not decode back", class, e)
		}
	}
	for _, bad := range []string{"%", "%4", "%4g", "a b", "a;b", "a\x80"} {
		if _, _, ok := unescape(bad, classB); ok {
			t.Errorf("unescape(%q) accepted", bad)
		}
	}
	if _, _, ok := unescape("a:b", classA); ok {
		t.Error(`":" accepted in achar`)
	}
}
