package streaming

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// RTSP/1.0 messages (RFC 2326 s4-s6, s12): requests read from a
// connection, with the interleaved $ frames a client may send between
// them; responses built as text. Limits keep a hostile client from making
// us buffer much: a request line or header line of 4 KiB, 64 header
// fields, a body of 64 KiB.

// Limits of request parsing.
const (
	maxLineBytes   = 4096
	maxHeaderCount = 64
	maxBodyBytes   = 64 << 10
)

// Errors of request parsing.
var (
	ErrRTSPSyntax  = errors.New("rtsp: malformed request")
	ErrRTSPVersion = errors.New("rtsp: version not supported")
	ErrRTSPTooBig  = errors.New("rtsp: request too large")
)

// Request is one RTSP request.
type Request struct {
	Method string
	URL    string
	Header map[string]string // canonical names (textproto), last one wins
	Body   []byte
}

// Get returns a header field.
func (r *Request) Get(name string) string {
	return r.Header[textproto.CanonicalMIMEHeaderKey(name)]
}

// Frame is an interleaved binary packet a client sent ($ channel length).
type Frame struct {
	Channel byte
	Data    []byte
}

// ReadMessage reads the next request or interleaved frame.
func ReadMessage(br *bufio.Reader) (*Request, *Frame, error) {
	// Skip empty lines between messages (some clients send CRLF pings).
	for {
		b, err := br.Peek(1)
		if err != nil {
			return nil, nil, err
		}
		if b[0] == '$' {
			f, err := readFrame(br)
			return nil, f, err
		}
		if b[0] != '\r' && b[0] != '\n' {
			break
		}
		br.ReadByte()
	}
	req, err := readRequest(br)
	return req, nil, err
}

func readFrame(br *bufio.Reader) (*Frame, error) {
	var h [4]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	n := int(h[2])<<8 | int(h[3])
	f := &Frame{Channel: h[1], Data: make([]byte, n)}
	if _, err := io.ReadFull(br, f.Data); err != nil {
		return nil, err
	}
	return f, nil
}

func readLine(br *bufio.Reader) (string, error) {
	var line []byte
	for {
		frag, isPrefix, err := br.ReadLine()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		line = append(line, frag...)
		if len(line) > maxLineBytes {
			return "", ErrRTSPTooBig
		}
		if !isPrefix {
			return string(line), nil
		}
	}
}

func readRequest(br *bufio.Reader) (*Request, error) {
	line, err := readLine(br)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(line)
	if len(f) != 3 {
		return nil, fmt.Errorf("%w: request line", ErrRTSPSyntax)
	}
	req := &Request{Method: f[0], URL: f[1], Header: map[string]string{}}
	for _, c := range req.Method {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return nil, fmt.Errorf("%w: method", ErrRTSPSyntax)
		}
	}
	n := 0
	for {
		l, err := readLine(br)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if l == "" {
			break
		}
		if n++; n > maxHeaderCount {
			return nil, ErrRTSPTooBig
		}
		if l[0] == ' ' || l[0] == '\t' {
			return nil, fmt.Errorf("%w: folded header", ErrRTSPSyntax)
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%w: header line", ErrRTSPSyntax)
		}
		req.Header[textproto.CanonicalMIMEHeaderKey(k)] = strings.TrimSpace(v)
	}
	if !strings.HasPrefix(f[2], "RTSP/") {
		return req, fmt.Errorf("%w: %q", ErrRTSPSyntax, f[2])
	}
	if f[2] != "RTSP/1.0" {
		return req, ErrRTSPVersion
	}
	if cl := req.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 {
			return req, fmt.Errorf("%w: Content-Length", ErrRTSPSyntax)
		}
		if n > maxBodyBytes {
			return req, ErrRTSPTooBig
		}
		req.Body = make([]byte, n)
		if _, err := io.ReadFull(br, req.Body); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// Response is an RTSP response being built.
type Response struct {
	Code int
	// Reason replaces the standard reason phrase (a refusal that says
	// why).
	Reason string
	Header [][2]string
	Body   []byte
}

