package transcode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Source is a stream of interleaved 16-bit PCM frames.
type Source interface {
	// ReadPCM fills p with whole frames (len(p) is rounded down to a
	// multiple of Channels) and returns the number of samples written.
	ReadPCM(p []int16) (int, error)
	Rate() int
	Channels() int
}

// Stream decodes a container's coded data into PCM as it is read.
type Stream struct {
	Info  Info
	r     io.Reader
	codec frameCodec // mono ADPCM and all G.711/L16 (channels interleaved)
	in    []byte
	have  int     // bytes of in not yet decoded (a partial code unit)
	out   []int16 // decoded samples not yet read
	base  []int16 // out's array from its start: decoding appends there
	err   error
}

// Decode reads the header of a WAV or AU stream (recognised by its magic
// bytes) and returns a stream that decodes the data as it is read.
func Decode(r io.Reader) (*Stream, error) {
	br := bufio.NewReaderSize(r, 32<<10)
	info, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	return newStream(info, br)
}

// DecodeRaw returns a stream of headerless coded data.
func DecodeRaw(r io.Reader, codec Codec, rate, channels int) (*Stream, error) {
	info := Info{Container: Raw, Codec: codec, Rate: rate, Channels: channels, DataSize: -1}
	if codec == G722 {
		info.Rate = 16000
	}
	return newStream(info, r)
}

func newStream(info Info, r io.Reader) (*Stream, error) {
	c, err := newFrameCodec(info.Codec, info.bigEndian)
	if err != nil {
		return nil, err
	}
	if g, ok := c.(*g726State); ok {
		g.bigEndianPack = info.g726MSB
	}
	if g, ok := c.(*gsmDecoder); ok {
		g.wav49 = info.gsmWAV49
	}
	if info.DataSize >= 0 {
		r = io.LimitReader(r, info.DataSize)
	}
	return &Stream{Info: info, r: r, codec: c, in: make([]byte, 4096)}, nil
}

// Rate is the PCM sample rate.
func (s *Stream) Rate() int {
	if g, ok := s.codec.(*g722State); ok && g.narrow {
		return 8000
	}
	return s.Info.Rate
}

// narrowG722 switches a G.722 stream that has not been read yet to return
// its lower sub-band as 8 kHz PCM.
func (s *Stream) narrowG722() bool {
	g, ok := s.codec.(*g722State)
	if !ok || len(s.out) > 0 || s.have > 0 || s.err != nil {
		return false
	}
	g.narrow = true
	return true
}

// Channels is the number of interleaved channels.
func (s *Stream) Channels() int { return s.Info.Channels }

// ReadPCM implements Source.
func (s *Stream) ReadPCM(p []int16) (int, error) {
	ch := s.Info.Channels
	p = p[:len(p)/ch*ch]
	for len(s.out) < len(p) && s.err == nil {
		// Move the few samples left to the front, decode after them.
		s.out = append(s.base[:0], s.out...)
		ub, _ := s.codec.unit()
		unit := ub * ch
		n, err := io.ReadAtLeast(s.r, s.in[s.have:len(s.in)/unit*unit], max(unit-s.have, 1))
		n += s.have
		whole := n / unit * unit
		s.out = s.codec.decode(s.out, s.in[:whole])
		s.base = s.out[:0]
		// Keep a partial unit for the next read (a trailing one at the end
		// of the stream is dropped).
		s.have = copy(s.in, s.in[whole:n])
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			s.err = err
		}
	}
	n := copy(p, s.out)
	n = n / ch * ch
	s.out = s.out[n:]
	if n == 0 && s.err != nil {
		return 0, s.err
	}
	return n, nil
}

// Writer encodes PCM into a container as it is written. With an
// io.WriteSeeker the header's sizes are corrected on Close; otherwise they
// are written as "unknown" (as streaming tools do).
type Writer struct {
	Info    Info
	w       io.Writer
	codec   frameCodec
	pending []int16
	buf     []byte
	written int64
	err     error
}

