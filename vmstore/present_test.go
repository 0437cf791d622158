package vmstore

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"testing"
)

// FuzzPresent: for any message, the presented form is consistent: its
// structure's offsets lie inside it, each re-encoded part decodes to the
// stored octets, any range reads as the same bytes of the whole, and a
// message without NUL in a leaf is presented as stored.
func FuzzPresent(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody"))
	f.Add([]byte("Subject: b\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Transfer-Encoding:\r\n binary\r\n\r\n" + strings.Repeat("\x00xyz", 100) + "\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nn\x00l\r\n--a--\r\n"))
	f.Add([]byte("no header\x00 at all\r\n"))
	s := openTest(f, "")
	mustAccount(f, s, "u")
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := s.Deposit(DepositReq{User: "u", Body: bytes.NewReader(data)})
		if err != nil {
			return // empty, too big, over quota
		}
		m := &res.Message
		raw, err := s.Structure(m)
		if err != nil {
			t.Fatal(err)
		}
		if m.Binary != raw.HasBinary() {
			t.Fatalf("message flag %v, structure %v", m.Binary, raw.HasBinary())
		}
		pr, err := s.Present(m, raw)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := io.ReadAll(pr.Section(0, pr.Size))
		if err != nil || int64(len(whole)) != pr.Size {
			t.Fatalf("read %d of %d: %v", len(whole), pr.Size, err)
		}
		if !m.Binary && !bytes.Equal(whole, data) {
			t.Fatal("a message without binary parts is presented changed")
		}
		var check func(p, r *Part)
		check = func(p, r *Part) {
			if p.Start < 0 || p.Start > p.Body || p.Body > p.End || p.End > pr.Size {
				t.Fatalf("bad offsets %d %d %d of %d", p.Start, p.Body, p.End, pr.Size)
			}
			if r.Binary && len(r.Parts) == 0 {
				if p.Encoding != "base64" || p.Binary {
					t.Fatalf("part not re-encoded: %+v", p)
				}
				dec, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(whole[p.Body:p.End]), "\r\n", ""))
				if err != nil || !bytes.Equal(dec, data[r.Body:r.End]) {
					t.Fatalf("re-encoded part decodes to %q (%v), stored %q", dec, err, data[r.Body:r.End])
				}
				if n := int64(bytes.Count(whole[p.Body:p.End], []byte("\n"))); n != p.Lines {
					t.Fatalf("lines %d, counted %d", p.Lines, n)
				}
			}
			for i := range p.Parts {
				check(&p.Parts[i], &r.Parts[i])
			}
		}
		check(pr.Root, raw)
		for _, rg := range [][2]int64{{0, 1}, {pr.Size / 3, pr.Size / 2}, {pr.Size / 2, pr.Size}, {77, 160}, {pr.Size - 5, pr.Size}} {
			lo, hi := max(0, rg[0]), min(pr.Size, rg[1])
			if lo >= hi {
				continue
			}
			got, err := io.ReadAll(pr.Section(lo, hi-lo))
			if err != nil || !bytes.Equal(got, whole[lo:hi]) {
				t.Fatalf("range %d-%d: %q, want %q (%v)", lo, hi, got, whole[lo:hi], err)
			}
		}
	})
}
