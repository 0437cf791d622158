package streaming

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// Errors of OpenMedia and playback.
var (
	// ErrNotAudio: the part is not audio transcode can decode.
	ErrNotAudio = errors.New("streaming: part is not playable audio")
	// ErrTooLarge: the part is larger than MediaOptions.MaxBytes.
	ErrTooLarge = errors.New("streaming: part too large to play")
	// ErrRange: a start position at or beyond the end of the media.
	ErrRange = errors.New("streaming: position beyond the end")
	// ErrCodec: the media cannot be played in the asked codec.
	ErrCodec = errors.New("streaming: codec not playable")
)

// MediaOptions tune OpenMedia.
type MediaOptions struct {
	// Key names the part in the cache (e.g. "<blob>/<section>"): opening
	// the same key again reuses the stored bytes and every conversion
	// already made. Empty: not cached.
	Key string
	// Cache holds media and conversions; nil is DefaultCache.
	Cache *PartCache
	// MaxBytes bounds the decoded part (default 64 MiB).
	MaxBytes int64
}

// Media is an audio part opened for playback: its coded bytes held in
// memory, probed once, and converted to each wire codec at most once per
// cache entry, on demand, as far as listeners have got.
type Media struct {
	src       *source
	cache     *PartCache
	mediaType string
}

// source is the cached state of one part: coded bytes and conversions.
type source struct {
	key       string
	data      []byte
	mediaType string
	params    map[string]string
	codec     transcode.Codec // stored codec
	rate      int
	channels  int
	duration  time.Duration

	mu    sync.Mutex
	convs map[string]*conversion
	used  atomic.Int64 // unix nanos of the last open (LRU)
	size  atomic.Int64 // data + converted bytes
}

// OpenMedia reads and probes an audio part (a message.DecodedLeaf part).
// The part may be closed when OpenMedia returns.
func OpenMedia(p *message.Part, o MediaOptions) (*Media, error) {
	c := o.Cache
	if c == nil {
		c = DefaultCache
	}
	if o.Key != "" {
		if s := c.get(o.Key); s != nil {
			metricCache.WithLabelValues("hit").Inc()
			return &Media{src: s, cache: c, mediaType: s.mediaType}, nil
		}
	}
	metricCache.WithLabelValues("miss").Inc()
	limit := o.MaxBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	mt := strings.ToLower(p.Type + "/" + p.Subtype)
	if p.Type != "audio" && mt != "application/octet-stream" {
		return nil, fmt.Errorf("%w: %s", ErrNotAudio, mt)
	}
	data, err := io.ReadAll(io.LimitReader(p.Reader(), limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, ErrTooLarge
	}
	s, err := newSource(o.Key, mt, p.Params, data)
	if err != nil {
		return nil, err
	}
	if o.Key != "" {
		s = c.put(s)
	}
	return &Media{src: s, cache: c, mediaType: mt}, nil
}

// OpenMediaBytes opens coded audio held in memory (a WAV or AU file, or
// headerless audio of the media type).
func OpenMediaBytes(mediaType string, params map[string]string, data []byte, o MediaOptions) (*Media, error) {
	c := o.Cache
	if c == nil {
		c = DefaultCache
	}
	if o.Key != "" {
		if s := c.get(o.Key); s != nil {
			return &Media{src: s, cache: c, mediaType: s.mediaType}, nil
		}
	}
	s, err := newSource(o.Key, strings.ToLower(mediaType), params, data)
	if err != nil {
		return nil, err
	}
	if o.Key != "" {
		s = c.put(s)
	}
	return &Media{src: s, cache: c, mediaType: s.mediaType}, nil
}

func newSource(key, mt string, params map[string]string, data []byte) (*source, error) {
	s := &source{key: key, data: data, mediaType: mt, params: params, convs: map[string]*conversion{}}
	st, err := s.decoder()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotAudio, err)
	}
	s.codec, s.rate, s.channels = st.Info.Codec, st.Rate(), st.Info.Channels
	if st.Info.Channels < 1 || s.rate <= 0 {
		return nil, ErrNotAudio
	}
	// The duration goes by the bytes actually present, not by a header.
	d, ok := transcode.PartDuration(mt, data[:min(len(data), 4096)], int64(len(data)))
	if !ok || d <= 0 {
		if st.Info.Container != transcode.Raw {
			d, ok = transcode.PartDuration("", data[:min(len(data), 4096)], int64(len(data)))
		}
		if !ok || d <= 0 {
			return nil, fmt.Errorf("%w: no duration", ErrNotAudio)
		}
	}
	if st.Info.Channels > 1 {
		d /= time.Duration(st.Info.Channels)
	}
	s.duration = d
	s.size.Store(int64(len(data)))
	return s, nil
}

