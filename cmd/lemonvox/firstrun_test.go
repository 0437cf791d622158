package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lemonvox/lemonvox/admin"
)

// TestFirstRun: what a new user meets, run with one build of the binaries.
func TestFirstRun(t *testing.T) {
	daemonBin, cli := buildBinaries(t)
	t.Run("ReadmeTour", func(t *testing.T) { testReadmeTour(t, daemonBin, cli) })
	t.Run("StaleRunFile", func(t *testing.T) { testStaleRunFile(t, daemonBin, cli) })
	t.Run("RestoreBringsNoDemo", func(t *testing.T) { testRestoreBringsNoDemo(t, daemonBin, cli) })
	t.Run("TakenPort", func(t *testing.T) { testTakenPort(t, daemonBin) })
	t.Run("UnknownAccount", func(t *testing.T) { testUnknownAccount(t, daemonBin, cli) })
	t.Run("RawFiles", func(t *testing.T) { testRawFiles(t, cli) })
}

// testReadmeTour runs every lemonvox command of the README's tour, in order,
// as pasted from a fresh clone: from the directory that holds
// ./lemonvox-data, with no other file at hand.
func testReadmeTour(t *testing.T, daemonBin, cli string) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, tour, ok := strings.Cut(string(readme), "## Five-minute tour")
	if !ok {
		t.Fatal("README has no tour")
	}
	tour, _, _ = strings.Cut(tour, "\n## ")
	var cmds []string
	for _, l := range strings.Split(tour, "\n") {
		if strings.HasPrefix(l, "./bin/lemonvox ") {
			cmd, _, _ := strings.Cut(l, "#")
			cmds = append(cmds, strings.TrimSpace(strings.TrimPrefix(cmd, "./bin/lemonvox ")))
		}
	}
	if len(cmds) < 5 {
		t.Fatalf("tour commands: %q", cmds)
	}
	work := t.TempDir()
	d := startDaemon(t, daemonBin, filepath.Join(work, "lemonvox-data"))
	defer d.stop(t)
	for _, c := range cmds {
		args := strings.Fields(strings.ReplaceAll(c, "/tmp/lemonvox.backup", filepath.Join(work, "tour.backup")))
		cmd := exec.Command(cli, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "LEMONVOX_DATA=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README command %q: %v\n%s", c, err, out)
		}
		if strings.HasPrefix(c, "mwi alice") && !strings.Contains(string(out), "1/0 (1/0)") {
			t.Fatalf("%q: %s", c, out)
		}
	}
}

// A run file left by a daemon that died, naming a process that lives (a
// reused PID, or a zombie), neither blocks a start nor the CLI.
func testStaleRunFile(t *testing.T, daemonBin, cli string) {
	data := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, daemonBin, data)
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_ = d.cmd.Wait()
	ri := *d.ri
	ri.PID = os.Getpid() // alive
	if err := admin.WriteRunInfo(data, ri); err != nil {
		t.Fatal(err)
	}
	code, out := runCLI(t, cli, "-data", data, "user", "list")
	expect(t, code, out, 0, "demo")
	d2 := startDaemon(t, daemonBin, data)
	if d2.ri.PID != d2.cmd.Process.Pid {
		t.Fatalf("run info names pid %d, daemon is %d", d2.ri.PID, d2.cmd.Process.Pid)
	}
	code, out = runCLI(t, cli, "-data", data, "mwi", "demo")
	expect(t, code, out, 0, "Messages-Waiting: yes")
	// A second daemon on the same data directory is refused, by the lock.
	cfg := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(cfg, []byte("[imap]\nlisten = \"\"\nlisten_tls = \"\"\n[lmtp]\nlisten = \"\"\n[submission]\nlisten = \"\"\n[rtsp]\nlisten = \"\"\nlisten_tls = \"\"\n[sip]\nlisten = \"\"\n[admin]\nlisten = \"127.0.0.1:0\"\n"), 0o600)
	out2, err := exec.Command(daemonBin, "-config", cfg, "-data", data).CombinedOutput()
	if err == nil || !strings.Contains(string(out2), fmt.Sprintf("a daemon (pid %d) already runs", d2.cmd.Process.Pid)) {
		t.Fatalf("second daemon: %v\n%s", err, out2)
	}
	d2.stop(t)
}

