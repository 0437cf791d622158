package imap

import (
	"bufio"
	"compress/flate"
	"io"
	"strings"
	"testing"
)

type flateConn struct {
	r  *bufio.Reader
	zw *flate.Writer
}

func TestCompress(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", testMessage("zip", strings.Repeat("compressible ", 500)))
	rc := e.raw()
	rc.login("alice")
	if _, tagged := rc.cmd("COMPRESS DEFLATE"); tagged != "t2 OK DEFLATE active" {
		t.Fatal(tagged)
	}
	zw, _ := flate.NewWriter(rc.conn, flate.BestSpeed)
	fr := bufio.NewReader(flate.NewReader(rc.r))
	send := func(s string) {
		io.WriteString(zw, s+"\r\n")
		zw.Flush()
	}
	read := func() string {
		l, err := fr.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimRight(l, "\r\n")
	}
	send("c1 SELECT INBOX")
	for l := read(); !strings.HasPrefix(l, "c1 "); l = read() {
	}
	send("c2 FETCH 1 (BODY.PEEK[TEXT])")
	var all strings.Builder
	for l := read(); ; l = read() {
		all.WriteString(l)
		if strings.HasPrefix(l, "c2 ") {
			break
		}
	}
	if !strings.Contains(all.String(), "compressible compressible") || !strings.Contains(all.String(), "c2 OK") {
		t.Fatalf("%q", all.String())
	}
	send("c3 COMPRESS DEFLATE")
	if l := read(); !strings.HasPrefix(l, "c3 NO [COMPRESSIONACTIVE]") {
		t.Fatal(l)
	}
	// IDLE pushes are flushed through the compressor.
	send("c4 IDLE")
	read()
	e.deposit("alice", "INBOX", testMessage("zip2", "x"))
	if l := read(); l != "* 2 EXISTS" {
		t.Fatal(l)
	}
	if l := read(); l != "* 2 RECENT" {
		t.Fatal(l)
	}
	send("DONE")
	if l := read(); !strings.HasPrefix(l, "c4 OK") {
		t.Fatal(l)
	}
}
