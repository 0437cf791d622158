package transcode

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Info describes an audio stream.
type Info struct {
	Container Container
	Codec     Codec
	Rate      int
	Channels  int
	// Duration is exact when the header gives the data size (zero when the
	// size is unknown: streamed WAV/AU).
	Duration time.Duration
	// DataSize is the size of the coded data in bytes, -1 when unknown.
	DataSize int64
	// bigEndian: L16 byte order; g726MSB: G.726 nibble order.
	bigEndian bool
	g726MSB   bool
	gsmWAV49  bool // GSM in Microsoft's 65-byte double frames
	// dataOffset is where the coded data starts in the file.
	dataOffset int64
}

func (i Info) String() string {
	d := "unknown duration"
	if i.DataSize >= 0 {
		d = fmt.Sprintf("%.3f s", i.Duration.Seconds())
	}
	return fmt.Sprintf("%s, %s, %d Hz, %d channel(s), %s", i.Container, i.Codec, i.Rate, i.Channels, d)
}

// bytesToSamples is the number of samples (per channel) in n bytes of data.
func (i Info) bytesToSamples(n int64) int64 {
	switch i.Codec {
	case PCMU, PCMA:
		return n / int64(i.Channels)
	case L16:
		return n / int64(2*i.Channels)
	case PCM8, L24, L32, F32, F64:
		return n / int64(widePCM{codec: i.Codec}.width()*i.Channels)
	case G726, G722:
		return n * 2 / int64(i.Channels)
	case GSM:
		if i.gsmWAV49 {
			return n / 65 * 320
		}
		return n / 33 * 160
	}
	return 0
}

func (i *Info) setDuration() {
	if i.DataSize >= 0 && i.Rate > 0 && i.Channels > 0 {
		s := i.bytesToSamples(i.DataSize)
		i.Duration = time.Duration(s) * time.Second / time.Duration(i.Rate)
	}
}

// WAV format tags (RFC 2361 and the values ffmpeg writes).
const (
	wavPCM        = 0x0001
	wavFloat      = 0x0003
	wavALaw       = 0x0006
	wavMuLaw      = 0x0007
	wavGSM        = 0x0031
	wavG726       = 0x0045
	wavG726IBM    = 0x0064
	wavG722       = 0x028f
	wavExtensible = 0xfffe
)

const (
	maxHeaderBytes = 1 << 20 // chunks skipped before "data"
	maxRate        = 384000
	maxChannels    = 8
)

// readHeader sniffs the container and parses its header, leaving br at
// the first byte of coded data.
func readHeader(br *bufio.Reader) (Info, error) {
	magic, err := br.Peek(12)
	if err != nil && len(magic) < 4 {
		return Info{}, ErrUnknownFormat
	}
	switch {
	case len(magic) >= 12 && string(magic[:4]) == "RIFF" && string(magic[8:12]) == "WAVE":
		return readWAV(br)
	case string(magic[:4]) == ".snd":
		return readAU(br)
	}
	return Info{}, ErrUnknownFormat
}

func readWAV(br *bufio.Reader) (Info, error) {
	le := binary.LittleEndian
	if _, err := br.Discard(12); err != nil {
		return Info{}, ErrCorrupt
	}
	info := Info{Container: WAV, DataSize: -1}
	var tag, bits uint16
	var haveFmt bool
	var skipped int64
	off := int64(12)
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(br, hdr); err != nil {
			return info, fmt.Errorf("%w: WAV without data chunk", ErrCorrupt)
		}
		id, size := string(hdr[:4]), int64(le.Uint32(hdr[4:]))
		off += 8
		switch id {
		case "fmt ":
			if size < 16 || size > 4096 {
				return info, fmt.Errorf("%w: fmt chunk of %d bytes", ErrCorrupt, size)
			}
			f := make([]byte, size+size&1)
			if _, err := io.ReadFull(br, f); err != nil {
				return info, ErrCorrupt
			}
			tag = le.Uint16(f)
			info.Channels = int(le.Uint16(f[2:]))
			info.Rate = int(le.Uint32(f[4:]))
			bits = le.Uint16(f[14:])
			if tag == wavExtensible && size >= 40 {
				tag = le.Uint16(f[24:]) // first two bytes of the sub-format GUID
			}
			haveFmt = true
			off += size + size&1
		case "data":
			if !haveFmt {
				return info, fmt.Errorf("%w: data before fmt", ErrCorrupt)
			}
			if size != 0xffffffff && size != 0 {
				info.DataSize = size
			}
			info.dataOffset = off
			return info, info.setWAVCodec(tag, bits)
		default:
			skipped += size
			if skipped > maxHeaderBytes {
				return info, fmt.Errorf("%w: no data chunk in the first MiB", ErrCorrupt)
			}
			off += size + size&1
			if _, err := br.Discard(int(size + size&1)); err != nil {
				return info, ErrCorrupt
			}
		}
	}
}