// A restored store never gets the demo subscriber and its well-known
// password, whatever was or was not in the data directory.
func testRestoreBringsNoDemo(t *testing.T, daemonBin, cli string) {
	data := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, daemonBin, data)
	code, out := runCLI(t, cli, "-data", data, "user", "del", "demo")
	expect(t, code, out, 0)
	code, out = runCLI(t, cli, "-data", data, "user", "add", "alice", "--password", "s3cret")
	expect(t, code, out, 0)
	bk := filepath.Join(t.TempDir(), "b.backup")
	code, out = runCLI(t, cli, "-data", data, "backup", bk)
	expect(t, code, out, 0, "backup written")
	d.stop(t)

	data2 := filepath.Join(t.TempDir(), "restored")
	code, out = runCLI(t, cli, "-data", data2, "restore", bk)
	expect(t, code, out, 0, "restored")
	d2 := startDaemon(t, daemonBin, data2)
	code, out = runCLI(t, cli, "-data", data2, "user", "list")
	expect(t, code, out, 0, "alice")
	if strings.Contains(out, "demo") {
		t.Fatalf("the restored store got the demo subscriber:\n%s", out)
	}
	d2.stop(t)
	if strings.Contains(d2.log.String(), "created demo subscriber") {
		t.Fatalf("daemon log:\n%s", d2.log)
	}
}