// NewWriter starts a container of the given codec, rate and channels.
func NewWriter(w io.Writer, container Container, codec Codec, rate, channels int) (*Writer, error) {
	info := Info{Container: container, Codec: codec, Rate: rate, Channels: channels, DataSize: -1,
		bigEndian: container == AU, g726MSB: container == WAV}
	narrow := codec == G722 && rate == 8000 // 8 kHz PCM into G.722's lower band
	if codec == G722 {
		info.Rate = 16000
	}
	if (codec == G722 || codec == G726) && channels != 1 {
		return nil, fmt.Errorf("%w: %s with %d channels", ErrUnsupported, codec, channels)
	}
	var c frameCodec
	var err error
	switch {
	case codec == GSM && container == AU:
		return nil, fmt.Errorf("%w: GSM in AU", ErrUnsupported)
	case codec == GSM:
		if channels != 1 || info.Rate != 8000 {
			return nil, fmt.Errorf("%w: GSM 06.10 is 8000 Hz mono", ErrUnsupported)
		}
		info.gsmWAV49 = container == WAV
		c = newGSMEncoder(info.gsmWAV49)
	default:
		if c, err = newFrameCodec(codec, info.bigEndian); err != nil {
			return nil, err
		}
	}
	if g, ok := c.(*g726State); ok {
		g.bigEndianPack = info.g726MSB
	}
	if g, ok := c.(*g722State); ok {
		g.narrow = narrow
	}
	if err := writeHeader(w, info, -1); err != nil {
		return nil, err
	}
	return &Writer{Info: info, w: w, codec: c}, nil
}

// WritePCM encodes interleaved samples.
func (w *Writer) WritePCM(pcm []int16) error {
	if w.err != nil {
		return w.err
	}
	_, us := w.codec.unit()
	unit := us * w.Info.Channels
	w.pending = append(w.pending, pcm...)
	n := len(w.pending) / unit * unit
	w.buf = w.codec.encode(w.buf[:0], w.pending[:n])
	w.pending = w.pending[:copy(w.pending, w.pending[n:])]
	k, err := w.w.Write(w.buf)
	w.written += int64(k)
	w.err = err
	return err
}

// Close pads a partial code unit with silence, writes a WAV pad byte if
// needed and fixes the header sizes when the writer can seek.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if len(w.pending) > 0 {
		_, us := w.codec.unit()
		pad := make([]int16, us*w.Info.Channels-len(w.pending))
		if err := w.WritePCM(pad); err != nil {
			return err
		}
	}
	if w.Info.Container == WAV && w.written&1 == 1 {
		if _, err := w.w.Write([]byte{0}); err != nil {
			return err
		}
	}
	if ws, ok := w.w.(io.WriteSeeker); ok && w.Info.Container != Raw {
		if _, err := ws.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := writeHeader(ws, w.Info, w.written); err != nil {
			return err
		}
		_, err := ws.Seek(0, io.SeekEnd)
		return err
	}
	return nil
}

// WriteWAV encodes a whole mono PCM buffer into a WAV file.
func WriteWAV(w io.Writer, pcm []int16, rate int, codec Codec) error {
	var buf bytes.Buffer
	wr, err := NewWriter(&seekBuffer{b: &buf}, WAV, codec, rate, 1)
	if err != nil {
		return err
	}
	if err := wr.WritePCM(pcm); err != nil {
		return err
	}
	if err := wr.Close(); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// seekBuffer is a bytes.Buffer that can be rewritten in place.
type seekBuffer struct {
	b   *bytes.Buffer
	pos int
}

func (s *seekBuffer) Write(p []byte) (int, error) {
	if s.pos == s.b.Len() {
		s.b.Write(p)
	} else {
		buf := s.b.Bytes()
		n := copy(buf[s.pos:], p)
		if n < len(p) {
			s.b.Write(p[n:])
		}
	}
	s.pos += len(p)
	return len(p), nil
}

func (s *seekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		s.pos = int(off)
	case io.SeekEnd:
		s.pos = s.b.Len() + int(off)
	default:
		s.pos += int(off)
	}
	return int64(s.pos), nil
}

// Probe reads only the header of a WAV or AU stream.
func Probe(r io.Reader) (Info, error) {
	return readHeader(bufio.NewReaderSize(r, 8<<10))
}

// ProbeFileAs probes a file; a headerless one is taken as inCodec at
// inRate (zero: by its extension), as convert reads it.
func ProbeFileAs(path string, inCodec Codec, inRate int) (Info, error) {
	s, c, err := OpenInput(path, inCodec, inRate)
	if err != nil {
		return Info{}, err
	}
	c.Close()
	if s.Info.Container != Raw {
		return ProbeFile(path)
	}
	return s.Info, nil
}

// ProbeFile probes a WAV or AU file.
func ProbeFile(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	info, err := Probe(f)
	if err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	if info.DataSize < 0 {
		// Streamed file: the size on disk tells the duration.
		if st, err := f.Stat(); err == nil {
			info.DataSize = max(st.Size()-info.dataOffset, 0)
			info.setDuration()
		}
	}
	return info, nil
}