func (info *Info) setWAVCodec(tag, bits uint16) error {
	if info.Channels < 1 || info.Channels > maxChannels || info.Rate < 1 || info.Rate > maxRate {
		return fmt.Errorf("%w: %d channels at %d Hz", ErrCorrupt, info.Channels, info.Rate)
	}
	switch tag {
	case wavPCM:
		switch bits {
		case 8:
			info.Codec = PCM8
		case 16:
			info.Codec = L16
		case 24:
			info.Codec = L24
		case 32:
			info.Codec = L32
		default:
			return fmt.Errorf("%w: %d-bit PCM", ErrUnsupported, bits)
		}
	case wavFloat:
		switch bits {
		case 32:
			info.Codec = F32
		case 64:
			info.Codec = F64
		default:
			return fmt.Errorf("%w: %d-bit float", ErrUnsupported, bits)
		}
	case wavALaw:
		info.Codec = PCMA
	case wavMuLaw:
		info.Codec = PCMU
	case wavG726, wavG726IBM:
		if bits != 4 && bits != 0 {
			return fmt.Errorf("%w: G.726 at %d bits", ErrUnsupported, bits)
		}
		info.Codec, info.g726MSB = G726, true
	case wavG722:
		info.Codec = G722
		info.Rate = 16000 // G.722 is 16 kHz whatever the header says
	case wavGSM:
		info.Codec, info.gsmWAV49 = GSM, true
	default:
		return fmt.Errorf("%w: WAV format tag 0x%04x", ErrUnsupported, tag)
	}
	if (info.Codec == G726 || info.Codec == G722 || info.Codec == GSM) && info.Channels != 1 {
		return fmt.Errorf("%w: %s with %d channels", ErrUnsupported, info.Codec, info.Channels)
	}
	info.setDuration()
	return nil
}

// AU encodings (Sun/NeXT audio file format).
const (
	auMuLaw = 1
	auPCM8  = 2
	auL16   = 3
	auL24   = 4
	auL32   = 5
	auF32   = 6
	auF64   = 7
	auG726  = 23 // 4-bit CCITT G.721 ADPCM (= G.726-32)
	auG722  = 24
	auALaw  = 27
)

func readAU(br *bufio.Reader) (Info, error) {
	be := binary.BigEndian
	h := make([]byte, 24)
	if _, err := io.ReadFull(br, h); err != nil {
		return Info{}, ErrCorrupt
	}
	off, size, enc := int64(be.Uint32(h[4:])), be.Uint32(h[8:]), be.Uint32(h[12:])
	info := Info{Container: AU, Rate: int(be.Uint32(h[16:])), Channels: int(be.Uint32(h[20:])), DataSize: -1, bigEndian: true, dataOffset: off}
	if off < 24 || off > maxHeaderBytes {
		return info, fmt.Errorf("%w: AU data offset %d", ErrCorrupt, off)
	}
	if _, err := br.Discard(int(off - 24)); err != nil {
		return info, ErrCorrupt
	}
	if size != 0xffffffff {
		info.DataSize = int64(size)
	}
	if info.Channels < 1 || info.Channels > maxChannels || info.Rate < 1 || info.Rate > maxRate {
		return info, fmt.Errorf("%w: %d channels at %d Hz", ErrCorrupt, info.Channels, info.Rate)
	}
	switch enc {
	case auMuLaw:
		info.Codec = PCMU
	case auALaw:
		info.Codec = PCMA
	case auL16:
		info.Codec = L16
	case auPCM8:
		info.Codec = PCM8
	case auL24:
		info.Codec = L24
	case auL32:
		info.Codec = L32
	case auF32:
		info.Codec = F32
	case auF64:
		info.Codec = F64
	case auG726:
		info.Codec = G726
	case auG722:
		info.Codec = G722
		info.Rate = 16000
	default:
		return info, fmt.Errorf("%w: AU encoding %d", ErrUnsupported, enc)
	}
	if (info.Codec == G726 || info.Codec == G722) && info.Channels != 1 {
		return info, fmt.Errorf("%w: %s with %d channels", ErrUnsupported, info.Codec, info.Channels)
	}
	info.setDuration()
	return info, nil
}

