package vmstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Message records are read on every SELECT, FETCH and SEARCH, so they use a
// compact binary encoding (JSON decoding was the largest CPU cost of IMAP
// reads): a version byte, then the fields in a fixed order as varints and
// length-prefixed strings. Records that start with '{' are the JSON of
// earlier stores and are still read.
const msgCodecV1 = 1

var errBadRecord = errors.New("vmstore: corrupt message record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func encodeMessage(m *Message) []byte {
	b := make([]byte, 0, 96+len(m.From)+len(m.Subject)+len(m.To)+len(m.Cc))
	b = append(b, msgCodecV1)
	b = binary.AppendUvarint(b, m.MailboxID)
	b = binary.AppendUvarint(b, uint64(m.UID))
	b = binary.AppendUvarint(b, m.ModSeq)
	b = binary.AppendUvarint(b, uint64(len(m.Flags)))
	for _, f := range m.Flags {
		b = appendString(b, f)
	}
	b = appendTime(b, m.InternalDate)
	b = appendTime(b, m.SaveDate)
	b = appendTime(b, m.SeenAt)
	b = binary.AppendVarint(b, m.Size)
	b = binary.AppendUvarint(b, m.Blob)
	b = appendString(b, string(m.Hash))
	b = appendString(b, string(m.Context))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(m.Duration))
	var bits byte
	if m.Urgent {
		bits |= 1
	}
	if m.Recent {
		bits |= 2
	}
	if m.Binary {
		bits |= 4
	}
	b = append(b, bits)
	b = appendString(b, m.From)
	b = appendString(b, m.Subject)
	b = appendTime(b, m.SentDate)
	b = appendString(b, m.To)
	b = appendString(b, m.Cc)
	if m.Keys == nil && m.keysRaw != "" {
		b = append(b, msgExtKeys)
		b = append(b, m.keysRaw...)
	} else if k := m.Keys; k != nil {
		// Extension 1 (later fields): readers before it stop at Cc.
		b = append(b, msgExtKeys)
		for _, s := range []string{k.FromMailbox, k.ToMailbox, k.CcMailbox, k.DisplayFrom, k.DisplayTo, k.MessageID} {
			b = appendString(b, s)
		}
		b = binary.AppendUvarint(b, uint64(len(k.Refs)))
		for _, s := range k.Refs {
			b = appendString(b, s)
		}
	}
	return b
}

// msgExtKeys marks the header keys after the fields of version 1.
const msgExtKeys = 1

// decodeKeys reads the header keys extension. Its strings share the
// record's copy.
func decodeKeys(ext string) (*HeaderKeys, bool) {
	r := &strReader{s: ext}
	k := &HeaderKeys{}
	for _, p := range []*string{&k.FromMailbox, &k.ToMailbox, &k.CcMailbox, &k.DisplayFrom, &k.DisplayTo, &k.MessageID} {
		*p = r.str()
	}
	n := r.uvarint()
	if r.err || n > uint64(len(r.s)) {
		return nil, false
	}
	if n > 0 {
		k.Refs = make([]string, 0, n)
		for i := uint64(0); i < n && !r.err; i++ {
			k.Refs = append(k.Refs, r.str())
		}
	}
	return k, !r.err
}

// strReader is recReader over a string, for substrings without copies.
type strReader struct {
	s   string
	err bool
}

func (r *strReader) uvarint() uint64 {
	var v uint64
	var shift uint
	for i := 0; i < len(r.s) && i < binary.MaxVarintLen64; i++ {
		c := r.s[i]
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			r.s = r.s[i+1:]
			return v
		}
		shift += 7
	}
	r.err = true
	return 0
}

