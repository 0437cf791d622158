package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestURLHostConfig: url_host is taken as configured (and checked), or
// derived from the hostname and the IMAPS port; roles and notify access
// are checked at start.
func TestURLHostConfig(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Hostname = "vm.example.net"
	if h, err := urlHost(cfg); err != nil || h != "vm.example.net:1993" {
		t.Fatalf("derived: %q %v", h, err)
	}
	cfg.IMAP.ListenTLS = ""
	cfg.IMAP.Listen = "0.0.0.0:143"
	if h, err := urlHost(cfg); err != nil || h != "vm.example.net" {
		t.Fatalf("derived, port 143: %q %v", h, err)
	}
	cfg.IMAP.URLHost = "imap.example.net:993"
	if h, err := urlHost(cfg); err != nil || h != "imap.example.net:993" {
		t.Fatalf("configured: %q %v", h, err)
	}
	cfg.IMAP.URLHost = "imap.example.net:0"
	if _, err := urlHost(cfg); err == nil {
		t.Fatal("port 0 accepted")
	}
	cfg.IMAP.URLHost = ""
	cfg.IMAP.URLRoles = map[string][]string{"submit": {"submit"}, "stream": {"media"}}
	if r, err := newURLResolver(cfg, nil); err != nil || !r.Requester("media").OnBehalfOfAny {
		t.Fatalf("roles: %v", err)
	}
	cfg.IMAP.URLRoles = map[string][]string{"anonymous": {"x"}}
	if _, err := newURLResolver(cfg, nil); err == nil {
		t.Fatal("role anonymous accepted")
	}
	cfg.IMAP.URLRoles = nil
	cfg.Notify.URLAccess = "user+bob"
	if _, err := notifyURLFor(cfg, nil, nil); err == nil {
		t.Fatal("url_access user+bob accepted")
	}
	cfg.Notify.URLAccess = "anonymous"
	if f, err := notifyURLFor(cfg, nil, nil); err != nil || f == nil {
		t.Fatalf("url_access anonymous: %v", err)
	}
	// The keys parse from a file.
	p := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(p, []byte("[imap]\nurl_host = \"vm.example.net:993\"\nurl_roles = { submit = [\"submit\"] }\n[notify]\nurl_access = \"submit\"\nurl_lifetime = \"2h\"\n"), 0o600)
	c2, err := loadConfig(p)
	if err != nil || c2.IMAP.URLHost != "vm.example.net:993" || c2.Notify.URLLifetime.Hours() != 2 || len(c2.IMAP.URLRoles["submit"]) != 1 {
		t.Fatalf("config file: %+v %v", c2, err)
	}
}