// decoder opens the stored bytes as PCM, by their container's magic bytes
// or, for headerless audio, by the media type.
func (s *source) decoder() (*transcode.Stream, error) {
	r := bytes.NewReader(s.data)
	if st, err := transcode.Decode(r); err == nil {
		return st, nil
	} else if !errors.Is(err, transcode.ErrUnknownFormat) {
		return nil, err
	}
	r.Reset(s.data)
	rate, ch := 8000, 1
	if v, ok := s.params["rate"]; ok {
		fmt.Sscanf(v, "%d", &rate)
		rate = min(max(rate, 8000), 48000)
	}
	if v, ok := s.params["channels"]; ok {
		fmt.Sscanf(v, "%d", &ch)
		ch = min(max(ch, 1), 2)
	}
	switch s.mediaType {
	case "audio/basic", "audio/pcmu":
		return transcode.DecodeRaw(r, transcode.PCMU, rate, ch)
	case "audio/pcma":
		return transcode.DecodeRaw(r, transcode.PCMA, rate, ch)
	case "audio/32kadpcm", "audio/g726-32":
		return transcode.DecodeRaw(r, transcode.G726, 8000, 1)
	case "audio/g722":
		return transcode.DecodeRaw(r, transcode.G722, 16000, 1)
	case "audio/gsm":
		return transcode.DecodeRaw(r, transcode.GSM, 8000, 1)
	case "audio/l16":
		// RFC 2586: network byte order.
		return transcode.DecodeRaw(&swapReader{r: bufio.NewReader(r)}, transcode.L16, rate, ch)
	}
	return nil, transcode.ErrUnknownFormat
}

// swapReader swaps the octets of each 16-bit word.
type swapReader struct {
	r   *bufio.Reader
	odd []byte
}

func (w *swapReader) Read(b []byte) (int, error) {
	n, err := io.ReadFull(w.r, b[:len(b)&^1])
	n &^= 1
	for i := 0; i+1 < n; i += 2 {
		b[i], b[i+1] = b[i+1], b[i]
	}
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	if n > 0 {
		return n, nil
	}
	return n, err
}

// Duration is the playing time of the media.
func (m *Media) Duration() time.Duration { return m.src.duration }

// MediaType is the part's media type (lower case).
func (m *Media) MediaType() string { return m.mediaType }

// Frames is the number of 20-ms packets of the media.
func (m *Media) Frames() int { return int((m.src.duration + FrameTime - 1) / FrameTime) }

// Playable lists the wire codecs the media plays in, cheapest conversion
// first.
func (m *Media) Playable() []Codec {
	l16 := L16
	if m.src.rate >= 16000 {
		l16 = L16Wide
	}
	out := []Codec{PCMU, PCMA, G722, l16}
	slices.SortStableFunc(out, func(a, b Codec) int {
		return cost(m.src.codec, m.src.rate, a) - cost(m.src.codec, m.src.rate, b)
	})
	return out
}

// Choose picks the first of the offered codecs (in the offer's order of
// preference) with the cheapest conversion; ok is false when none plays.
func (m *Media) Choose(offered []Codec) (Codec, bool) {
	best, bestCost := Codec{}, 1<<30
	for _, c := range offered {
		ok := false
		for _, p := range m.Playable() {
			if p.Same(c) {
				ok = true
			}
		}
		if !ok {
			continue
		}
		if k := cost(m.src.codec, m.src.rate, c); k < bestCost {
			best, bestCost = c, k
		}
	}
	return best, bestCost < 1<<30
}

// conversion is the media in one wire codec, made on demand in chunks of
// a second. Readers take a snapshot of the chunk list; chunks are never
// changed once published.
type conversion struct {
	codec  Codec
	frame  int // payload octets of a frame
	chunks atomic.Pointer[[][]byte]
	done   atomic.Bool
	total  int // frames of the media

	mu      sync.Mutex // serializes filling
	src     transcode.Source
	w       *transcode.Writer
	out     bytes.Buffer
	pcm     []int16
	samples int // per frame
	err     error
	owner   *source
	// direct: the stored coded data, when frames are its octets (table
	// nil) or a map of them (G.711 µ-law <-> A-law).
	direct []byte
	table  *[256]byte
}

const chunkFrames = 50 // one second of 20-ms frames