// Set adds a header field.
func (r *Response) Set(k, v string) { r.Header = append(r.Header, [2]string{k, v}) }

var reasons = map[int]string{
	200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
	405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout", 413: "Request Entity Too Large",
	415: "Unsupported Media Type", 451: "Parameter Not Understood", 453: "Not Enough Bandwidth", 454: "Session Not Found",
	455: "Method Not Valid in This State", 456: "Header Field Not Valid for Resource", 457: "Invalid Range", 459: "Aggregate Operation Not Allowed",
	460: "Only Aggregate Operation Allowed", 461: "Unsupported Transport", 462: "Destination Unreachable",
	500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
	505: "RTSP Version Not Supported", 551: "Option not supported",
}

// Bytes formats the response with the CSeq echoed.
func (r *Response) Bytes(cseq string) []byte {
	var b strings.Builder
	reason := reasons[r.Code]
	if r.Reason != "" {
		reason = r.Reason
	}
	if reason == "" {
		reason = "Error"
	}
	fmt.Fprintf(&b, "RTSP/1.0 %d %s\r\n", r.Code, reason)
	if cseq != "" {
		fmt.Fprintf(&b, "CSeq: %s\r\n", cseq)
	}
	for _, h := range r.Header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if len(r.Body) > 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.Body))
	}
	b.WriteString("\r\n")
	b.Write(r.Body)
	return []byte(b.String())
}

// TransportSpec is one entry of a Transport header (RFC 2326 s12.39).
type TransportSpec struct {
	Profile    string // as sent: "RTP/AVP", "RTP/SAVP", "RTP/AVP/TCP"...
	Secure     bool   // SAVP / SAVPF
	TCP        bool
	Multicast  bool
	ClientPort [2]int
	Interleave [2]int
	HasPorts   bool
	HasIlv     bool
	Record     bool
	Unknown    bool // profile we do not speak
}

