package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// user add refuses names outside the account-name syntax as a usage error
// (exit 2) with the reason, before touching any store.
func TestUserAddRefusesBadNames(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for _, name := range []string{".", "..", "a..b", "x/y", "bad name", "+", "a.", strings.Repeat("b", 65)} {
		var out, errb bytes.Buffer
		code := run([]string{"-data", data, "user", "add", name, "--password", "p"}, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), "bad account name") {
			t.Errorf("user add %q: exit %d, %q", name, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"-data", data, "user", "add", "+15551234567", "--password", "p"}, &out, &errb); code == exitUsage {
		t.Fatalf("a phone number was refused: %s", errb.String())
	}
}