// A second daemon on a taken port names the setting to change and leaves
// nothing behind.
func testTakenPort(t *testing.T, daemonBin string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	cfg := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[imap]\nlisten = %q\nlisten_tls = \"\"\n[lmtp]\nlisten = \"\"\n[submission]\nlisten = \"\"\n[rtsp]\nlisten = \"\"\nlisten_tls = \"\"\n[sip]\nlisten = \"\"\n[admin]\nlisten = \"127.0.0.1:0\"\n", addr)), 0o600)
	data := filepath.Join(t.TempDir(), "data")
	out, err := exec.Command(daemonBin, "-config", cfg, "-data", data).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v\n%s", err, out)
	}
	want := fmt.Sprintf("imap.listen %s: address already in use (set imap.listen in the config or free the port)", addr)
	if !strings.Contains(string(out), want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
	if strings.Contains(string(out), "stopped cleanly") {
		t.Fatalf("a failed start says it stopped cleanly:\n%s", out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("the failed start left the data directory: %v", err)
	}
}

func testUnknownAccount(t *testing.T, daemonBin, cli string) {
	data := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, daemonBin, data)
	wav := filepath.Join(t.TempDir(), "s.wav")
	code, out := runCLI(t, cli, "sample", wav)
	expect(t, code, out, 0, "4.000 s")
	for _, args := range [][]string{{"ls", "nobody"}, {"mwi", "nobody"}, {"deposit", "nobody", wav}} {
		code, out := runCLI(t, cli, append([]string{"-data", data}, args...)...)
		expect(t, code, out, 3, `unknown account "nobody"`)
		if strings.Contains(out, "INBOX") {
			t.Fatalf("%v: %s", args, out)
		}
	}
	req, _ := http.NewRequest("GET", d.ri.URL+"/api/v1/accounts/nobody/mwi", nil)
	req.Header.Set("Authorization", "Bearer "+d.ri.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p admin.Problem
	json.NewDecoder(resp.Body).Decode(&p)
	if resp.StatusCode != 404 || !strings.Contains(p.Detail, `unknown account "nobody"`) {
		t.Fatalf("API: %d %+v", resp.StatusCode, p)
	}
	d.stop(t)
	// And offline, through the store.
	code, out = runCLI(t, cli, "-data", data, "ls", "nobody")
	expect(t, code, out, 3, `unknown account "nobody"`)
}

// wideWAVFile writes a WAV of float or 24-bit samples of a tone.
func wideWAVFile(t *testing.T, path string, tag uint16, bits int, seconds float64) {
	t.Helper()
	const rate = 8000
	n := int(seconds * rate)
	le := binary.LittleEndian
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, le, uint32(36+n*bits/8))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), tag, uint16(1), uint32(rate), uint32(rate * bits / 8), uint16(bits / 8), uint16(bits)} {
		binary.Write(&b, le, v)
	}
	b.WriteString("data")
	binary.Write(&b, le, uint32(n*bits/8))
	for i := 0; i < n; i++ {
		v := 0.25 * math.Sin(2*math.Pi*440*float64(i)/rate)
		switch {
		case tag == 3 && bits == 32:
			binary.Write(&b, le, float32(v))
		case bits == 24:
			s := int32(v * (1 << 23))
			b.Write([]byte{byte(s), byte(s >> 8), byte(s >> 16)})
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func testRawFiles(t *testing.T, cli string) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.wav")
	pcmWAV(t, in, 1.5)
	// Every raw extension convert writes, it reads back.
	for _, ext := range []string{".ul", ".al", ".g722", ".g726", ".gsm", ".sln"} {
		raw := filepath.Join(dir, "x"+ext)
		code, out := runCLI(t, cli, "convert", in, raw)
		expect(t, code, out, 0, "wrote")
		code, out = runCLI(t, cli, "probe", raw)
		expect(t, code, out, 0, "raw, ")
		back := filepath.Join(dir, "back"+strings.TrimPrefix(ext, ".")+".wav")
		code, out = runCLI(t, cli, "convert", raw, back)
		expect(t, code, out, 0, "wrote")
		code, out = runCLI(t, cli, "probe", back)
		if code != 0 || !(strings.Contains(out, "1.500 s") || strings.Contains(out, "1.520 s") || strings.Contains(out, "1.480 s")) {
			t.Fatalf("%s read back: %d %s", ext, code, out)
		}
	}
	// A raw file of another name takes its codec and rate from flags.
	bin := filepath.Join(dir, "x.bin")
	b, _ := os.ReadFile(filepath.Join(dir, "x.al"))
	os.WriteFile(bin, b, 0o600)
	code, out := runCLI(t, cli, "convert", bin, filepath.Join(dir, "fromflags.wav"))
	expect(t, code, out, 1, "--in-codec")
	code, out = runCLI(t, cli, "convert", bin, filepath.Join(dir, "fromflags.wav"), "--in-codec", "pcma", "--in-rate", "8000")
	expect(t, code, out, 0, "1.500 s")
	code, out = runCLI(t, cli, "probe", bin, "--in-codec", "pcma")
	expect(t, code, out, 0, "raw, pcma, 8000 Hz, 1 channel(s), 1.500 s")
	// Unknown output extensions and rates outside 8-48 kHz are refused.
	code, out = runCLI(t, cli, "convert", in, filepath.Join(dir, "x.mp3"))
	expect(t, code, out, 1, `unknown output extension ".mp3"`)
	if _, err := os.Stat(filepath.Join(dir, "x.mp3")); !os.IsNotExist(err) {
		t.Fatal("x.mp3 written")
	}
	code, out = runCLI(t, cli, "convert", in, filepath.Join(dir, "hi.wav"), "--rate", "96000")
	expect(t, code, out, 2, "--rate 96000: from 8000 to 48000 Hz")
	code, out = runCLI(t, cli, "convert", in, filepath.Join(dir, "lo.wav"), "--rate", "4000")
	expect(t, code, out, 2, "--rate 4000")
	// Float and 24-bit PCM WAVs convert.
	for _, w := range []struct {
		tag  uint16
		bits int
	}{{3, 32}, {1, 24}} {
		p := filepath.Join(dir, fmt.Sprintf("w%d-%d.wav", w.tag, w.bits))
		wideWAVFile(t, p, w.tag, w.bits, 1)
		code, out = runCLI(t, cli, "probe", p)
		expect(t, code, out, 0, "1.000 s")
		code, out = runCLI(t, cli, "convert", p, p+".ul.wav", "--codec", "pcmu")
		expect(t, code, out, 0, "wav, pcmu, 8000 Hz, 1 channel(s), 1.000 s")
		code, out = runCLI(t, cli, "convert", p, p+".l16.wav")
		expect(t, code, out, 0, "wav, l16, 8000 Hz, 1 channel(s), 1.000 s")
	}
}