// ParseTransport parses a Transport header's specs in preference order.
func ParseTransport(v string) ([]TransportSpec, error) {
	var out []TransportSpec
	for spec := range strings.SplitSeq(v, ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		parts := strings.Split(spec, ";")
		t := TransportSpec{Profile: strings.TrimSpace(parts[0])}
		p := strings.Split(strings.ToUpper(t.Profile), "/")
		if len(p) < 2 || len(p) > 3 || p[0] != "RTP" {
			t.Unknown = true
		} else {
			switch p[1] {
			case "AVP", "AVPF":
			case "SAVP", "SAVPF":
				t.Secure = true
			default:
				t.Unknown = true
			}
			if len(p) == 3 {
				switch p[2] {
				case "TCP":
					t.TCP = true
				case "UDP":
				default:
					t.Unknown = true
				}
			}
		}
		for _, prm := range parts[1:] {
			k, val, _ := strings.Cut(strings.TrimSpace(prm), "=")
			switch strings.ToLower(k) {
			case "multicast":
				t.Multicast = true
			case "client_port":
				a, b, err := portPair(val)
				if err != nil {
					return nil, err
				}
				t.ClientPort, t.HasPorts = [2]int{a, b}, true
			case "interleaved":
				a, b, err := portPair(val)
				if err != nil || a > 255 || b > 255 {
					return nil, fmt.Errorf("%w: interleaved", ErrRTSPSyntax)
				}
				t.Interleave, t.HasIlv = [2]int{a, b}, true
			case "mode":
				if !strings.EqualFold(strings.Trim(val, `"`), "play") {
					t.Record = true
				}
			}
		}
		out = append(out, t)
		if len(out) > 16 {
			return nil, fmt.Errorf("%w: too many transports", ErrRTSPSyntax)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty Transport", ErrRTSPSyntax)
	}
	return out, nil
}

func portPair(v string) (int, int, error) {
	a, b, ok := strings.Cut(v, "-")
	x, err := strconv.Atoi(a)
	if err != nil || x < 0 || x > 65535 {
		return 0, 0, fmt.Errorf("%w: port %q", ErrRTSPSyntax, v)
	}
	y := x + 1
	if ok {
		if y, err = strconv.Atoi(b); err != nil || y < 0 || y > 65535 {
			return 0, 0, fmt.Errorf("%w: port %q", ErrRTSPSyntax, v)
		}
	}
	return x, y, nil
}

// ErrRangeUnit: a Range in a format other than npt (smpte, clock); RFC
// 2326 s12.29 answers a format not understood with 501.
var ErrRangeUnit = errors.New("rtsp: range format not supported")

// RangeSpec is a parsed npt Range (RFC 2326 s3.6): "npt=<start>-[<end>]",
// "npt=-<end>" or "npt=now-".
type RangeSpec struct {
	Start, End       time.Duration
	HasStart, HasEnd bool // false for "now", an empty start or no end
}

// ParseRangeSpec parses a Range header value; "" is no range. A format
// other than npt is ErrRangeUnit, a malformed npt range ErrRTSPSyntax.
// A ";time=" parameter is ignored.
func ParseRangeSpec(v string) (RangeSpec, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return RangeSpec{}, nil
	}
	spec, _, _ := strings.Cut(v, ";")
	unit, val, found := strings.Cut(strings.TrimSpace(spec), "=")
	if !found {
		return RangeSpec{}, fmt.Errorf("%w: range %q", ErrRTSPSyntax, v)
	}
	switch u := strings.ToLower(strings.TrimSpace(unit)); {
	case u == "npt":
	case u == "clock" || u == "smpte" || strings.HasPrefix(u, "smpte-"):
		return RangeSpec{}, fmt.Errorf("%w: %s", ErrRangeUnit, u)
	default:
		return RangeSpec{}, fmt.Errorf("%w: %q", ErrRangeUnit, unit)
	}
	s, e, found := strings.Cut(val, "-")
	if !found {
		return RangeSpec{}, fmt.Errorf("%w: range %q", ErrRTSPSyntax, v)
	}
	var r RangeSpec
	s, e = strings.TrimSpace(s), strings.TrimSpace(e)
	if s != "" && s != "now" {
		d, err := parseNPT(s)
		if err != nil {
			return RangeSpec{}, err
		}
		r.Start, r.HasStart = d, true
	}
	if e != "" {
		d, err := parseNPT(e)
		if err != nil {
			return RangeSpec{}, err
		}
		r.End, r.HasEnd = d, true
	}
	if s == "" && !r.HasEnd {
		return RangeSpec{}, fmt.Errorf("%w: empty range %q", ErrRTSPSyntax, v)
	}
	return r, nil
}

// ParseRange parses "npt=<start>-[<end>]" (RFC 2326 s3.6); ok is false
// for "now" or no start.
func ParseRange(v string) (start time.Duration, ok bool, err error) {
	r, err := ParseRangeSpec(v)
	return r.Start, r.HasStart, err
}

func parseNPT(s string) (time.Duration, error) {
	var secs float64
	if strings.Contains(s, ":") {
		f := strings.Split(s, ":")
		if len(f) != 3 {
			return 0, fmt.Errorf("%w: npt %q", ErrRTSPSyntax, s)
		}
		h, err1 := strconv.ParseUint(f[0], 10, 32)
		m, err2 := strconv.ParseUint(f[1], 10, 8)
		sec, err3 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil || err3 != nil || m > 59 || sec >= 60 || sec < 0 {
			return 0, fmt.Errorf("%w: npt %q", ErrRTSPSyntax, s)
		}
		secs = float64(h)*3600 + float64(m)*60 + sec
	} else {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || strings.ContainsAny(s, "eEnNiIxX+") {
			return 0, fmt.Errorf("%w: npt %q", ErrRTSPSyntax, s)
		}
		secs = v
	}
	if secs > 1e7 {
		return 0, fmt.Errorf("%w: npt %q", ErrRTSPSyntax, s)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// FormatNPT formats a position as seconds with milliseconds.
func FormatNPT(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}
