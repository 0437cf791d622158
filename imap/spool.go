package imap

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lemonvox/lemonvox/imap/wire"
	"github.com/lemonvox/lemonvox/vmstore"
)

// APPEND literals wait in a spool until the command is complete (see
// cmdAppend). What one command may hold is bounded whatever the client
// sends and however well it compresses (COMPRESS=DEFLATE turns a few
// octets on the wire into a megabyte of literal):
//   - memory: spoolMemBudget octets for all the literals of one command;
//     the rest goes to files in the server's SpoolDir, removed from the
//     directory as soon as they are created (the open file lives until the
//     command ends; a crash leaves nothing), and whatever an earlier
//     process left there is removed when the server starts (clearSpool);
//   - in total: AppendSpoolLimit octets, the account's quota (bytes and
//     messages, counting what the command accepted before) and APPENDLIMIT
//     per literal, all checked before the continuation is sent.

// spoolMemBudget is what one APPEND command keeps in memory.
const spoolMemBudget = 1 << 20

// maxDiscardLiteral: a refused non-synchronizing literal up to this size is
// read and discarded (the command fails, the session goes on); a larger one
// ends the session instead of being read (RFC 7888 s4 leaves the server
// these two ways).
const maxDiscardLiteral = 256 << 10

// spoolPrefix starts the names of spool files.
const spoolPrefix = "lemonvox-append-"

// spool holds the literals of one APPEND command.
type spool struct {
	dir   string
	mem   int64 // octets in memory
	total int64 // octets in all
	n     int   // literals
	files []*os.File
	names []string // files whose name could not be removed at once
}

func (c *conn) newSpool() *spool { return &spool{dir: c.srv.spoolDir()} }

// add reads a literal of size octets, one message, and returns a reader
// of it.
func (sp *spool) add(r io.Reader, size int64) (io.Reader, error) {
	sp.n++
	return sp.addPart(r, size)
}

// addPart reads size octets of a message assembled from several parts
// (CATENATE, cmd_catenate.go) and returns a reader of them; the message
// is counted once it is complete (sp.n).
func (sp *spool) addPart(r io.Reader, size int64) (io.Reader, error) {
	sp.total += size
	if sp.mem+size <= spoolMemBudget {
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		sp.mem += size
		return bytes.NewReader(b), nil
	}
	f, err := os.CreateTemp(sp.dir, spoolPrefix+"*")
	if err != nil {
		return nil, err
	}
	sp.files = append(sp.files, f)
	if os.Remove(f.Name()) != nil {
		sp.names = append(sp.names, f.Name()) // not while open (Windows)
	}
	if _, err := io.CopyN(f, r, size); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	// The store reads in large pieces: no buffer of our own, so that the
	// files of a MULTIAPPEND hold no memory while they wait.
	return f, nil
}

// release closes (and so frees) the spool files.
func (sp *spool) release() {
	for _, f := range sp.files {
		f.Close()
	}
	for _, n := range sp.names {
		os.Remove(n)
	}
	sp.files, sp.names = nil, nil
}

// appendRoom is what the account may still take, read once per APPEND.
type appendRoom struct {
	quota vmstore.Quota
	used  vmstore.Usage
}

func (c *conn) xappendRoom() appendRoom {
	a, err := c.srv.Store.GetAccount(c.user)
	xstoreErr(err, "APPEND")
	var room appendRoom
	room.quota = a.Quota
	if a.Quota.Bytes > 0 || a.Quota.Messages > 0 {
		room.used, err = c.srv.Store.Usage(c.user)
		xstoreErr(err, "APPEND")
	}
	return room
}

// xcheckAppendRoom refuses the literal l, before its continuation, when it
// cannot be stored: larger than APPENDLIMIT, past the account's quota with
// the literals this command accepted before it, or past the spool limit.
func (c *conn) xcheckAppendRoom(l wire.Literal, room appendRoom, sp *spool) {
	if code, msg := c.roomExceeded(0, l.Size, room, sp); code != "" {
		xrefuseLiteral(l, true, code, msg)
	}
}

// roomExceeded reports (a response code and text) whether add more octets
// for a message that has msgSize octets so far (0 for a literal that is a
// whole message) cannot be stored: the message past APPENDLIMIT (RFC 7889
// TOOBIG; RFC 4469 TOOBIG for a CATENATE), the account past its quota with
// what this command spooled before (RFC 9208 OVERQUOTA; the message counts
// as one more), or the command past the spool limit. "" when it fits.
func (c *conn) roomExceeded(msgSize, add int64, room appendRoom, sp *spool) (code, msg string) {
	q, u := room.quota, room.used
	switch {
	case msgSize+add > c.srv.appendLimit():
		if msgSize == 0 {
			return "TOOBIG", fmt.Sprintf("message of %d octets exceeds APPENDLIMIT %d", add, c.srv.appendLimit())
		}
		return "TOOBIG", fmt.Sprintf("the message would exceed APPENDLIMIT %d", c.srv.appendLimit())
	case q.Bytes > 0 && u.Bytes+sp.total+add > q.Bytes:
		return "OVERQUOTA", fmt.Sprintf("message of %d octets exceeds the storage quota", msgSize+add)
	case q.Messages > 0 && u.Messages+int64(sp.n)+1 > q.Messages:
		return "OVERQUOTA", "message count quota reached"
	case sp.total+add > c.srv.appendSpoolLimit():
		return "LIMIT", fmt.Sprintf("the messages of one APPEND exceed %d octets", c.srv.appendSpoolLimit())
	}
	return "", ""
}

// xrefuseLiteral ends a command with NO [code] while the literal l (if
// pending) is on its way or awaited: a synchronizing literal is never sent
// (no continuation); a small non-synchronizing one is read and discarded
// with the rest of the command at the command boundary; a large
// non-synchronizing one ends the session rather than being read.
func xrefuseLiteral(l wire.Literal, pending bool, code, msg string) {
	if pending && !l.Sync && l.Size > maxDiscardLiteral {
		panic(byeError{"[" + code + "] " + msg + "; closing instead of reading the literal"})
	}
	xusererrorf(code, "%s", msg)
}

// clearSpool removes the spool files an earlier process left behind.
func clearSpool(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), spoolPrefix) && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
