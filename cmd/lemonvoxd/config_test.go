package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An admin listener off loopback without TLS is refused at start unless
// the configuration accepts the clear-text token explicitly.
func TestAdminPlaintextOffLoopbackRefused(t *testing.T) {
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "lemonvox.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		conf string
		ok   bool
	}{
		{"[admin]\nlisten = \"127.0.0.1:8080\"\n", true},
		{"[admin]\nlisten = \"[::1]:8080\"\n", true},
		{"[admin]\nlisten = \"localhost:8080\"\n", true},
		{"[admin]\nlisten = \"\"\n", true},
		{"[admin]\nlisten = \"0.0.0.0:8080\"\n", false},
		{"[admin]\nlisten = \":8080\"\n", false},
		{"[admin]\nlisten = \"192.0.2.10:8080\"\n", false},
		{"[admin]\nlisten = \"192.0.2.10:8080\"\ntls = true\n", true},
		{"[admin]\nlisten = \"0.0.0.0:8080\"\nallow_plaintext = true\n", true},
	} {
		_, err := loadConfig(write(tc.conf))
		if tc.ok && err != nil {
			t.Errorf("%q: %v", tc.conf, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "admin.tls")) {
			t.Errorf("%q: accepted (%v)", tc.conf, err)
		}
	}
}
