package channel

import (
	"strings"
	"testing"
)

// FuzzParse checks that Parse and ParseRef never panic and that every URL it accepts
// formats to a string that parses back to an equal URL, which formats the
// same again. Seeds: testdata/fuzz/FuzzParse plus the valid-URL table.
func FuzzParse(f *testing.F) {
	for _, c := range validURLs {
		f.Add(c.in)
	}
	base := &URL{User: "joe", AuthType: "*", Host: "vm.example.net", Port: 1143}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := ParseRef(base, s); err == nil {
			if r.Access.Kind != AccessNone && schemeEnd(s) < 0 {
				t.Fatalf("ParseRef(%q) accepted URLAUTH in a relative reference", s)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("ParseRef(%q) = %q, invalid: %v", s, r.String(), err)
			}
		} else if r != nil {
			t.Fatal("URL and error")
		}
		u, err := Parse(s)
		if err != nil {
			if u != nil {
				t.Fatal("URL and error")
			}
			return
		}
		out := u.String()
		v, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its String %q fails: %v", s, out, err)
		}
		if !v.Equal(u) {
			t.Fatalf("Parse(%q) = %+v\nParse(%q) = %+v", s, *u, out, *v)
		}
		if v.String() != out {
			t.Fatalf("String not stable: %q then %q", out, v.String())
		}
		if !strings.HasPrefix(out, u.Rump()) {
			t.Fatalf("rump %q is not a prefix of %q", u.Rump(), out)
		}
		if err := u.Validate(); err != nil {
			t.Fatalf("Validate(%q): %v", s, err)
		}
		if u.Access.Kind != AccessNone && u.Rump() != s[:len(u.Rump())] {
			t.Fatalf("URLAUTH rump %q is not the input's octets %q", u.Rump(), s)
		}
		if u.Access.Kind == AccessNone {
			// Without URLAUTH the output is canonical whatever the input spelling.
			c := *u
			c.rump, c.rumpCanon = "", ""
			if c.String() != out {
				t.Fatalf("canonical %q, String %q", c.String(), out)
			}
		}
	})
}
