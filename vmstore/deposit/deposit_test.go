package deposit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

func testStore(t *testing.T) *vmstore.Store {
	t.Helper()
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1,
		Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func account(t *testing.T, st *vmstore.Store, name string, q vmstore.Quota) {
	t.Helper()
	if _, err := st.CreateAccount(vmstore.AccountSpec{Name: name, Password: "x"}); err != nil {
		t.Fatal(err)
	}
	if q != (vmstore.Quota{}) {
		if err := st.SetQuota(name, q); err != nil {
			t.Fatal(err)
		}
	}
}

// wavProbe recognises the 44-byte WAV header of µ-law audio (what
// transcode's prober does for real, which this package may not import).
func wavProbe(head []byte, size int64) (string, time.Duration, bool) {
	if len(head) < 44 || string(head[:4]) != "RIFF" || string(head[8:12]) != "WAVE" {
		return "", 0, false
	}
	if size < 0 {
		return "audio/wav", 0, true
	}
	return "audio/wav", time.Duration(size-44) * time.Second / 8000, true
}

func wav(sec int) []byte {
	n := 8000 * sec
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(n+36))
	b = append(b, "WAVEfmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 7)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint32(b, 8000)
	b = binary.LittleEndian.AppendUint32(b, 8000)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 8)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	return append(b, bytes.Repeat([]byte{0x7f}, n)...)
}

const plain = "From: a@example.net\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nhello\r\n"

// TestDepositWrapsAudio: bare audio becomes a VPIM voice message with its
// Content-Duration; a ready message is stored byte for byte.
func TestDepositWrapsAudio(t *testing.T) {
	st := testStore(t)
	account(t, st, "u", vmstore.Quota{})
	file := wav(3)
	res, err := Deposit(st, "u", bytes.NewReader(file), Options{Probe: wavProbe, Size: int64(len(file)), From: "+15551234567"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Message.Context != vmstore.ContextVoice {
		t.Fatalf("context %q", res.Message.Context)
	}
	raw := readAll(t, st, &res.Message)
	for _, want := range []string{"Message-Context: voice-message", "Content-Duration: 3", "multipart/voice-message"} {
		if !strings.Contains(raw, want) {
			t.Fatalf("no %q in\n%.600s", want, raw)
		}
	}
	res, err = Deposit(st, "u", strings.NewReader(plain), Options{Probe: wavProbe})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, st, &res.Message); got != plain {
		t.Fatalf("stored %q", got)
	}
	if _, err := Deposit(st, "u", bytes.NewReader([]byte{0, 1, 2, 3}), Options{Probe: wavProbe}); !errors.Is(err, ErrUnsupportedMedia) {
		t.Fatalf("binary junk: %v", err)
	}
}

func readAll(t *testing.T, st *vmstore.Store, m *vmstore.Message) string {
	t.Helper()
	var b strings.Builder
	r := st.OpenMessage(m).Reader()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// TestDepositEachQuota: three recipients, one over quota and one unknown:
// the others get the message (one blob), the over-quota one nothing, with
// a QuotaError that says whether the mailbox is full.
func TestDepositEachQuota(t *testing.T) {
	st := testStore(t)
	account(t, st, "a", vmstore.Quota{})
	account(t, st, "b", vmstore.Quota{Messages: 1})
	account(t, st, "c", vmstore.Quota{Bytes: 1 << 20})
	if _, err := Deposit(st, "b", strings.NewReader(plain), Options{}); err != nil {
		t.Fatal(err)
	}
	msg := plain + strings.Repeat("x", 1000) + "\r\n"
	res, err := DepositEach(st, []string{"a", "b", "c", "nobody", "a"}, strings.NewReader(msg), Options{Service: "lmtp"})
	if err != nil {
		t.Fatal(err)
	}
	var qe *QuotaError
	if !errors.As(res[1].Err, &qe) || !errors.Is(res[1].Err, vmstore.ErrOverQuota) || !qe.Full() {
		t.Fatalf("b: %v", res[1].Err)
	}
	if !errors.Is(res[3].Err, vmstore.ErrNotFound) {
		t.Fatalf("nobody: %v", res[3].Err)
	}
	for _, i := range []int{0, 2, 4} {
		if res[i].Err != nil {
			t.Fatalf("%s: %v", res[i].User, res[i].Err)
		}
		if got := readAll(t, st, &res[i].Res.Message); got != msg {
			t.Fatalf("%s: stored %q", res[i].User, got)
		}
	}
	if res[0].Res.Message.Blob != res[2].Res.Message.Blob || res[0].Res.Message.UID == res[4].Res.Message.UID {
		t.Fatalf("copies: %+v %+v %+v", res[0].Res.Message, res[2].Res.Message, res[4].Res.Message)
	}
	if u, _ := st.Usage("b"); u.Messages != 1 {
		t.Fatalf("b holds %d messages", u.Messages)
	}
	// RCPT-time check: c has room for 1000 bytes but not for 2 MiB.
	if err := CheckQuota(st, "c", 1000); err != nil {
		t.Fatal(err)
	}
	err = CheckQuota(st, "c", 2<<20)
	if !errors.As(err, &qe) || qe.Full() || qe.OverBytes <= 0 {
		t.Fatalf("c: %v", err)
	}
	if err := CheckQuota(st, "b", 0); !errors.As(err, &qe) || !qe.Full() {
		t.Fatalf("b: %v", err)
	}
	if err := CheckQuota(st, "nobody", 0); !errors.Is(err, vmstore.ErrNotFound) {
		t.Fatalf("nobody: %v", err)
	}
}

// TestDepositEachConcurrent: deliveries to overlapping sets of accounts,
// in different orders, from several goroutines, neither deadlock nor lose
// a copy; each account ends with one message per delivery that named it.
func TestDepositEachConcurrent(t *testing.T) {
	st := testStore(t)
	users := []string{"a", "b", "c", "d"}
	for _, u := range users {
		account(t, st, u, vmstore.Quota{})
	}
	const rounds = 20
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func(g int) {
			for i := 0; i < rounds; i++ {
				to := []string{users[g], users[(g+1)%4], users[(g+3)%4]}
				msg := fmt.Sprintf("Subject: %d/%d\r\n\r\nbody %d %d\r\n", g, i, g, i)
				res, err := DepositEach(st, to, strings.NewReader(msg), Options{})
				if err == nil {
					for _, r := range res {
						if r.Err != nil {
							err = r.Err
						}
					}
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range users {
		if n, _ := st.Usage(u); n.Messages != 3*rounds {
			t.Fatalf("%s holds %d messages, want %d", u, n.Messages, 3*rounds)
		}
	}
}
