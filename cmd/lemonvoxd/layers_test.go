package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// allowed lists, per package of ours, the packages of ours it may import
// (ARCHITECTURE.md: arrows only point down; protocol front ends meet in
// vmstore and channel, never import each other).
var allowed = map[string][]string{
	"vmstore":         {},
	"vmstore/message": {"vmstore"},
	"vmstore/deposit": {"vmstore", "vmstore/message"},
	"transcode":       {},
	"firmware":        {},
	"authlimit":       {},
	"netlimit":        {},
	"sipep":           {"authlimit", "netlimit"},
	"channel":         {"vmstore", "vmstore/message"},
	"imap":            {"vmstore", "vmstore/message", "vmstore/deposit", "channel", "transcode", "authlimit", "netlimit"},
	"streaming":       {"vmstore", "vmstore/message", "channel", "transcode", "sipep", "authlimit", "netlimit"},
	"notify":          {"vmstore", "vmstore/message", "channel", "transcode", "sipep", "authlimit", "netlimit"},
	"smtp":            {"vmstore", "vmstore/message", "vmstore/deposit", "channel", "authlimit", "netlimit"},
	"admin":           {"vmstore", "vmstore/message", "vmstore/deposit", "channel", "transcode", "notify", "streaming", "imap", "smtp", "sipep", "firmware", "authlimit", "netlimit"},
}

var sublayers = []string{"vmstore/message", "vmstore/deposit"}

const module = "github.com/lemonvox/lemonvox/"

// TestPackageLayers fails when a package imports one of ours that the
// architecture does not allow, so the dependency direction stays checkable.
func TestPackageLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		top := topLevel(p.ImportPath)
		if strings.HasPrefix(top, "cmd") || strings.HasPrefix(top, "bench") {
			continue // wiring and benchmarks may import everything
		}
		ok, known := allowed[top]
		if !known {
			t.Errorf("package %s is not in the layer table; add it to layers_test.go", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := topLevel(imp)
			if dep == top {
				continue
			}
			if !contains(ok, dep) {
				t.Errorf("%s imports %s: not allowed by the architecture", p.ImportPath, imp)
			}
		}
	}
}

func topLevel(path string) string {
	rest := strings.TrimPrefix(path, module)
	for _, sub := range sublayers {
		if rest == sub || strings.HasPrefix(rest, sub+"/") {
			return sub
		}
	}
	top, _, _ := strings.Cut(rest, "/")
	return top
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