// conv returns the media's conversion to c, creating it on first use.
func (m *Media) conv(c Codec) (*conversion, error) {
	s := m.src
	ok := false
	for _, p := range m.Playable() {
		if p.Same(c) {
			ok = true
		}
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrCodec, c)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cv := s.convs[c.key()]; cv != nil {
		return cv, nil
	}
	cv0 := &conversion{codec: c, frame: c.frameBytes(), total: m.Frames(), samples: c.sampleRate() / framesPerSecond, owner: s}
	if direct, table, ok := s.byteMapped(c); ok {
		// Stored bytes are the wire bytes (or map to them octet by
		// octet): frames are slices of the stored data.
		cv0.direct, cv0.table = direct, table
		empty := make([][]byte, 0, cv0.total/chunkFrames+1)
		cv0.chunks.Store(&empty)
		s.convs[c.key()] = cv0
		metricConversions.WithLabelValues(c.key()).Inc()
		return cv0, nil
	}
	st, err := s.decoder()
	if err != nil {
		return nil, err
	}
	src := transcode.Convert(st, c.sampleRate(), 1)
	cv := cv0
	cv.src = src
	w2, err := transcode.NewWriter(&cv.out, transcode.Raw, c.coder(), c.sampleRate(), 1)
	if err != nil {
		return nil, err
	}
	cv.w = w2
	empty := make([][]byte, 0, cv.total/chunkFrames+1)
	cv.chunks.Store(&empty)
	s.convs[c.key()] = cv
	metricConversions.WithLabelValues(c.key()).Inc()
	return cv, nil
}

// frame returns the payload of frame i (nil beyond the end), converting
// as far as needed.
func (cv *conversion) frameAt(i int) []byte {
	if i < 0 || i >= cv.total {
		return nil
	}
	ch := *cv.chunks.Load()
	if i/chunkFrames >= len(ch) {
		cv.fill(i / chunkFrames)
		ch = *cv.chunks.Load()
		if i/chunkFrames >= len(ch) {
			return nil
		}
	}
	c := ch[i/chunkFrames]
	off := (i % chunkFrames) * cv.frame
	if off+cv.frame > len(c) {
		return nil
	}
	return c[off : off+cv.frame : off+cv.frame]
}

// fill converts chunks up to and including chunk n.
func (cv *conversion) fill(n int) {
	cv.mu.Lock()
	defer cv.mu.Unlock()
	for {
		ch := *cv.chunks.Load()
		if len(ch) > n || cv.done.Load() {
			return
		}
		frames := min(chunkFrames, cv.total-len(ch)*chunkFrames)
		if frames <= 0 {
			cv.done.Store(true)
			return
		}
		if cv.direct != nil {
			cv.fillDirect(ch, frames)
			continue
		}
		want := frames * cv.samples
		if cap(cv.pcm) < want {
			cv.pcm = make([]int16, want)
		}
		pcm := cv.pcm[:want]
		got := 0
		for got < want && cv.err == nil {
			k, err := cv.src.ReadPCM(pcm[got:])
			got += k
			if err != nil {
				cv.err = err
			}
		}
		clear(pcm[got:]) // silence after the end
		cv.out.Reset()
		if err := cv.w.WritePCM(pcm); err != nil {
			cv.err = err
		}
		b := make([]byte, frames*cv.frame)
		copy(b, cv.out.Bytes())
		if cv.codec.coder() == transcode.L16 {
			for i := 0; i+1 < len(b); i += 2 {
				b[i], b[i+1] = b[i+1], b[i]
			}
		}
		next := append(ch, b) // in place: readers see only their snapshot's length
		cv.chunks.Store(&next)
		cv.owner.size.Add(int64(len(b)))
		if len(next)*chunkFrames >= cv.total {
			cv.done.Store(true)
			cv.src, cv.w, cv.pcm = nil, nil, nil
		}
	}
}

// PartCache keeps opened media and their conversions so that many
// listeners of one message share one copy and one conversion per codec.
// It holds at most MaxBytes, dropping the least recently opened entries.
type PartCache struct {
	MaxBytes int64

	mu      sync.Mutex
	entries map[string]*source
}

// DefaultCache is the cache OpenMedia uses when given none (256 MiB).
var DefaultCache = NewPartCache(256 << 20)

// NewPartCache returns a cache of at most maxBytes.
func NewPartCache(maxBytes int64) *PartCache {
	return &PartCache{MaxBytes: maxBytes, entries: map[string]*source{}}
}

func (c *PartCache) get(key string) *source {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.entries[key]
	if s != nil {
		s.used.Store(time.Now().UnixNano())
	}
	return s
}

// put adds s unless another opener added the key first (that one is
// returned), and trims the cache.
func (c *PartCache) put(s *source) *source {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[s.key]; old != nil {
		old.used.Store(time.Now().UnixNano())
		return old
	}
	s.used.Store(time.Now().UnixNano())
	c.entries[s.key] = s
	c.trimLocked()
	return s
}

