package transcode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/image/draw"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

// Conversion is one media conversion this package offers (what IMAP
// CONVERSIONS, RFC 5259 s4, lists): from and to are "type/subtype", params
// the parameter names it understands.
type Conversion struct {
	From, To string
	Params   []string
}

// Audio conversion parameters. RFC 5259 uses RFC 2506 media feature tags;
// the registry has none for audio coding, so these are unregistered tags
// with the "u." prefix RFC 2506 s3 reserves for them.
const (
	ParamSampleRate = "u.sample-rate"
	ParamChannels   = "u.channels"
	ParamCodec      = "u.codec"
	// Image bounding box (RFC 2912 media features).
	ParamPixX = "pix-x"
	ParamPixY = "pix-y"
	// Text (RFC 5259 s4.1 mandatory).
	ParamCharset     = "charset"
	ParamReplacement = "unknown-character-replacement"
)

// audio media types this package reads (decoded part content).
var audioIn = []string{"audio/wav", "audio/x-wav", "audio/wave", "audio/basic", "audio/au", "audio/32kadpcm", "audio/g726-32", "audio/g722", "audio/l16", "audio/pcmu", "audio/pcma", "audio/gsm"}

// audio media types it writes.
var audioOut = []string{"audio/wav", "audio/basic", "audio/l16", "audio/32kadpcm", "audio/g722", "audio/pcma", "audio/gsm"}

var imageIn = []string{"image/jpeg", "image/png", "image/gif"}
var imageOut = []string{"image/jpeg", "image/png", "image/gif"}

var textTypes = []string{"text/plain", "text/html", "text/css", "text/csv", "text/enriched", "text/xml"}

// Conversions lists every offered conversion.
func Conversions() []Conversion {
	var out []Conversion
	for _, f := range audioIn {
		for _, t := range audioOut {
			out = append(out, Conversion{f, t, []string{ParamSampleRate, ParamChannels, ParamCodec}})
		}
	}
	for _, f := range imageIn {
		for _, t := range imageOut {
			out = append(out, Conversion{f, t, []string{ParamPixX, ParamPixY}})
		}
	}
	for _, t := range textTypes {
		out = append(out, Conversion{t, t, []string{ParamCharset, ParamReplacement}})
	}
	return out
}

// DefaultTarget is the type a NIL (default) conversion produces: G.711
// µ-law WAV for audio (plays everywhere), JPEG for images, UTF-8 for text.
func DefaultTarget(from string) string {
	switch {
	case strings.HasPrefix(from, "audio/"):
		return "audio/wav"
	case strings.HasPrefix(from, "image/"):
		return "image/jpeg"
	case strings.HasPrefix(from, "text/"):
		return from
	}
	return ""
}

// Targets lists the types from can be converted to.
func Targets(from string) []string {
	var out []string
	for _, c := range Conversions() {
		if c.From == from {
			out = append(out, c.To)
		}
	}
	return out
}

// ParamError is a conversion refused for its parameters (RFC 5259 s7
// BADPARAMETERS / MISSINGPARAMETERS).
type ParamError struct {
	Missing bool     // MISSINGPARAMETERS rather than BADPARAMETERS
	Names   []string // the offending parameter names
	Msg     string
}

func (e *ParamError) Error() string { return e.Msg }

// ErrNoConversion: no conversion between these types.
var ErrNoConversion = errors.New("transcode: no such conversion")

// MediaRequest is one part to convert. Types are lower case; Params holds
// the requested conversion parameters (names lower case); FromParams the
// part's Content-Type parameters (charset, rate).
type MediaRequest struct {
	From       string
	FromParams map[string]string
	To         string // "" = the default conversion
	Params     map[string]string
	// MaxInput bounds the decoded input read (0 = 64 MiB).
	MaxInput int64
}

// MediaResult is a converted part.
type MediaResult struct {
	Type   string            // type/subtype
	Params map[string]string // Content-Type parameters of the result
	Data   []byte
}