func (r *strReader) str() string {
	n := r.uvarint()
	if r.err || n > uint64(len(r.s)) {
		r.err = true
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

type recReader struct {
	b   []byte
	err bool
}

func (r *recReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recReader) str() string {
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)) {
		r.err = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *recReader) time() time.Time {
	v := r.varint()
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func decodeMessage(b []byte, m *Message) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, m)
	}
	if len(b) == 0 || b[0] != msgCodecV1 {
		return errBadRecord
	}
	r := &recReader{b: b[1:]}
	*m = Message{}
	m.MailboxID = r.uvarint()
	m.UID = uint32(r.uvarint())
	m.ModSeq = r.uvarint()
	nf := r.uvarint()
	if nf > 1024 {
		return errBadRecord
	}
	if nf > 0 {
		m.Flags = make([]string, 0, nf)
		for i := uint64(0); i < nf && !r.err; i++ {
			m.Flags = append(m.Flags, r.str())
		}
	}
	m.InternalDate = r.time()
	m.SaveDate = r.time()
	m.SeenAt = r.time()
	m.Size = r.varint()
	m.Blob = r.uvarint()
	if h := r.str(); h != "" {
		m.Hash = []byte(h)
	}
	m.Context = Context(r.str())
	if len(r.b) < 9 {
		return errBadRecord
	}
	m.Duration = math.Float64frombits(binary.BigEndian.Uint64(r.b))
	bits := r.b[8]
	r.b = r.b[9:]
	m.Urgent, m.Recent, m.Binary = bits&1 != 0, bits&2 != 0, bits&4 != 0
	m.From = r.str()
	m.Subject = r.str()
	m.SentDate = r.time()
	m.To = r.str()
	m.Cc = r.str()
	if r.err {
		return errBadRecord
	}
	// Extensions written by later versions follow; an unknown one is
	// ignored (the record stays readable, its fields unknown).
	if len(r.b) > 1 && r.b[0] == msgExtKeys {
		// Kept encoded (one copy) until HeaderKeys: most reads of a
		// record (FETCH, SEARCH, STATUS) never need them.
		m.keysRaw = string(r.b[1:])
	}
	return nil
}

// Mailbox records are read by every write of the mailbox and every STATUS,
// so they are binary too (version byte mbCodecV1); JSON records of earlier
// stores are still read.
const mbCodecV1 = 1

func encodeMailbox(mb *Mailbox) []byte {
	b := make([]byte, 0, 64+len(mb.User)+len(mb.Name)+len(mb.SpecialUse)+8*4*4)
	b = append(b, mbCodecV1)
	b = binary.AppendUvarint(b, mb.ID)
	b = appendString(b, mb.User)
	b = appendString(b, mb.Name)
	b = binary.AppendUvarint(b, uint64(mb.UIDValidity))
	b = binary.AppendUvarint(b, uint64(mb.UIDNext))
	b = binary.AppendUvarint(b, mb.HighestModSeq)
	b = appendString(b, mb.SpecialUse)
	b = appendTime(b, mb.Created)
	c := &mb.Counts
	for _, v := range []uint32{c.Messages, c.Unseen, c.Recent, c.Deleted} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	b = binary.AppendVarint(b, c.Bytes)
	b = binary.AppendVarint(b, c.DeletedBytes)
	for _, m := range c.MWI {
		for _, v := range []uint32{m.New, m.Old, m.UrgentNew, m.UrgentOld} {
			b = binary.AppendUvarint(b, uint64(v))
		}
	}
	return b
}

func decodeMailbox(b []byte, mb *Mailbox) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, mb)
	}
	if len(b) == 0 || b[0] != mbCodecV1 {
		return errBadRecord
	}
	r := &recReader{b: b[1:]}
	*mb = Mailbox{}
	mb.ID = r.uvarint()
	mb.User = r.str()
	mb.Name = r.str()
	mb.UIDValidity = uint32(r.uvarint())
	mb.UIDNext = uint32(r.uvarint())
	mb.HighestModSeq = r.uvarint()
	mb.SpecialUse = r.str()
	mb.Created = r.time()
	c := &mb.Counts
	for _, p := range []*uint32{&c.Messages, &c.Unseen, &c.Recent, &c.Deleted} {
		*p = uint32(r.uvarint())
	}
	c.Bytes = r.varint()
	c.DeletedBytes = r.varint()
	for i := range c.MWI {
		m := &c.MWI[i]
		for _, p := range []*uint32{&m.New, &m.Old, &m.UrgentNew, &m.UrgentOld} {
			*p = uint32(r.uvarint())
		}
	}
	if r.err {
		return errBadRecord
	}
	return nil
}

// getMailbox reads a mailbox record.
func getMailbox(txn *badger.Txn, id uint64, mb *Mailbox) error {
	it, err := txn.Get(mailboxKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return fmt.Errorf("%w: mailbox id %d", ErrNotFound, id)
	}
	if err != nil {
		return err
	}
	return it.Value(func(b []byte) error { return decodeMailbox(b, mb) })
}
