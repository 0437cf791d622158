package notify

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

func TestVVMSyncFormatSpecExamples(t *testing.T) {
	// notes s8.2: //VVM:SYNC:ev=NM;id=42;c=3;t=v;s=+15557654321;dt=02/08/2026 12:53 +0200;l=27
	nm := VVMSync{Event: VVMNewMessage, UID: 42, Unseen: 3, Type: "v", Sender: "+15557654321",
		Time: time.Date(2026, 8, 2, 12, 53, 0, 0, time.FixedZone("", 2*3600)), Duration: 27}
	if got, want := nm.Format(""), "//VVM:SYNC:ev=NM;id=42;c=3;t=v;s=+15557654321;dt=02/08/2026 12:53 +0200;l=27"; got != want {
		t.Fatalf("NM\n got %s\nwant %s", got, want)
	}
	if got := (VVMSync{Event: VVMMailboxUpdate}).Format(""); got != "//VVM:SYNC:ev=MBU;c=0" {
		t.Fatal(got)
	}
	if got := (VVMSync{Event: VVMGreeting, Unseen: 2}).Format("//CVVM"); got != "//CVVM:SYNC:ev=GU;c=2" {
		t.Fatal(got)
	}
	// Withheld number: s= empty; a ";" can never leak into a value.
	w := VVMSync{Event: VVMNewMessage, UID: 1, Sender: "", Time: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)}.Format("")
	ev, f, err := ParseVVMSMS("//VVM", w)
	if err != nil || ev != "SYNC" || f["s"] != "" || f["dt"] != "02/01/2026 03:04 +0000" || f["l"] != "0" {
		t.Fatalf("%s -> %s %v %v", w, ev, f, err)
	}
	if got := (VVMSync{Event: VVMNewMessage, Sender: "+1;2"}).Format(""); got[len("//VVM:SYNC:ev=NM;id=0;c=0;t=v;s="):][:2] != "+1" {
		t.Fatal(got)
	}
	// Round trip through the framework parser rules.
	ev, f, err = ParseVVMSMS("//VVM", nm.Format(""))
	if err != nil || ev != "SYNC" {
		t.Fatal(ev, err)
	}
	for k, v := range map[string]string{"ev": "NM", "id": "42", "c": "3", "t": "v", "s": "+15557654321", "dt": "02/08/2026 12:53 +0200", "l": "27"} {
		if f[k] != v {
			t.Errorf("%s = %q, want %q", k, f[k], v)
		}
	}
	if _, err := time.Parse(VVMDateLayout, f["dt"]); err != nil {
		t.Fatal(err)
	}
}

func TestVVMParserRules(t *testing.T) {
	for _, c := range []struct {
		in     string
		ev     string
		fields map[string]string
		bad    bool
	}{
		{in: "//VVM:STATUS:st=R;rc=0;srv=vm.example.net;ipt=993;u=1555@vm.example.net;pw=Xk39sLq2;pw_len=4-9", ev: "STATUS",
			fields: map[string]string{"st": "R", "rc": "0", "srv": "vm.example.net", "ipt": "993", "u": "1555@vm.example.net", "pw": "Xk39sLq2", "pw_len": "4-9"}},
		{in: "//VVM:SYNC:ev=MBU;c=0;", ev: "SYNC", fields: map[string]string{"ev": "MBU", "c": "0"}}, // trailing ;
		{in: "//VVM:SYNC:;;ev=NM;;s=", ev: "SYNC", fields: map[string]string{"ev": "NM", "s": ""}},   // empty entries, empty value
		{in: "//VVM:SYNC:x=a=b:c", ev: "SYNC", fields: map[string]string{"x": "a=b:c"}},              // = and : in values
		{in: "//VVM:SYNC:", ev: "SYNC", fields: map[string]string{}},                                 // no fields
		{in: "MBOXUPDATE?m=3;p=x", ev: "MBOXUPDATE", fields: map[string]string{"m": "3", "p": "x"}},  // alternative format
		{in: "//VVM:SYNC:ev", bad: true},    // entry without =
		{in: "//VVM:SYNC:=v", bad: true},    // entry without key
		{in: "//VVM:SYNC", bad: true},       // no event end
		{in: "//XYZ:SYNC:ev=NM", bad: true}, // other prefix
		{in: "SYNC?ev=NM", bad: true},       // alternative form not for SYNC
		{in: "//vvm:SYNC:ev=NM", bad: true}, // prefix is case-sensitive
	} {
		ev, f, err := ParseVVMSMS("//VVM", c.in)
		if c.bad {
			if !errors.Is(err, ErrVVMFormat) {
				t.Errorf("%q: want error, got %s %v %v", c.in, ev, f, err)
			}
			continue
		}
		if err != nil || ev != c.ev || len(f) != len(c.fields) {
			t.Errorf("%q: %s %v %v", c.in, ev, f, err)
			continue
		}
		for k, v := range c.fields {
			if f[k] != v {
				t.Errorf("%q: %s=%q, want %q", c.in, k, f[k], v)
			}
		}
	}
}

