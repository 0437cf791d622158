package imap

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// BenchmarkFetchBody fetches a 60-s voicemail (G.711 WAV, base64) with
// UID FETCH BODY[] from a session, as the mixed workload of bench/imap does.
func BenchmarkFetchBody(b *testing.B) {
	e := newTestEnv(b)
	audio := bytes.Repeat([]byte{0x55, 0xd5}, 8000*60/2)
	vm := vmstore.VoiceMessage{From: "+15551234567@vm.example.net", To: "alice@example.net", MediaType: "audio/wav",
		Duration: 60 * time.Second, Media: bytes.NewReader(audio), Date: time.Now()}
	res, err := e.store.Deposit(vmstore.DepositReq{User: "alice", Body: vm.Compose()})
	if err != nil {
		b.Fatal(err)
	}
	nc, err := net.Dial("tcp", e.srv.PlainAddr())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	r.ReadString('\n')
	fmt.Fprintf(nc, "a LOGIN alice %s\r\nb SELECT INBOX\r\n", testPass)
	for l := ""; !strings.HasPrefix(l, "b "); l, _ = r.ReadString('\n') {
	}
	b.SetBytes(res.Message.Size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fmt.Fprintf(nc, "f UID FETCH %d (BODY.PEEK[])\r\n", res.Message.UID)
		r.ReadString('\n')
		if _, err := io.CopyN(io.Discard, r, res.Message.Size); err != nil {
			b.Fatal(err)
		}
		for l := ""; !strings.HasPrefix(l, "f "); l, _ = r.ReadString('\n') {
		}
	}
}

// BenchmarkReadOps runs the read side of bench/imap's mixed workload in
// one session: SELECT, UID FETCH (FLAGS ENVELOPE) of 40 messages, UID
// SEARCH.
func BenchmarkReadOps(b *testing.B) {
	e := newTestEnv(b)
	for i := 0; i < 40; i++ {
		e.deposit("alice", "INBOX", testMessage(fmt.Sprintf("m%d", i), strings.Repeat("body ", 200)))
	}
	nc, err := net.Dial("tcp", e.srv.PlainAddr())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	r.ReadString('\n')
	fmt.Fprintf(nc, "a LOGIN alice %s\r\n", testPass)
	for l := ""; !strings.HasPrefix(l, "a "); l, _ = r.ReadString('\n') {
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fmt.Fprintf(nc, "s SELECT INBOX\r\nf UID FETCH 1:* (FLAGS ENVELOPE)\r\nq UID SEARCH UNSEEN SUBJECT m1\r\n")
		for l := ""; !strings.HasPrefix(l, "q "); l, _ = r.ReadString('\n') {
		}
	}
}
