package imap

import (
	"strings"
	"testing"
)

func checkLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// unsubscribeAll drops the default subscriptions of a new account.
func unsubscribeAll(t *testing.T, rc *rawClient) {
	for _, l := range rc.ok(`LSUB "" "*"`) {
		rc.ok("UNSUBSCRIBE %s", l[strings.LastIndex(l, " ")+1:])
	}
}

// TestListRecursiveMatch follows RFC 5258 s5 example 9 and the rules of
// s3.3 and s3.5: a mailbox that is not subscribed is returned with
// CHILDINFO only when one of its subscribed descendants is not returned
// by the patterns, several patterns together; a subscribed mailbox with a
// subscribed descendant carries CHILDINFO.
func TestListRecursiveMatch(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	unsubscribeAll(t, rc)
	for _, n := range []string{"foo2/bar1", "foo2/bar2", "baz2/bar2", "baz2/bar22", "baz2/bar222", "eps2/mamba", "foo"} {
		rc.ok("CREATE %s", n)
	}
	for _, n := range []string{"foo2/bar1", "foo2/bar2", "baz2/bar2", "baz2/bar22", "baz2/bar222", "eps2", "eps2/mamba", "qux2/bar2", "foo/bar"} {
		rc.ok("SUBSCRIBE %s", n)
	}
	checkLines(t, "*2", rc.ok(`LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"`),
		`* LIST (\HasNoChildren \Subscribed) "/" baz2/bar2`,
		`* LIST (\HasNoChildren \Subscribed) "/" baz2/bar22`,
		`* LIST (\HasNoChildren \Subscribed) "/" baz2/bar222`,
		`* LIST (\HasChildren \Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasChildren) "/" foo2 ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasNoChildren \Subscribed) "/" foo2/bar2`,
		`* LIST (\NonExistent \Subscribed) "/" qux2/bar2`,
	)
	// Every subscribed descendant of foo2 and baz2 is returned: no
	// CHILDINFO for them; eps2 is subscribed and keeps it.
	checkLines(t, "*", rc.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"`),
		`* LIST (\HasNoChildren \Subscribed) "/" baz2/bar2`,
		`* LIST (\HasNoChildren \Subscribed) "/" baz2/bar22`,
		`* LIST (\HasNoChildren \Subscribed) "/" baz2/bar222`,
		`* LIST (\HasChildren \Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasNoChildren \Subscribed) "/" eps2/mamba`,
		`* LIST (\NonExistent \Subscribed) "/" foo/bar`,
		`* LIST (\HasNoChildren \Subscribed) "/" foo2/bar1`,
		`* LIST (\HasNoChildren \Subscribed) "/" foo2/bar2`,
		`* LIST (\NonExistent \Subscribed) "/" qux2/bar2`,
	)
	// RFC 5258 s5 example 10 with several patterns: foo/bar is returned
	// by the second pattern, so foo has no CHILDINFO and is not listed.
	checkLines(t, "foo foo/*", rc.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" (foo "foo/*")`),
		`* LIST (\NonExistent \Subscribed) "/" foo/bar`,
	)
	checkLines(t, "foo", rc.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" foo RETURN (CHILDREN)`),
		`* LIST (\HasNoChildren) "/" foo ("CHILDINFO" ("SUBSCRIBED"))`,
	)
	checkLines(t, "% eps2/%", rc.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" ("%%" "eps2/%%" "foo2/*")`),
		`* LIST (\HasChildren) "/" baz2 ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasChildren \Subscribed) "/" eps2 ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasNoChildren \Subscribed) "/" eps2/mamba`,
		`* LIST (\HasNoChildren) "/" foo ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasNoChildren \Subscribed) "/" foo2/bar1`,
		`* LIST (\HasNoChildren \Subscribed) "/" foo2/bar2`,
		`* LIST (\NonExistent) "/" qux2 ("CHILDINFO" ("SUBSCRIBED"))`,
	)
}

// TestLsubParent: RFC 3501 s6.3.9, with only a/b/c subscribed, LSUB "%"
// patterns return the level they reach with \Noselect, "*" the name.
func TestLsubParent(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	unsubscribeAll(t, rc)
	rc.ok("CREATE a/b/c")
	rc.ok("SUBSCRIBE a/b/c")
	checkLines(t, `LSUB "" "a/%"`, rc.ok(`LSUB "" "a/%%"`), `* LSUB (\Noselect) "/" a/b`)
	checkLines(t, `LSUB "" "%"`, rc.ok(`LSUB "" "%%"`), `* LSUB (\Noselect) "/" a`)
	checkLines(t, `LSUB "a/" "%"`, rc.ok(`LSUB "a/" "%%"`), `* LSUB (\Noselect) "/" a/b`)
	checkLines(t, `LSUB "" "*"`, rc.ok(`LSUB "" "*"`), `* LSUB () "/" a/b/c`)
	checkLines(t, `LSUB "" "a/b/%"`, rc.ok(`LSUB "" "a/b/%%"`), `* LSUB () "/" a/b/c`)
	rc.ok("SUBSCRIBE a")
	checkLines(t, `LSUB "" "%" with a subscribed`, rc.ok(`LSUB "" "%%"`), `* LSUB () "/" a`)
}