// SniffAudio recognises a WAV or AU file from its first bytes and returns
// its media type and, when the file's size is known (size >= 0), its
// duration computed from the header's format fields and the bytes that
// follow the header. The header's own data size is never trusted: a file
// may claim hours and hold a second, or the reverse.
func SniffAudio(head []byte, size int64) (string, time.Duration, bool) {
	info, err := Probe(bytes.NewReader(head))
	if err != nil && !errors.Is(err, ErrUnsupported) {
		return "", 0, false
	}
	var d time.Duration
	if err == nil && size >= 0 {
		d = info.durationOf(size)
	}
	if info.Container == AU {
		return "audio/basic", d, true
	}
	if info.Container == WAV {
		return "audio/wav", d, true
	}
	return "", 0, false
}

// durationOf is the duration of a file of size bytes: its format fields
// applied to the bytes after the header.
func (i Info) durationOf(size int64) time.Duration {
	i.DataSize = max(size-i.dataOffset, 0)
	i.Duration = 0
	i.setDuration()
	return i.Duration
}

// PartDuration tells the duration of an audio part from its first bytes
// (the WAV or AU header's format fields) and the size of its decoded
// content, that is of the audio actually received; the header's data size
// is not trusted. Headerless G.711, G.726 and G.722 parts go by their
// media type.
func PartDuration(mediaType string, head []byte, size int64) (time.Duration, bool) {
	info, err := Probe(bytes.NewReader(head))
	if err == nil {
		if size < 0 {
			return 0, false
		}
		return info.durationOf(size), true
	}
	if !errors.Is(err, ErrUnknownFormat) {
		return 0, false
	}
	switch strings.ToLower(mediaType) {
	case "audio/basic", "audio/pcmu", "audio/pcma":
		return time.Duration(size) * time.Second / 8000, size > 0
	case "audio/32kadpcm", "audio/g726-32":
		return time.Duration(size) * 2 * time.Second / 8000, size > 0
	case "audio/g722":
		return time.Duration(size) * 2 * time.Second / 16000, size > 0
	}
	return 0, false
}

// ConvertOptions choose the output format; zero values follow the output
// file's extension, or keep the input's format.
type ConvertOptions struct {
	Codec     Codec
	Rate      int
	Container Container
	// InCodec and InRate describe a headerless (raw) input; zero values
	// follow the input file's extension (.ul, .al, .g722, .g726, .gsm,
	// .sln: 8 kHz but G.722's 16 kHz). WAV and AU inputs are recognised by
	// their content and need neither.
	InCodec Codec
	InRate  int
}

// Rates convert writes.
const (
	MinRate = 8000
	MaxRate = 48000
)

// OutputExtensions are the file name extensions convert knows.
const OutputExtensions = ".wav .au .ul .al .g722 .g726 .gsm .sln"

// rawDefaults is the codec and rate of a headerless file by its extension.
func rawDefaults(path string) (Codec, int) {
	cont, codec := byExtension(path)
	if cont != Raw {
		return Unknown, 0
	}
	if codec == G722 {
		return codec, 16000
	}
	return codec, 8000
}

// OpenInput opens an audio file for reading: WAV and AU by their content,
// anything else as headerless data of inCodec at inRate (zero: by the
// file's extension). It returns the stream and the file to close.
func OpenInput(path string, inCodec Codec, inRate int) (*Stream, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(f, 32<<10)
	info, herr := readHeader(br)
	if herr == nil {
		if inCodec != Unknown || inRate != 0 {
			f.Close()
			return nil, nil, fmt.Errorf("%s: a %s file says its own codec and rate (drop --in-codec/--in-rate)", path, info.Container)
		}
		s, err := newStream(info, br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return s, f, nil
	}
	if !errors.Is(herr, ErrUnknownFormat) {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, herr)
	}
	codec, rate := rawDefaults(path)
	if inCodec != Unknown {
		codec, rate = inCodec, 8000
		if codec == G722 {
			rate = 16000
		}
	}
	if inRate != 0 {
		rate = inRate
	}
	if codec == Unknown {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w: neither WAV nor AU, and no raw extension (%s); say --in-codec and --in-rate", path, ErrUnknownFormat, OutputExtensions)
	}
	if err := checkRawInput(codec, rate); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	s, err := DecodeRaw(bufio.NewReaderSize(f, 32<<10), codec, rate, 1)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if st, err := f.Stat(); err == nil {
		s.Info.DataSize = st.Size()
		s.Info.setDuration()
	}
	return s, f, nil
}

