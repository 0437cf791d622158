package admin

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore"
)

func durationStore(t *testing.T, maxSec int) *vmstore.Store {
	t.Helper()
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1, Prober: transcode.PartDuration,
		Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateAccount(vmstore.AccountSpec{Name: "d", Password: "x"}); err != nil {
		t.Fatal(err)
	}
	if maxSec > 0 {
		if _, err := st.SetOptions("d", vmstore.AccountOptions{Retention: vmstore.Retention{MaxDurationSec: maxSec}}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// lyingWAV is an 8 kHz µ-law WAV whose header claims claim data bytes and
// which holds real bytes of audio.
func lyingWAV(claim uint32, real int) []byte {
	le := binary.LittleEndian
	b := []byte("RIFF")
	b = le.AppendUint32(b, claim+36)
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, 7) // µ-law
	b = le.AppendUint16(b, 1)
	b = le.AppendUint32(b, 8000)
	b = le.AppendUint32(b, 8000)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 8)
	b = append(b, "data"...)
	b = le.AppendUint32(b, claim)
	return append(b, bytes.Repeat([]byte{0xff}, real)...)
}

// lyingAU is an 8 kHz µ-law AU file of the same kind.
func lyingAU(claim uint32, real int) []byte {
	be := binary.BigEndian
	b := []byte(".snd")
	for _, v := range []uint32{24, claim, 1, 8000, 1} {
		b = be.AppendUint32(b, v)
	}
	return append(b, bytes.Repeat([]byte{0xff}, real)...)
}

func TestDepositDurationFromReceivedAudio(t *testing.T) {
	cases := []struct {
		name  string
		file  []byte
		sized bool    // the size is known in advance (CLI file, Content-Length)
		max   int     // account's maxDurationSec
		want  float64 // seconds; <0: refused as too long
	}{
		{"1 KB under a WAV header claiming 2 GB", lyingWAV(0x7fffffff, 1000), true, 0, 0.125},
		{"1 KB under an AU header claiming 4 GB", lyingAU(0xfffffffe, 1000), true, 0, 0.125},
		{"1 KB WAV, size unknown", lyingWAV(0x7fffffff, 1000), false, 0, 0.125},
		{"300 s under a header claiming 1 s, max 60", lyingWAV(8000, 300*8000), true, 60, -1},
		{"300 s under a header claiming 1 s, size unknown, max 60", lyingWAV(8000, 300*8000), false, 60, -1},
		{"1 s claiming 4 GB, max 60", lyingWAV(0xfffffff0, 8000), true, 60, 1},
		{"1 s AU claiming 4 GB, max 60", lyingAU(0xfffffff0, 8000), false, 60, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := durationStore(t, c.max)
			o := DepositOptions{User: "d"}
			if c.sized {
				o.Size = int64(len(c.file))
			}
			res, err := Deposit(st, transcode.SniffAudio, bytes.NewReader(c.file), o)
			if c.want < 0 {
				if !errors.Is(err, vmstore.ErrTooBig) {
					t.Fatalf("deposit of real audio past the limit: %v (duration %v)", err, durOf(res))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := res.Message.Duration; math.Abs(d-c.want) > 0.01 {
				t.Fatalf("stored duration %v s, want %v s", d, c.want)
			}
			// The message's own Content-Duration header does not lie either.
			raw := new(bytes.Buffer)
			raw.ReadFrom(st.OpenMessage(&res.Message).Reader())
			hdr, _, _ := strings.Cut(raw.String(), "\r\n\r\n")
			if strings.Contains(hdr, "Content-Duration:") && !strings.Contains(hdr, fmt.Sprintf("Content-Duration: %d\r\n", int(math.Round(c.want)))) {
				t.Fatalf("message header claims another duration:\n%s", hdr)
			}
		})
	}
}

func durOf(res *vmstore.DepositRes) any {
	if res == nil {
		return nil
	}
	return res.Message.Duration
}

// A message deposited as it is (IMAP APPEND, LMTP, message/rfc822 over
// HTTP) with a Content-Duration header that lies about its audio part.
func TestDepositedMessageDurationIsMeasured(t *testing.T) {
	wav := lyingWAV(8000, 90*8000) // 90 s of audio, the header says 1 s
	var enc strings.Builder
	b64 := base64.StdEncoding.EncodeToString(wav)
	for len(b64) > 76 {
		enc.WriteString(b64[:76] + "\r\n")
		b64 = b64[76:]
	}
	enc.WriteString(b64 + "\r\n")
	msg := "From: a@b\r\nSubject: v\r\nContent-Duration: 5\r\nMIME-Version: 1.0\r\nContent-Type: multipart/voice-message; boundary=x\r\n\r\n" +
		"--x\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\nContent-Duration: 5\r\n\r\n" + enc.String() + "--x--\r\n"
	st := durationStore(t, 60)
	_, err := st.Deposit(vmstore.DepositReq{User: "d", Body: strings.NewReader(msg)})
	if !errors.Is(err, vmstore.ErrTooBig) {
		t.Fatalf("90 s of audio claiming 5 s passed a 60 s limit: %v", err)
	}
	st2 := durationStore(t, 0)
	res, err := st2.Deposit(vmstore.DepositReq{User: "d", Body: strings.NewReader(msg)})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.Message.Duration-90) > 0.01 {
		t.Fatalf("stored %v s for 90 s of audio", res.Message.Duration)
	}
}

// wideWAV is a WAV of PCM or float samples of the given width.
func wideWAV(tag uint16, bits int, seconds int) []byte {
	le := binary.LittleEndian
	n := 8000 * seconds * bits / 8
	b := []byte("RIFF")
	b = le.AppendUint32(b, uint32(36+n))
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, tag)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint32(b, 8000)
	b = le.AppendUint32(b, uint32(8000*bits/8))
	b = le.AppendUint16(b, uint16(bits/8))
	b = le.AppendUint16(b, uint16(bits))
	b = append(b, "data"...)
	b = le.AppendUint32(b, uint32(n))
	return append(b, make([]byte, n)...)
}

func TestDepositWideWAVHasDuration(t *testing.T) {
	for _, c := range []struct {
		tag  uint16
		bits int
	}{{1, 24}, {1, 32}, {3, 32}, {3, 64}, {1, 8}} {
		st := durationStore(t, 0)
		res, err := Deposit(st, transcode.SniffAudio, bytes.NewReader(wideWAV(c.tag, c.bits, 2)), DepositOptions{User: "d"})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(res.Message.Duration-2) > 0.01 {
			t.Fatalf("tag %d %d bits: duration %v, want 2 s", c.tag, c.bits, res.Message.Duration)
		}
	}
}
