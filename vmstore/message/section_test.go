package message

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseSection(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Section
		str  string
	}{
		{"", Section{}, ""},
		{"1", Section{Path: []int{1}}, "1"},
		{"1.2.3", Section{Path: []int{1, 2, 3}}, "1.2.3"},
		{"4294967295", Section{Path: []int{4294967295}}, "4294967295"},
		{"header", Section{Spec: "HEADER"}, "HEADER"},
		{"TEXT", Section{Spec: "TEXT"}, "TEXT"},
		{"2.Mime", Section{Path: []int{2}, Spec: "MIME"}, "2.MIME"},
		{"3.1.TEXT", Section{Path: []int{3, 1}, Spec: "TEXT"}, "3.1.TEXT"},
		{"HEADER.FIELDS (From To)", Section{Spec: "HEADER.FIELDS", Fields: []string{"FROM", "TO"}}, "HEADER.FIELDS (FROM TO)"},
		{"1.header.fields.not (x-a)", Section{Path: []int{1}, Spec: "HEADER.FIELDS.NOT", Fields: []string{"X-A"}}, "1.HEADER.FIELDS.NOT (X-A)"},
		{`HEADER.FIELDS ("Subject" "a b" "q\"\\")`, Section{Spec: "HEADER.FIELDS", Fields: []string{"SUBJECT", "A B", `Q"\`}}, `HEADER.FIELDS (SUBJECT "A B" "Q\"\\")`},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
		if s := got.String(); s != tc.str {
			t.Errorf("String of %q = %q, want %q", tc.in, s, tc.str)
		}
	}
}

func TestParseSectionRejects(t *testing.T) {
	for _, in := range []string{
		"0", "1.0", "01", "1.", ".1", "1..2", "4294967296", "BODY", "MIME", "1.MIMEX", "HEADER.FIELDS",
		"HEADER.FIELDS ()", "HEADER.FIELDS (a", "HEADER.FIELDS a)", "HEADER.FIELDS (a  b)", "HEADER.FIELDS (a:b)",
		`HEADER.FIELDS ("")`, `HEADER.FIELDS ("a\b")`, "HEADER.FIELDS (\"a\x01\")", "HEADER (a)", "TEXT ", " 1", "1 ",
		"1.HEADER.FIELDS  (a)", "HEADER.FIELDS (a) ", "1a", "HEADER.FIELDS ({3}\r\nabc)",
	} {
		if s, err := Parse(in); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %#v, %v; want ErrSyntax", in, s, err)
		}
	}
	if _, err := ParseBinary("1.2"); err != nil {
		t.Errorf("ParseBinary(1.2): %v", err)
	}
	for _, in := range []string{"HEADER", "1.MIME", "1.TEXT", "0"} {
		if _, err := ParseBinary(in); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseBinary(%q): %v", in, err)
		}
	}
}

func TestSectionValidate(t *testing.T) {
	for _, s := range []Section{
		{Spec: "MIME"}, {Spec: "HEADER.FIELDS"}, {Path: []int{0}}, {Spec: "BODY"}, {Spec: "TEXT", Fields: []string{"A"}},
	} {
		if err := s.Validate(); !errors.Is(err, ErrSyntax) {
			t.Errorf("Validate(%#v) = %v", s, err)
		}
	}
}

// FuzzSection: Parse never panics; what it accepts is valid, prints in a
// form that parses back to the same section, and that form is canonical.
func FuzzSection(f *testing.F) {
	for _, s := range []string{"", "1", "1.2.3", "HEADER", "TEXT", "2.MIME", "HEADER.FIELDS (From To)",
		`1.HEADER.FIELDS.NOT ("X-A" b)`, "1.0", "HEADER.FIELDS ()"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sec, err := Parse(in)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q): error %v is not ErrSyntax", in, err)
			}
			return
		}
		if err := sec.Validate(); err != nil {
			t.Fatalf("Parse(%q) accepted an invalid section: %v", in, err)
		}
		out := sec.String()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(String(Parse(%q))) = Parse(%q): %v", in, out, err)
		}
		if !reflect.DeepEqual(again, sec) {
			t.Fatalf("round trip of %q: %#v -> %q -> %#v", in, sec, out, again)
		}
		if again.String() != out {
			t.Fatalf("String not canonical: %q -> %q", out, again.String())
		}
		if bin, err := ParseBinary(in); (err == nil) != sec.PartOnly() || err == nil && !reflect.DeepEqual(bin, sec) {
			t.Fatalf("ParseBinary(%q) = %#v, %v", in, bin, err)
		}
	})
}
