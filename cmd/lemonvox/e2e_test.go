package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/admin"
	"github.com/lemonvox/lemonvox/notify"
)

// buildBinaries compiles lemonvoxd and lemonvox once per test binary run.
func buildBinaries(t *testing.T) (daemon, cli string) {
	t.Helper()
	dir := t.TempDir()
	daemon, cli = filepath.Join(dir, "lemonvoxd"), filepath.Join(dir, "lemonvox")
	for out, pkg := range map[string]string{daemon: "../lemonvoxd", cli: "."} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return daemon, cli
}

type daemonProc struct {
	cmd  *exec.Cmd
	data string
	log  *bytes.Buffer
	ri   *admin.RunInfo
}

// startDaemon starts lemonvoxd on a fresh data directory with every
// listener but the admin API (on a free port) disabled.
func startDaemon(t *testing.T, bin, data string, extra ...string) *daemonProc {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "lemonvox.toml")
	conf := strings.Join(extra, "\n") + `
[imap]
listen = ""
listen_tls = ""
[lmtp]
listen = ""
[submission]
listen = ""
[rtsp]
listen = ""
listen_tls = ""
[sip]
listen = ""
[admin]
listen = "127.0.0.1:0"
`
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{data: data, log: &bytes.Buffer{}}
	d.cmd = exec.Command(bin, "-config", cfg, "-data", data)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			_ = d.cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ri, err := admin.ReadRunInfo(data); err == nil {
			d.ri = ri
			return d
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("daemon did not start:\n%s", d.log)
	return nil
}

func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon exit: %v\n%s", err, d.log)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("daemon did not stop on SIGTERM\n%s", d.log)
	}
}

// runCLI runs the lemonvox binary and returns exit code and output.
func runCLI(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String()
}

