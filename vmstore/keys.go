package vmstore

import "encoding/binary"

// Key kinds; see the package documentation for the layout.
const (
	kAccount   = "A/"
	kName      = "N/"
	kMailbox   = "M/"
	kMessage   = "U/"
	kModseq    = "C/"
	kExpunged  = "X/"
	kSubscribe = "S/"
	kChunk     = "B/"
	kBlob      = "R/"
	kHash      = "H/"
	kPart      = "P/"
	kJournal   = "J/"
	kCursor    = "K/"
	kMeta      = "D/"
	kURLAuth   = "Z/"
)

func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

func accountKey(user string) []byte { return append([]byte(kAccount), user...) }

func nameKey(user, name string) []byte {
	k := append([]byte(kName), user...)
	k = append(k, 0)
	return append(k, name...)
}

func namePrefix(user string) []byte { return append(append([]byte(kName), user...), 0) }

func subKey(user, name string) []byte {
	k := append([]byte(kSubscribe), user...)
	k = append(k, 0)
	return append(k, name...)
}

func subPrefix(user string) []byte { return append(append([]byte(kSubscribe), user...), 0) }

func mailboxKey(id uint64) []byte { return be64([]byte(kMailbox), id) }

func messageKey(mb uint64, uid uint32) []byte { return be32(be64([]byte(kMessage), mb), uid) }

func messagePrefix(mb uint64) []byte { return be64([]byte(kMessage), mb) }

func modseqKey(mb, modseq uint64) []byte { return be64(be64([]byte(kModseq), mb), modseq) }

func modseqPrefix(mb uint64) []byte { return be64([]byte(kModseq), mb) }

func expungedKey(mb, modseq uint64) []byte { return be64(be64([]byte(kExpunged), mb), modseq) }

func expungedPrefix(mb uint64) []byte { return be64([]byte(kExpunged), mb) }

func chunkKey(blob uint64, n uint32) []byte { return be32(be64([]byte(kChunk), blob), n) }

func chunkPrefix(blob uint64) []byte { return be64([]byte(kChunk), blob) }

func blobKey(blob uint64) []byte { return be64([]byte(kBlob), blob) }

func hashKey(sum []byte) []byte { return append([]byte(kHash), sum...) }

func partKey(sum []byte) []byte { return append([]byte(kPart), sum...) }

func journalKey(seq uint64) []byte { return be64([]byte(kJournal), seq) }

func cursorKey(sink string) []byte { return append([]byte(kCursor), sink...) }

func metaKey(user string, mb uint64, entry string) []byte {
	k := append([]byte(kMeta), user...)
	k = append(k, 0)
	k = be64(k, mb)
	return append(k, entry...)
}

func metaPrefix(user string, mb uint64) []byte {
	k := append([]byte(kMeta), user...)
	k = append(k, 0)
	return be64(k, mb)
}

// urlauthKey is the key of an account's URLAUTH access key for a mailbox:
// keyed by the account's identity, never its name (urlauth.go).
func urlauthKey(acct, mb uint64) []byte { return be64(be64([]byte(kURLAuth), acct), mb) }

func urlauthPrefix(acct uint64) []byte { return be64([]byte(kURLAuth), acct) }