func TestCallerNumber(t *testing.T) {
	for in, want := range map[string]string{
		"+15557654321@example.net":         "+15557654321",
		`"Bob" <+15557654321@example.net>`: "+15557654321",
		"sip:5551234@pbx":                  "5551234",
		"anonymous@anonymous.invalid":      "",
		"unknown":                          "",
		"Alice <alice@example.net>":        "",
	} {
		if got := callerNumber(in); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
}

func TestVVMSinkThroughGateway(t *testing.T) {
	rc, srv, pool := newTLSReceiver(t)
	var mu sync.Mutex
	var msgs []map[string]any
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := Verify(rc.keys, r.Header, body, time.Now(), 0); err != nil {
			t.Errorf("signature: %v", err)
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		msgs = append(msgs, m)
		mu.Unlock()
	})
	s := openStore(t, "")
	mustAccount(t, s, "vv", vmstore.AccountOptions{Notify: map[string]string{"vvm_msisdn": "+15551230001"}})
	mustAccount(t, s, "novvm", vmstore.AccountOptions{})
	v := &VVMSink{URL: srv.URL, Secrets: []string{testSecret}, Store: s, TLSConfig: tlsWithRoots(pool), AllowPrivate: true, AppPort: 1808,
		Location: time.FixedZone("", 2*3600)}
	if err := v.Initialize(); err != nil {
		t.Fatal(err)
	}
	startDispatcher(t, s, t.TempDir(), v)
	deposit(t, s, "novvm")
	res := deposit(t, s, "vv")
	markSeen(t, s, "vv", res)
	waitFor(t, 5*time.Second, "2 SMS", func() bool { mu.Lock(); defer mu.Unlock(); return len(msgs) == 2 })
	waitSettled(t, s, v.Name())
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) != 2 {
		t.Fatalf("%v", msgs)
	}
	ev, f, err := ParseVVMSMS("//VVM", msgs[0]["text"].(string))
	if err != nil || ev != "SYNC" || f["ev"] != "NM" || f["id"] != "1" || f["c"] != "1" || f["t"] != "v" || f["s"] != "+15557654321" || f["l"] != "27" {
		t.Fatalf("NM: %v %v %v", msgs[0], f, err)
	}
	if _, err := time.Parse(VVMDateLayout, f["dt"]); err != nil || f["dt"][len(f["dt"])-5:] != "+0200" {
		t.Fatalf("dt %q: %v", f["dt"], err)
	}
	if msgs[0]["to"] != "+15551230001" || msgs[0]["port"] != 1808.0 {
		t.Fatalf("%v", msgs[0])
	}
	if msgs[1]["text"] != "//VVM:SYNC:ev=MBU;c=0" {
		t.Fatalf("MBU: %v", msgs[1])
	}
}
