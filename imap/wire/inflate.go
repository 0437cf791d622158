package wire

import (
	"bufio"
	"errors"
	"io"
)

// Inflater decodes a raw DEFLATE stream (RFC 1951) for COMPRESS=DEFLATE
// (RFC 4978). Unlike compress/flate, it hands out decoded octets before it
// waits for more input, whatever the block type: compress/flate only
// releases output at a stored block or when its window fills, so a client
// that flushes with Z_PARTIAL_FLUSH (isync/mbsync does) would never see its
// command read. Decoding runs in a goroutine that writes into a pipe; it
// blocks only on the network or on the reader.
type Inflater struct {
	pr *io.PipeReader
}

// NewInflater starts decoding r.
func NewInflater(r io.Reader) *Inflater {
	pr, pw := io.Pipe()
	z := &inflateState{pw: pw}
	if br, ok := r.(io.ByteReader); ok {
		z.r = br
	} else {
		z.r = bufio.NewReaderSize(r, 512)
	}
	go func() {
		err := z.run()
		if err == nil {
			err = io.EOF
		}
		pw.CloseWithError(err)
	}()
	return &Inflater{pr: pr}
}

// Read implements io.Reader.
func (f *Inflater) Read(p []byte) (int, error) { return f.pr.Read(p) }

// Close stops the decoder goroutine once it next writes.
func (f *Inflater) Close() error { return f.pr.Close() }

var errDeflate = errors.New("wire: invalid deflate data")

const windowSize = 1 << 15

type inflateState struct {
	r       io.ByteReader
	pw      *io.PipeWriter
	bitbuf  uint32
	nbits   uint
	window  [windowSize]byte
	wpos    int
	filled  int // octets ever written, capped at windowSize
	pending []byte
}

// flush hands decoded octets to the reader.
func (z *inflateState) flush() error {
	if len(z.pending) == 0 {
		return nil
	}
	_, err := z.pw.Write(z.pending)
	z.pending = z.pending[:0]
	return err
}

// bits returns the next n bits, least significant first. Before it waits
// for input it flushes what was decoded.
func (z *inflateState) bits(n uint) (uint32, error) {
	for z.nbits < n {
		if err := z.flush(); err != nil {
			return 0, err
		}
		b, err := z.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		z.bitbuf |= uint32(b) << z.nbits
		z.nbits += 8
	}
	v := z.bitbuf & (1<<n - 1)
	z.bitbuf >>= n
	z.nbits -= n
	return v, nil
}

func (z *inflateState) emit(b byte) error {
	z.window[z.wpos] = b
	z.wpos = (z.wpos + 1) & (windowSize - 1)
	if z.filled < windowSize {
		z.filled++
	}
	z.pending = append(z.pending, b)
	if len(z.pending) >= 16*1024 {
		return z.flush()
	}
	return nil
}

// huffman is a canonical Huffman code: the number of codes of each length
// and the symbols ordered by code.
type huffman struct {
	count  [16]int
	symbol []int
}

func (h *huffman) build(lengths []uint8) error {
	h.count = [16]int{}
	for _, l := range lengths {
		h.count[l]++
	}
	left := 1
	for l := 1; l < 16; l++ {
		left <<= 1
		left -= h.count[l]
		if left < 0 {
			return errDeflate
		}
	}
	var offs [16]int
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	h.symbol = make([]int, len(lengths))
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = sym
			offs[l]++
		}
	}
	return nil
}

// decode reads one symbol, one bit at a time (codes are packed starting
// with their most significant bit).
func (z *inflateState) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := z.bits(1)
		if err != nil {
			return 0, err
		}
		code |= int(b)
		n := h.count[l]
		if code-first < n {
			return h.symbol[index+code-first], nil
		}
		index += n
		first += n
		first <<= 1
		code <<= 1
	}
	return 0, errDeflate
}

// RFC 1951 s3.2.5 length and distance tables.
var (
	lenBase   = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra  = [29]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase  = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// Order of the code length code lengths (s3.2.7).
	clOrder = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

	fixedLit, fixedDist huffman
)

func init() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	fixedLit.build(l[:])
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	fixedDist.build(d[:])
}

func (z *inflateState) run() error {
	var lit, dist huffman
	for {
		hdr, err := z.bits(3)
		if err != nil {
			return err
		}
		final := hdr&1 == 1
		switch hdr >> 1 {
		case 0:
			err = z.stored()
		case 1:
			err = z.codes(&fixedLit, &fixedDist)
		case 2:
			if err = z.dynamic(&lit, &dist); err == nil {
				err = z.codes(&lit, &dist)
			}
		default:
			err = errDeflate
		}
		if err != nil {
			return err
		}
		if final {
			return z.flush()
		}
	}
}

func (z *inflateState) stored() error {
	z.bitbuf, z.nbits = 0, 0
	v, err := z.bits(32)
	if err != nil {
		return err
	}
	n, nn := v&0xffff, v>>16
	if n != ^nn&0xffff {
		return errDeflate
	}
	for i := uint32(0); i < n; i++ {
		b, err := z.bits(8)
		if err != nil {
			return err
		}
		if err := z.emit(byte(b)); err != nil {
			return err
		}
	}
	return z.flush()
}

func (z *inflateState) dynamic(lit, dist *huffman) error {
	v, err := z.bits(14)
	if err != nil {
		return err
	}
	nlen, ndist, ncode := int(v&31)+257, int(v>>5&31)+1, int(v>>10)+4
	if nlen > 286 || ndist > 30 {
		return errDeflate
	}
	var cl [19]uint8
	for i := 0; i < ncode; i++ {
		b, err := z.bits(3)
		if err != nil {
			return err
		}
		cl[clOrder[i]] = uint8(b)
	}
	var clh huffman
	if err := clh.build(cl[:]); err != nil {
		return err
	}
	lengths := make([]uint8, nlen+ndist)
	for i := 0; i < len(lengths); {
		sym, err := z.decode(&clh)
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return errDeflate
			}
			val = lengths[i-1]
			b, err := z.bits(2)
			if err != nil {
				return err
			}
			rep = 3 + int(b)
		case 17:
			b, err := z.bits(3)
			if err != nil {
				return err
			}
			rep = 3 + int(b)
		default:
			b, err := z.bits(7)
			if err != nil {
				return err
			}
			rep = 11 + int(b)
		}
		if i+rep > len(lengths) {
			return errDeflate
		}
		for ; rep > 0; rep-- {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 {
		return errDeflate
	}
	if err := lit.build(lengths[:nlen]); err != nil {
		return err
	}
	return dist.build(lengths[nlen:])
}

func (z *inflateState) codes(lit, dist *huffman) error {
	for {
		sym, err := z.decode(lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			if err := z.emit(byte(sym)); err != nil {
				return err
			}
			continue
		case sym == 256:
			return nil
		case sym > 285:
			return errDeflate
		}
		sym -= 257
		e, err := z.bits(lenExtra[sym])
		if err != nil {
			return err
		}
		length := lenBase[sym] + int(e)
		ds, err := z.decode(dist)
		if err != nil {
			return err
		}
		if ds >= 30 {
			return errDeflate
		}
		e, err = z.bits(distExtra[ds])
		if err != nil {
			return err
		}
		d := distBase[ds] + int(e)
		if d > z.filled {
			return errDeflate
		}
		for ; length > 0; length-- {
			if err := z.emit(z.window[(z.wpos-d)&(windowSize-1)]); err != nil {
				return err
			}
		}
	}
}