// pcmWAV writes a 16-bit mono PCM WAV of a tone (test input).
func pcmWAV(t *testing.T, path string, seconds float64) {
	t.Helper()
	const rate = 8000
	n := int(seconds * rate)
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	binary.Write(&b, le, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, le, uint32(16))
	binary.Write(&b, le, uint16(1))
	binary.Write(&b, le, uint16(1))
	binary.Write(&b, le, uint32(rate))
	binary.Write(&b, le, uint32(2*rate))
	binary.Write(&b, le, uint16(2))
	binary.Write(&b, le, uint16(16))
	b.WriteString("data")
	binary.Write(&b, le, uint32(2*n))
	for i := 0; i < n; i++ {
		binary.Write(&b, le, int16(8000*math.Sin(2*math.Pi*440*float64(i)/rate)))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func expect(t *testing.T, code int, out string, wantCode int, wantOut ...string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("exit %d, want %d; output:\n%s", code, wantCode, out)
	}
	for _, w := range wantOut {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestCLIAgainstDaemon(t *testing.T) {
	daemonBin, cli := buildBinaries(t)
	data := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, daemonBin, data)
	files := t.TempDir()

	// The demo subscriber and its sample message exist on first start.
	code, out := runCLI(t, cli, "-data", data, "user", "list")
	expect(t, code, out, 0, "demo")
	code, out = runCLI(t, cli, "-data", data, "mwi", "demo")
	expect(t, code, out, 0, "Messages-Waiting: yes", "voice-message:", "1/0 (0/0)")
	code, out = runCLI(t, cli, "ls", "demo", "-data", data)
	expect(t, code, out, 0, "Welcome to Lemonvox", "voice-message")

	// Flags after positional arguments.
	code, out = runCLI(t, cli, "-data", data, "user", "add", "alice", "--password", "s3cret", "--pin", "4321", "--quota", "100K")
	expect(t, code, out, 0, "user alice created")
	code, out = runCLI(t, cli, "-data", data, "user", "add", "alice", "--password", "x")
	expect(t, code, out, 1, "exists")

	wav := filepath.Join(files, "msg.wav")
	pcmWAV(t, wav, 2)
	code, out = runCLI(t, cli, "-data", data, "deposit", "alice", wav, "--urgent", "--from", "+15557654321")
	expect(t, code, out, 0, "deposited INBOX uid 1", "voice-message", "2.0 s")
	code, out = runCLI(t, cli, "-data", data, "mwi", "alice")
	expect(t, code, out, 0, "Messages-Waiting: yes", "1/0 (1/0)")

	// Bad input.
	empty := filepath.Join(files, "empty.wav")
	os.WriteFile(empty, nil, 0o600)
	code, out = runCLI(t, cli, "-data", data, "deposit", "alice", empty)
	expect(t, code, out, 1, "empty")
	code, out = runCLI(t, cli, "-data", data, "deposit", "nobody", wav)
	expect(t, code, out, 3, `unknown account "nobody"`)
	code, out = runCLI(t, cli, "-data", data, "deposit", "alice", filepath.Join(files, "missing.wav"))
	expect(t, code, out, 3, "no such file")
	code, out = runCLI(t, cli, "-data", data, "deposit", "alice")
	expect(t, code, out, 2, "usage")
	code, out = runCLI(t, cli, "-data", data, "frobnicate")
	expect(t, code, out, 2, "unknown verb")
	big := filepath.Join(files, "big.wav")
	pcmWAV(t, big, 8) // 128 KB > 100 KiB quota
	code, out = runCLI(t, cli, "-data", data, "deposit", "alice", big)
	expect(t, code, out, 1, "over quota")
	code, out = runCLI(t, cli, "-data", data, "ls", "alice")
	expect(t, code, out, 0, "INBOX: 1 messages")
	junk := filepath.Join(files, "junk.bin")
	os.WriteFile(junk, []byte{0, 1, 2, 3, 0xff}, 0o600)
	code, out = runCLI(t, cli, "-data", data, "deposit", "alice", junk)
	expect(t, code, out, 1, "neither a supported audio file nor an RFC 5322 message")

	// Malformed MIME is stored, not rejected.
	bad := filepath.Join(files, "bad.eml")
	os.WriteFile(bad, []byte("Subject: broken\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64"), 0o600)
	code, out = runCLI(t, cli, "-data", data, "deposit", "alice", bad)
	expect(t, code, out, 0, "deposited INBOX uid 2")
	code, out = runCLI(t, cli, "-data", data, "ls", "alice")
	expect(t, code, out, 0, "INBOX: 2 messages", "broken")

	code, out = runCLI(t, cli, "-data", data, "user", "passwd", "alice", "--pin", "12")
	expect(t, code, out, 1, "PIN must be")

	// Backup through the daemon, then stop it cleanly.
	bk := filepath.Join(files, "lemonvox.backup")
	code, out = runCLI(t, cli, "-data", data, "backup", bk)
	expect(t, code, out, 0, "backup written")
	d.stop(t)
	if _, err := os.Stat(admin.RunInfoPath(data)); !os.IsNotExist(err) {
		t.Fatalf("run info left after stop: %v", err)
	}
	// Offline: the CLI opens the store itself.
	code, out = runCLI(t, cli, "-data", data, "ls", "alice")
	expect(t, code, out, 0, "INBOX: 2 messages")
	// Restore into a new directory and read it offline.
	data2 := filepath.Join(t.TempDir(), "restored")
	code, out = runCLI(t, cli, "-data", data2, "restore", bk)
	expect(t, code, out, 0, "restored")
	code, out = runCLI(t, cli, "-data", data2, "ls", "alice")
	expect(t, code, out, 0, "INBOX: 2 messages", "broken")
	code, out = runCLI(t, cli, "-data", data2, "restore", bk)
	expect(t, code, out, 1, "not empty")
	code, out = runCLI(t, cli, "-data", data2, "mwi", "alice")
	expect(t, code, out, 0, "2/0 (1/0)")
}

func TestAdminAPIProblems(t *testing.T) {
	daemonBin, _ := buildBinaries(t)
	d := startDaemon(t, daemonBin, filepath.Join(t.TempDir(), "data"))
	base, tok := d.ri.URL, d.ri.Token
	call := func(method, path, token, ctype string, body io.Reader) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, base+path, body)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	wantProblem := func(status int, method, path, token, ctype string, body io.Reader) {
		t.Helper()
		resp, b := call(method, path, token, ctype, body)
		if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status %d type %q, want %d problem: %s", resp.StatusCode, resp.Header.Get("Content-Type"), status, b)
		}
		var p admin.Problem
		if err := json.Unmarshal(b, &p); err != nil || p.Status != status || p.Title == "" {
			t.Fatalf("problem body %s", b)
		}
	}
	resp, b := call("GET", "/healthz", "", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok"`) {
		t.Fatalf("healthz %d %s", resp.StatusCode, b)
	}
	wantProblem(401, "GET", "/api/v1/accounts", "", "", nil)
	wantProblem(401, "GET", "/api/v1/accounts", "wrong", "", nil)
	resp, b = call("GET", "/api/v1/accounts", tok, "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"demo"`) {
		t.Fatalf("accounts %d %s", resp.StatusCode, b)
	}
	wantProblem(400, "POST", "/api/v1/accounts", tok, "application/json", strings.NewReader(`{"name": "x"`))
	wantProblem(400, "POST", "/api/v1/accounts", tok, "application/json", strings.NewReader(`{"name":"bad name!","password":"p"}`))
	wantProblem(409, "POST", "/api/v1/accounts", tok, "application/json", strings.NewReader(`{"name":"demo","password":"p"}`))
	resp, b = call("POST", "/api/v1/accounts", tok, "application/json", strings.NewReader(`{"name":"bob","password":"p","quota":{"messages":1}}`))
	if resp.StatusCode != 201 {
		t.Fatalf("create %d %s", resp.StatusCode, b)
	}
	wantProblem(404, "POST", "/api/v1/accounts/nobody/messages", tok, "message/rfc822", strings.NewReader("Subject: x\r\n\r\nhi\r\n"))
	wantProblem(400, "POST", "/api/v1/accounts/bob/messages?context=smell", tok, "message/rfc822", strings.NewReader("Subject: x\r\n\r\nhi\r\n"))
	wantProblem(400, "POST", "/api/v1/accounts/bob/messages", tok, "message/rfc822", strings.NewReader(""))
	resp, b = call("POST", "/api/v1/accounts/bob/messages?context=fax", tok, "message/rfc822", strings.NewReader("Subject: fax\r\n\r\npage\r\n"))
	if resp.StatusCode != 201 || !strings.Contains(string(b), `"fax-message"`) {
		t.Fatalf("deposit %d %s", resp.StatusCode, b)
	}
	wantProblem(507, "POST", "/api/v1/accounts/bob/messages", tok, "message/rfc822", strings.NewReader("Subject: two\r\n\r\nover\r\n"))
	resp, b = call("GET", "/api/v1/accounts/bob/mailboxes/INBOX", tok, "", nil)
	if resp.StatusCode != 200 || strings.Count(string(b), `"uid"`) != 1 {
		t.Fatalf("list after over-quota: %s", b)
	}
	wantProblem(404, "GET", "/api/v1/accounts/bob/mailboxes/Nope", tok, "", nil)
	wantProblem(404, "DELETE", "/api/v1/accounts/nobody", tok, "", nil)
	wantProblem(404, "GET", "/api/v1/nothing", tok, "", nil)
	resp, b = call("GET", "/api/v1/accounts/bob/mwi", tok, "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"fax-message"`) {
		t.Fatalf("mwi %s", b)
	}
	resp, b = call("GET", "/metrics", "", "", nil)
	for _, m := range []string{"lemonvox_deposits_total", "lemonvox_deposit_bytes_total", "lemonvox_store_vlog_bytes", "lemonvox_open_sessions"} {
		if !strings.Contains(string(b), m) {
			t.Fatalf("metrics lack %s", m)
		}
	}
	resp, _ = call("DELETE", "/api/v1/accounts/bob", tok, "", nil)
	if resp.StatusCode != 204 {
		t.Fatalf("delete %d", resp.StatusCode)
	}
	d.stop(t)
}