// writeHeader writes the container header for dataSize bytes of data
// (-1: unknown, written as the "streaming" size).
func writeHeader(w io.Writer, info Info, dataSize int64) error {
	switch info.Container {
	case Raw:
		return nil
	case AU:
		return writeAU(w, info, dataSize)
	case WAV:
		return writeWAV(w, info, dataSize)
	}
	return fmt.Errorf("%w: container %s", ErrUnsupported, info.Container)
}

func writeWAV(w io.Writer, info Info, dataSize int64) error {
	var tag, bits, align uint16
	var byteRate uint32
	ch := uint16(info.Channels)
	switch info.Codec {
	case L16:
		tag, bits, align = wavPCM, 16, 2*ch
		byteRate = uint32(info.Rate) * uint32(align)
	case PCMU, PCMA:
		tag, bits, align = wavMuLaw, 8, ch
		if info.Codec == PCMA {
			tag = wavALaw
		}
		byteRate = uint32(info.Rate) * uint32(align)
	case G726:
		tag, bits, align, byteRate = wavG726, 4, 1, 4000
	case G722:
		tag, bits, align, byteRate = wavG722, 4, 1, 8000
	case GSM:
		tag, bits, align, byteRate = wavGSM, 0, 65, 1625
	default:
		return fmt.Errorf("%w: %s in WAV", ErrUnsupported, info.Codec)
	}
	fmtSize := uint32(18)
	if info.Codec == GSM {
		fmtSize = 20 // cbSize 2: samples per block
	}
	size := uint32(0xffffffff)
	riff := uint32(0xffffffff)
	if dataSize >= 0 && dataSize < 0xffffffff-64 {
		size = uint32(dataSize)
		riff = uint32(4+8+int64(fmtSize)+8+dataSize) + uint32(dataSize&1)
	}
	le := binary.LittleEndian
	b := make([]byte, 0, 46)
	b = append(b, "RIFF"...)
	b = le.AppendUint32(b, riff)
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, fmtSize)
	b = le.AppendUint16(b, tag)
	b = le.AppendUint16(b, ch)
	b = le.AppendUint32(b, uint32(info.Rate))
	b = le.AppendUint32(b, byteRate)
	b = le.AppendUint16(b, align)
	b = le.AppendUint16(b, bits)
	if info.Codec == GSM {
		b = le.AppendUint16(b, 2)
		b = le.AppendUint16(b, 320) // samples per 65-byte block
	} else {
		b = le.AppendUint16(b, 0) // cbSize
	}
	b = append(b, "data"...)
	b = le.AppendUint32(b, size)
	_, err := w.Write(b)
	return err
}

func writeAU(w io.Writer, info Info, dataSize int64) error {
	var enc uint32
	switch info.Codec {
	case PCMU:
		enc = auMuLaw
	case PCMA:
		enc = auALaw
	case L16:
		enc = auL16
	case G722:
		enc = auG722
	default:
		return fmt.Errorf("%w: %s in AU", ErrUnsupported, info.Codec)
	}
	size := uint32(0xffffffff)
	if dataSize >= 0 && dataSize < 0xffffffff {
		size = uint32(dataSize)
	}
	be := binary.BigEndian
	b := make([]byte, 0, 32)
	b = append(b, ".snd"...)
	b = be.AppendUint32(b, 32)
	b = be.AppendUint32(b, size)
	b = be.AppendUint32(b, enc)
	b = be.AppendUint32(b, uint32(info.Rate))
	b = be.AppendUint32(b, uint32(info.Channels))
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // annotation
	_, err := w.Write(b)
	return err
}