func checkRawInput(codec Codec, rate int) error {
	switch codec {
	case G722:
		if rate != 16000 {
			return fmt.Errorf("%w: G.722 is 16000 Hz", ErrUnsupported)
		}
	case G726, GSM:
		if rate != 8000 {
			return fmt.Errorf("%w: %s is 8000 Hz", ErrUnsupported, codec)
		}
	default:
		if rate < MinRate || rate > MaxRate {
			return fmt.Errorf("%w: rate %d Hz (%d to %d)", ErrUnsupported, rate, MinRate, MaxRate)
		}
	}
	return nil
}

// byExtension maps an output file name to container and codec.
func byExtension(path string) (Container, Codec) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".wav":
		return WAV, Unknown
	case ".au", ".snd":
		return AU, Unknown
	case ".ul", ".ulaw", ".mulaw", ".pcmu":
		return Raw, PCMU
	case ".al", ".alaw", ".pcma":
		return Raw, PCMA
	case ".g722":
		return Raw, G722
	case ".g726", ".32kadpcm":
		return Raw, G726
	case ".sln", ".raw", ".pcm", ".l16":
		return Raw, L16
	case ".gsm":
		return Raw, GSM
	}
	return NoContainer, Unknown
}

// ConvertFile converts an audio file into another codec/rate/container.
func ConvertFile(inPath, outPath string, opts ConvertOptions) error {
	if opts.Rate != 0 && (opts.Rate < MinRate || opts.Rate > MaxRate) {
		return fmt.Errorf("%w: rate %d Hz (%d to %d)", ErrUnsupported, opts.Rate, MinRate, MaxRate)
	}
	cont, codec := byExtension(outPath)
	if opts.Container != NoContainer {
		cont = opts.Container
	}
	if cont == NoContainer {
		return fmt.Errorf("%w: %s: unknown output extension %q (%s), or say the container", ErrUnknownFormat, outPath, filepath.Ext(outPath), OutputExtensions)
	}
	src, in, err := OpenInput(inPath, opts.InCodec, opts.InRate)
	if err != nil {
		return err
	}
	defer in.Close()
	if cont == NoContainer {
		cont = src.Info.Container
	}
	if opts.Codec != Unknown {
		codec = opts.Codec
	}
	if codec == Unknown {
		codec = src.Info.Codec
		if slices.Contains(ReadOnly(), codec) {
			codec = L16
		}
	}
	if cont == Raw && codec == Unknown {
		return fmt.Errorf("%w: raw output needs a codec", ErrUnsupported)
	}
	rate, ch := opts.Rate, src.Channels()
	switch codec {
	case G722:
		if rate != 0 && rate != 16000 {
			return fmt.Errorf("%w: G.722 is 16 kHz only", ErrUnsupported)
		}
		rate, ch = 16000, 1
		if src.Rate() <= 8000 {
			rate = 8000 // narrowband source: straight into the lower sub-band
		}
	case PCMU, PCMA, G726, GSM:
		if rate == 0 {
			rate = 8000
		}
		if codec == G726 || codec == GSM {
			if rate != 8000 {
				return fmt.Errorf("%w: %s is 8 kHz only", ErrUnsupported, codec)
			}
			ch = 1
		}
	case L16:
		if rate == 0 {
			rate = src.Rate()
		}
	default:
		return fmt.Errorf("%w: writing %s", ErrUnsupported, codec)
	}
	tmp := outPath + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	bw := &bufferedSeeker{f: out, w: bufio.NewWriterSize(out, 64<<10)}
	wr, err := NewWriter(bw, cont, codec, rate, ch)
	if err != nil {
		out.Close()
		return err
	}
	if err := Copy(wr, Convert(src, rate, ch)); err != nil {
		out.Close()
		return err
	}
	if err := wr.Close(); err != nil {
		out.Close()
		return err
	}
	if err := bw.w.Flush(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, outPath)
}

// bufferedSeeker buffers writes to a file and flushes before seeking.
type bufferedSeeker struct {
	f *os.File
	w *bufio.Writer
}

func (b *bufferedSeeker) Write(p []byte) (int, error) { return b.w.Write(p) }
func (b *bufferedSeeker) Seek(off int64, whence int) (int64, error) {
	if err := b.w.Flush(); err != nil {
		return 0, err
	}
	return b.f.Seek(off, whence)
}

// Copy pumps PCM from src into w until src ends.
func Copy(w *Writer, src Source) error {
	buf := make([]int16, 4096*src.Channels())
	for {
		n, err := src.ReadPCM(buf)
		if n > 0 {
			if werr := w.WritePCM(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