func TestConvertAndProbeVerbs(t *testing.T) {
	_, cli := buildBinaries(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.wav")
	pcmWAV(t, in, 1.5)
	code, out := runCLI(t, cli, "convert", in, filepath.Join(dir, "out.wav"), "--codec", "g722")
	expect(t, code, out, 0, "g722, 16000 Hz, 1 channel(s), 1.500 s")
	code, out = runCLI(t, cli, "probe", filepath.Join(dir, "out.wav"))
	expect(t, code, out, 0, "wav, g722, 16000 Hz")
	code, out = runCLI(t, cli, "convert", "--codec", "pcma", in, filepath.Join(dir, "out.au"))
	expect(t, code, out, 0, "au, pcma, 8000 Hz")
	code, out = runCLI(t, cli, "convert", in, filepath.Join(dir, "x.wav"), "--codec", "opus")
	expect(t, code, out, 2, "unknown codec")
	code, out = runCLI(t, cli, "probe", filepath.Join(dir, "nope.wav"))
	expect(t, code, out, 3, "no such file")
	os.WriteFile(filepath.Join(dir, "junk.wav"), []byte("junk"), 0o600)
	code, out = runCLI(t, cli, "probe", filepath.Join(dir, "junk.wav"))
	expect(t, code, out, 1, "unknown format")
	code, out = runCLI(t, cli, "convert", in, filepath.Join(dir, "out.gsm"))
	expect(t, code, out, 0, "wrote")
	code, out = runCLI(t, cli, "formats")
	expect(t, code, out, 0, "wav  pcmu pcma l16 g722 g726 gsm")
}

// A webhook configured in the daemon receives the deposit as a signed
// RFC 5423 event.
func TestDaemonWebhook(t *testing.T) {
	daemonBin, cli := buildBinaries(t)
	secret := "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	key, _ := notify.DecodeSecret(secret)
	got := make(chan []byte, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := notify.Verify([][]byte{key}, r.Header, b, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(400)
			return
		}
		got <- b
	}))
	defer recv.Close()
	hook := fmt.Sprintf("hostname = \"vm.example.net\"\n[[notify.webhook]]\nid = \"test\"\nurl = %q\nsecrets = [%q]\nevents = [\"MessageNew\"]\nallow_insecure = true\nallow_private = true\n", recv.URL, secret)
	data := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, daemonBin, data, hook)
	wav := filepath.Join(t.TempDir(), "m.wav")
	pcmWAV(t, wav, 1)
	code, out := runCLI(t, cli, "-data", data, "deposit", "demo", wav, "--from", "+15550001")
	expect(t, code, out, 0, "uid 2")
	deadline := time.After(20 * time.Second)
	for {
		select {
		case b := <-got:
			s := string(b)
			if !strings.Contains(s, `"uidset":"2"`) {
				continue // the demo message's own event
			}
			if !strings.Contains(s, `"event":"MessageNew"`) || !strings.Contains(s, "imap://demo@vm.example.net/INBOX;UIDVALIDITY=") {
				t.Fatalf("payload %s", s)
			}
			d.stop(t)
			return
		case <-deadline:
			t.Fatalf("no webhook\n%s", d.log)
		}
	}
}