// ConvertMedia converts a part's decoded content.
func ConvertMedia(req MediaRequest, r io.Reader) (*MediaResult, error) {
	if req.To == "" {
		req.To = DefaultTarget(req.From)
	}
	known := false
	var allowed []string
	for _, c := range Conversions() {
		if c.From == req.From && c.To == req.To {
			known, allowed = true, c.Params
		}
	}
	if !known {
		return nil, fmt.Errorf("%w: %s to %s", ErrNoConversion, req.From, req.To)
	}
	var bad []string
	for k := range req.Params {
		if !contains(allowed, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, &ParamError{Names: bad, Msg: "unknown parameters for " + req.From + " to " + req.To + ": " + strings.Join(bad, ", ")}
	}
	max := req.MaxInput
	if max <= 0 {
		max = 64 << 20
	}
	lr := io.LimitReader(r, max+1)
	switch {
	case strings.HasPrefix(req.From, "audio/"):
		return convertAudio(req, lr)
	case strings.HasPrefix(req.From, "image/"):
		return convertImage(req, lr, max)
	default:
		return convertText(req, lr, max)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func intParam(p map[string]string, name string, lo, hi int) (int, error) {
	v, ok := p[name]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, &ParamError{Names: []string{name}, Msg: fmt.Sprintf("%s must be a number from %d to %d", name, lo, hi)}
	}
	return n, nil
}

// decodeAudioPart opens a part's decoded bytes as PCM.
func decodeAudioPart(req MediaRequest, r io.Reader) (Source, error) {
	rate := 8000
	if v, err := strconv.Atoi(req.FromParams["rate"]); err == nil && v > 0 && v <= maxRate {
		rate = v
	}
	ch := 1
	if v, err := strconv.Atoi(req.FromParams["channels"]); err == nil && v > 0 && v <= maxChannels {
		ch = v
	}
	switch req.From {
	case "audio/32kadpcm", "audio/g726-32":
		// RFC 3802 / RFC 3551: the first sample is in the low nibble (WAV
		// files are the other way round).
		return DecodeRaw(r, G726, 8000, 1)
	case "audio/g722":
		return DecodeRaw(r, G722, 16000, 1)
	case "audio/gsm":
		return DecodeRaw(r, GSM, 8000, 1)
	case "audio/pcmu":
		return DecodeRaw(r, PCMU, rate, ch)
	case "audio/pcma":
		return DecodeRaw(r, PCMA, rate, ch)
	case "audio/l16":
		s, err := DecodeRaw(r, L16, rate, ch)
		if err == nil {
			s.codec = l16Codec{bigEndian: true} // RFC 2586: network byte order
		}
		return s, err
	case "audio/basic":
		// AU file, or headerless µ-law (RFC 2046 audio/basic).
		br := bufio.NewReader(r)
		if head, _ := br.Peek(4); string(head) == ".snd" {
			return Decode(br)
		}
		return DecodeRaw(br, PCMU, 8000, 1)
	}
	return Decode(r)
}

func convertAudio(req MediaRequest, r io.Reader) (*MediaResult, error) {
	rate, err := intParam(req.Params, ParamSampleRate, 8000, 48000)
	if err != nil {
		return nil, err
	}
	ch, err := intParam(req.Params, ParamChannels, 1, 2)
	if err != nil {
		return nil, err
	}
	src, err := decodeAudioPart(req, r)
	if err != nil {
		return nil, err
	}
	var cont Container
	var codec Codec
	switch req.To {
	case "audio/wav":
		cont, codec = WAV, PCMU
	case "audio/basic":
		cont, codec = Raw, PCMU
	case "audio/pcma":
		cont, codec = Raw, PCMA
	case "audio/l16":
		cont, codec = Raw, L16
	case "audio/32kadpcm":
		cont, codec = Raw, G726
	case "audio/g722":
		cont, codec = Raw, G722
	case "audio/gsm":
		cont, codec = Raw, GSM
	}
	if v, ok := req.Params[ParamCodec]; ok {
		if req.To != "audio/wav" {
			return nil, &ParamError{Names: []string{ParamCodec}, Msg: ParamCodec + " applies to audio/wav only"}
		}
		if codec, err = ParseCodec(v); err != nil {
			return nil, &ParamError{Names: []string{ParamCodec}, Msg: "unsupported codec " + strconv.Quote(v)}
		}
	}
	if ch == 0 {
		ch = 1
	}
	switch codec {
	case PCMU, PCMA:
		if req.To == "audio/basic" && rate != 0 && rate != 8000 {
			return nil, &ParamError{Names: []string{ParamSampleRate}, Msg: "audio/basic is 8000 Hz"}
		}
		if rate == 0 {
			rate = 8000
		}
		if req.To == "audio/basic" {
			ch = 1
		}
	case G726, GSM:
		if (rate != 0 && rate != 8000) || ch != 1 {
			return nil, &ParamError{Names: []string{ParamSampleRate, ParamChannels}, Msg: codec.String() + " is 8000 Hz mono"}
		}
		rate = 8000
	case G722:
		if (rate != 0 && rate != 16000) || ch != 1 {
			return nil, &ParamError{Names: []string{ParamSampleRate, ParamChannels}, Msg: "G.722 is 16000 Hz mono"}
		}
		rate = 16000
		if src.Rate() <= 8000 {
			rate = 8000 // narrowband source straight into the lower sub-band
		}
	case L16:
		if rate == 0 {
			rate = src.Rate()
		}
	}
	var buf bytes.Buffer
	sb := &seekBuffer{b: &buf}
	w, err := NewWriter(sb, cont, codec, rate, ch)
	if err != nil {
		return nil, &ParamError{Names: []string{ParamCodec}, Msg: err.Error()}
	}
	if codec == L16 && cont == Raw {
		w.codec = l16Codec{bigEndian: true}
	}
	if err := Copy(w, Convert(src, rate, ch)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	params := map[string]string{}
	if req.To == "audio/l16" {
		params["rate"] = strconv.Itoa(rate)
		params["channels"] = strconv.Itoa(ch)
	}
	return &MediaResult{Type: req.To, Params: params, Data: buf.Bytes()}, nil
}

func convertImage(req MediaRequest, r io.Reader, max int64) (*MediaResult, error) {
	px, err := intParam(req.Params, ParamPixX, 1, 8192)
	if err != nil {
		return nil, err
	}
	py, err := intParam(req.Params, ParamPixY, 1, 8192)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: image larger than %d bytes", ErrUnsupported, max)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if cfg.Width*cfg.Height > 64<<20 {
		return nil, fmt.Errorf("%w: %dx%d image", ErrUnsupported, cfg.Width, cfg.Height)
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	w, h := ScaleToFit(src.Bounds().Dx(), src.Bounds().Dy(), px, py)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Over, nil)
	var out bytes.Buffer
	switch req.To {
	case "image/png":
		err = png.Encode(&out, dst)
	case "image/gif":
		err = gif.Encode(&out, dst, nil)
	default:
		err = jpeg.Encode(&out, dst, &jpeg.Options{Quality: 85})
	}
	if err != nil {
		return nil, err
	}
	return &MediaResult{Type: req.To, Params: map[string]string{}, Data: out.Bytes()}, nil
}

// ScaleToFit returns the size of a w x h picture scaled into a bx x by box
// keeping its aspect ratio (0 = no bound); pictures are never enlarged.
func ScaleToFit(w, h, bx, by int) (int, int) {
	scale := 1.0
	if bx > 0 && w > bx {
		scale = float64(bx) / float64(w)
	}
	if by > 0 && float64(h)*scale > float64(by) {
		scale = float64(by) / float64(h)
	}
	return max(1, int(float64(w)*scale+0.5)), max(1, int(float64(h)*scale+0.5))
}

// charsets this package converts between (RFC 5259 s4.1 requires
// ISO-8859-1..8 and -15 to UTF-8).
var charsets = map[string]encoding.Encoding{
	"iso-8859-1": charmap.ISO8859_1, "iso-8859-2": charmap.ISO8859_2, "iso-8859-3": charmap.ISO8859_3,
	"iso-8859-4": charmap.ISO8859_4, "iso-8859-5": charmap.ISO8859_5, "iso-8859-6": charmap.ISO8859_6,
	"iso-8859-7": charmap.ISO8859_7, "iso-8859-8": charmap.ISO8859_8, "iso-8859-15": charmap.ISO8859_15,
	"windows-1252": charmap.Windows1252, "koi8-r": charmap.KOI8R,
}

// Charset returns the encoding of a charset name (nil for UTF-8/US-ASCII).
func Charset(name string) (encoding.Encoding, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	switch name {
	case "utf-8", "utf8", "us-ascii", "":
		return nil, true
	case "latin1":
		name = "iso-8859-1"
	}
	e, ok := charsets[name]
	return e, ok
}

func convertText(req MediaRequest, r io.Reader, max int64) (*MediaResult, error) {
	to, ok := req.Params[ParamCharset]
	if !ok {
		if req.To != "" && req.Params != nil && len(req.Params) > 0 {
			return nil, &ParamError{Missing: true, Names: []string{ParamCharset}, Msg: "charset is required"}
		}
		to = "utf-8"
	}
	fromEnc, ok := Charset(req.FromParams["charset"])
	if !ok {
		return nil, &ParamError{Names: []string{ParamCharset}, Msg: "cannot read charset " + req.FromParams["charset"]}
	}
	toEnc, ok := Charset(to)
	if !ok {
		return nil, &ParamError{Names: []string{ParamCharset}, Msg: "unsupported target charset " + to}
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: text larger than %d bytes", ErrUnsupported, max)
	}
	if fromEnc != nil {
		if data, err = fromEnc.NewDecoder().Bytes(data); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	if toEnc != nil {
		repl, hasRepl := req.Params[ParamReplacement]
		enc := toEnc.NewEncoder()
		var out []byte
		for len(data) > 0 {
			rn, size := utf8.DecodeRune(data)
			b, err := enc.Bytes(data[:size])
			if err != nil || rn == utf8.RuneError && size == 1 {
				if !hasRepl {
					return nil, &ParamError{Names: []string{ParamReplacement}, Msg: "text has characters " + to + " cannot represent"}
				}
				rb, err := toEnc.NewEncoder().Bytes([]byte(repl))
				if err != nil {
					return nil, &ParamError{Names: []string{ParamReplacement}, Msg: "the replacement is not representable in " + to}
				}
				b = rb
			}
			out = append(out, b...)
			data = data[size:]
		}
		data = out
	}
	return &MediaResult{Type: req.To, Params: map[string]string{"charset": strings.ToLower(to)}, Data: data}, nil
}