// Forget drops a key (a message expunged, a blob collected).
func (c *PartCache) Forget(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

// Size is the bytes held.
func (c *PartCache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, s := range c.entries {
		n += s.size.Load()
	}
	return n
}

func (c *PartCache) trimLocked() {
	var total int64
	for _, s := range c.entries {
		total += s.size.Load()
	}
	for total > c.MaxBytes && len(c.entries) > 1 {
		var oldest *source
		for _, s := range c.entries {
			if oldest == nil || s.used.Load() < oldest.used.Load() {
				oldest = s
			}
		}
		total -= oldest.size.Load()
		delete(c.entries, oldest.key)
	}
}

// Prepare converts the whole media to c now (benchmarks, warm-up of a
// message about to be played by many).
func Prepare(m *Media, c Codec) error {
	cv, err := m.conv(c)
	if err != nil {
		return err
	}
	cv.fill(cv.total / chunkFrames)
	return nil
}

// fillDirect publishes the next chunk of a byte-mapped conversion.
func (cv *conversion) fillDirect(ch [][]byte, frames int) {
	n := frames * cv.frame
	off := len(ch) * chunkFrames * cv.frame
	src := cv.direct[min(off, len(cv.direct)):min(off+n, len(cv.direct))]
	var b []byte
	if cv.table == nil && len(src) == n {
		b = src[:n:n]
	} else {
		b = make([]byte, n)
		if cv.table == nil {
			copy(b, src)
		} else {
			for i, v := range src {
				b[i] = cv.table[v]
			}
		}
		for i := len(src); i < n; i++ {
			b[i] = silenceByte(cv.codec)
		}
	}
	next := append(ch, b)
	cv.chunks.Store(&next)
	if len(next)*chunkFrames >= cv.total {
		cv.done.Store(true)
	}
}

func silenceByte(c Codec) byte {
	switch c.coder() {
	case transcode.PCMU:
		return 0xff
	case transcode.PCMA:
		return 0xd5
	}
	return 0xfa // G.722: a near-zero code word
}

// byteMapped returns the stored coded data when the wire codec's octets
// are the stored ones (same G.711 or G.722, mono, same rate) or map to
// them one to one (the other G.711 law), with the map.
func (s *source) byteMapped(c Codec) ([]byte, *[256]byte, bool) {
	to := c.coder()
	if s.channels != 1 || s.rate != c.sampleRate() || (to != transcode.PCMU && to != transcode.PCMA && to != transcode.G722) {
		return nil, nil, false
	}
	off, ok := dataOffset(s.data, s.mediaType)
	if !ok {
		return nil, nil, false
	}
	data := s.data[off:]
	switch {
	case s.codec == to:
		return data, nil, true
	case s.codec == transcode.PCMU && to == transcode.PCMA:
		return data, lawMap(transcode.PCMU, transcode.PCMA), true
	case s.codec == transcode.PCMA && to == transcode.PCMU:
		return data, lawMap(transcode.PCMA, transcode.PCMU), true
	}
	return nil, nil, false
}

var (
	lawMu   sync.Mutex
	lawMaps = map[[2]transcode.Codec]*[256]byte{}
)

// lawMap is the octet map from one G.711 law to the other, through
// transcode's decoder and encoder.
func lawMap(from, to transcode.Codec) *[256]byte {
	lawMu.Lock()
	defer lawMu.Unlock()
	if t := lawMaps[[2]transcode.Codec{from, to}]; t != nil {
		return t
	}
	var in [256]byte
	for i := range in {
		in[i] = byte(i)
	}
	st, _ := transcode.DecodeRaw(bytes.NewReader(in[:]), from, 8000, 1)
	pcm := make([]int16, 256)
	n := 0
	for n < 256 {
		k, err := st.ReadPCM(pcm[n:])
		n += k
		if err != nil {
			break
		}
	}
	var out bytes.Buffer
	w, _ := transcode.NewWriter(&out, transcode.Raw, to, 8000, 1)
	w.WritePCM(pcm[:n])
	t := new([256]byte)
	copy(t[:], out.Bytes())
	lawMaps[[2]transcode.Codec{from, to}] = t
	return t
}

// dataOffset is where the coded data of a mono WAV or AU file (or of
// headerless audio) starts; ok is false for anything else.
func dataOffset(b []byte, mediaType string) (int, bool) {
	le, be := binary.LittleEndian, binary.BigEndian
	switch {
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WAVE":
		off := 12
		for off+8 <= len(b) && off < 1<<20 {
			id, size := string(b[off:off+4]), int(le.Uint32(b[off+4:]))
			if id == "fmt " && (off+8+16 > len(b) || le.Uint16(b[off+8+2:]) != 1) {
				return 0, false // not mono
			}
			if id == "data" {
				return off + 8, true
			}
			if size < 0 || size > len(b) {
				return 0, false
			}
			off += 8 + size + size&1
		}
		return 0, false
	case len(b) >= 24 && string(b[:4]) == ".snd":
		off := int(be.Uint32(b[4:]))
		if be.Uint32(b[20:]) != 1 || off < 24 || off > len(b) {
			return 0, false
		}
		return off, true
	}
	switch mediaType {
	case "audio/basic", "audio/pcmu", "audio/pcma", "audio/g722":
		return 0, true
	}
	return 0, false
}
