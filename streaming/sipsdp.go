package streaming

// SDP offer/answer (RFC 3264) for the SIP media server: the offer of a
// caller is parsed with pion/sdp and read for its first usable audio
// stream (address, ports, codecs, SDES keys, direction); the answer is
// written here, with as many m= lines as the offer (the others rejected
// with port 0). A call without an offer in its INVITE gets our offer in
// the 200 and its answer in the ACK (RFC 3261 s13.2.1): the same parser
// reads that answer.

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Errors of SDP negotiation: errSDPMalformed is answered 400, the others
// 488 Not Acceptable Here.
var (
	errSDPMalformed = errors.New("streaming: malformed SDP")
	errSDPNoAudio   = errors.New("streaming: no usable audio stream offered")
	errSDPNoCodec   = errors.New("streaming: no acceptable codec")
	errSDPNoCrypto  = errors.New("streaming: no acceptable SRTP key")
	errSDPPlain     = errors.New("streaming: plain RTP refused (SRTP required)")
)

// maxSDP bounds the SDP bodies we parse.
const maxSDP = 16 << 10

// sdpMedia is what we read of one offered (or answered) audio stream.
type sdpMedia struct {
	index     int        // m= line index
	addr      netip.Addr // media address (media-level c=, else session-level)
	port      int
	rtcpPort  int // a=rtcp, else port+1
	rtcpMux   bool
	proto     string     // e.g. "RTP/SAVP"
	codecs    []Codec    // codecs we can send, in the offer's order, with its payload types
	dtmf      int        // telephone-event payload type at 8000, -1 none
	crypto    []*SDESKey // usable a=crypto lines, in the offer's order
	direction string     // sendrecv, sendonly, recvonly, inactive
}

// sdpDesc is a parsed offer or answer.
type sdpDesc struct {
	media  []sdpMediaLine // every m= line, for the answer's rejected lines
	audio  *sdpMedia      // the first usable audio stream, nil: none
	origin string
}

// sdpMediaLine keeps what a rejected m= line must repeat.
type sdpMediaLine struct {
	media, proto, format string
}

// secure reports whether the stream is offered as SRTP: an RTP/SAVP(F)
// profile, or RTP/AVP carrying a=crypto ("best effort" SRTP).
func (m *sdpMedia) secure() bool {
	return strings.Contains(m.proto, "SAVP") || len(m.crypto) > 0
}

// held reports whether the peer does not want to receive: a sendonly or
// inactive direction, or the RFC 2543 hold address 0.0.0.0.
func (m *sdpMedia) held() bool {
	return m.direction == "sendonly" || m.direction == "inactive" || (m.addr.IsValid() && m.addr.IsUnspecified())
}

// parseSDP reads an offer or an answer.
func parseSDP(b []byte) (*sdpDesc, error) {
	if len(b) == 0 || len(b) > maxSDP {
		return nil, fmt.Errorf("%w: %d octets", errSDPMalformed, len(b))
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: %v", errSDPMalformed, err)
	}
	d := &sdpDesc{origin: sd.Origin.Username}
	var sessAddr netip.Addr
	if sd.ConnectionInformation != nil {
		a, err := connAddr(sd.ConnectionInformation)
		if err != nil {
			return nil, err
		}
		sessAddr = a
	}
	sessDir := directionOf(sd.Attributes, "sendrecv")
	for i, md := range sd.MediaDescriptions {
		proto := strings.Join(md.MediaName.Protos, "/")
		format := ""
		if len(md.MediaName.Formats) > 0 {
			format = md.MediaName.Formats[0]
		}
		d.media = append(d.media, sdpMediaLine{media: md.MediaName.Media, proto: proto, format: format})
		if d.audio != nil || md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		if proto != "RTP/AVP" && proto != "RTP/SAVP" && proto != "RTP/AVPF" && proto != "RTP/SAVPF" {
			continue // DTLS-SRTP and the like
		}
		m := &sdpMedia{index: i, addr: sessAddr, port: md.MediaName.Port.Value, proto: proto, dtmf: -1,
			direction: directionOf(md.Attributes, sessDir)}
		if m.port < 1 || m.port > 65535 {
			return nil, fmt.Errorf("%w: port %d", errSDPMalformed, m.port)
		}
		if md.ConnectionInformation != nil {
			a, err := connAddr(md.ConnectionInformation)
			if err != nil {
				return nil, err
			}
			m.addr = a
		}
		if !m.addr.IsValid() {
			return nil, fmt.Errorf("%w: no connection address", errSDPMalformed)
		}
		m.rtcpPort = m.port + 1
		rtpmaps := map[uint8]string{}
		for _, a := range md.Attributes {
			switch strings.ToLower(a.Key) {
			case "rtpmap":
				ptS, enc, ok := strings.Cut(a.Value, " ")
				pt, err := strconv.ParseUint(ptS, 10, 7)
				if ok && err == nil {
					rtpmaps[uint8(pt)] = strings.TrimSpace(enc)
				}
			case "rtcp":
				f := strings.Fields(a.Value)
				if len(f) > 0 {
					if p, err := strconv.Atoi(f[0]); err == nil && p > 0 && p <= 65535 {
						m.rtcpPort = p
					}
				}
			case "rtcp-mux":
				m.rtcpMux = true
			case "crypto":
				if k, err := ParseCrypto(a.Value); err == nil && !hasTag(m.crypto, k.Tag) {
					m.crypto = append(m.crypto, k)
				}
			}
		}
		for _, f := range md.MediaName.Formats {
			pt, err := strconv.ParseUint(f, 10, 7)
			if err != nil {
				continue
			}
			if enc, ok := rtpmaps[uint8(pt)]; ok {
				if strings.EqualFold(enc, "telephone-event/8000") && m.dtmf < 0 {
					m.dtmf = int(pt)
					continue
				}
				if c, ok := ParseRTPMap(uint8(pt), enc); ok {
					m.codecs = append(m.codecs, c)
				}
				continue
			}
			if c, ok := StaticCodec(uint8(pt)); ok {
				m.codecs = append(m.codecs, c)
			}
		}
		d.audio = m
	}
	return d, nil
}

func hasTag(l []*SDESKey, tag int) bool {
	for _, k := range l {
		if k.Tag == tag {
			return true
		}
	}
	return false
}

// connAddr reads a c= line: IN IP4 or IN IP6, unicast address.
func connAddr(c *sdp.ConnectionInformation) (netip.Addr, error) {
	if c.NetworkType != "IN" || c.Address == nil || (c.AddressType != "IP4" && c.AddressType != "IP6") {
		return netip.Addr{}, fmt.Errorf("%w: connection %q %q", errSDPMalformed, c.NetworkType, c.AddressType)
	}
	host, _, _ := strings.Cut(c.Address.Address, "/")
	a, err := netip.ParseAddr(host)
	if err != nil || a.IsMulticast() || (a.Is4() != (c.AddressType == "IP4")) {
		return netip.Addr{}, fmt.Errorf("%w: connection address %q", errSDPMalformed, c.Address.Address)
	}
	return a, nil
}

func directionOf(attrs []sdp.Attribute, def string) string {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return def
}

// answerDirection is our direction for the peer's (RFC 3264 s6.1): we
// only send.
func answerDirection(peer string) string {
	switch peer {
	case "sendonly", "inactive":
		return "inactive"
	}
	return "sendonly"
}

// sdpPolicy is what the configuration allows.
type sdpPolicy struct {
	requireSRTP bool
	// allowSDES: SDES keys may travel in this call's signalling (TLS, a
	// trusted source, or configured so).
	allowSDES bool
}

// negotiated is the outcome of an offer: what to send and how.
type negotiated struct {
	codec Codec
	dtmf  int      // telephone-event PT kept in the answer, -1 none
	key   *SDESKey // our sending key (nil: plain RTP)
	peer  *SDESKey // the peer's key (for the tag and suite)
}

// negotiate picks the codec (least conversion, media.Choose) and the SRTP
// key for an offered stream.
func negotiate(m *sdpMedia, choose func([]Codec) (Codec, bool), pol sdpPolicy) (*negotiated, error) {
	n := &negotiated{dtmf: m.dtmf}
	if m.secure() {
		if !pol.allowSDES {
			return nil, fmt.Errorf("%w: SDES over unprotected signalling", errSDPNoCrypto)
		}
		if len(m.crypto) == 0 {
			return nil, errSDPNoCrypto // RTP/SAVP without SDES (DTLS, ZRTP)
		}
		// The first offered line we support (ParseCrypto took only ours).
		n.peer = m.crypto[0]
		k, err := NewSDESKey(n.peer.Tag, n.peer.Suite)
		if err != nil {
			return nil, err
		}
		n.key = k
	} else if pol.requireSRTP {
		return nil, errSDPPlain
	}
	c, ok := choose(m.codecs)
	if !ok {
		return nil, errSDPNoCodec
	}
	n.codec = c
	return n, nil
}

// sdpOrigin is our o= line state: one session id per call, the version
// incremented with every new SDP we send.
type sdpOrigin struct {
	id, version uint64
}

// writeAnswer writes our answer to an offer. addr is our media address,
// port and rtcpPort our sockets' ports.
func writeAnswer(off *sdpDesc, n *negotiated, o *sdpOrigin, addr netip.Addr, port, rtcpPort int, dir string) []byte {
	var b strings.Builder
	writeSession(&b, o, addr)
	for i, ml := range off.media {
		if off.audio == nil || i != off.audio.index {
			fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", ml.media, ml.proto, cmpOr(ml.format, "0"))
			continue
		}
		m := off.audio
		fmts := strconv.Itoa(int(n.codec.PT))
		if n.dtmf >= 0 {
			fmts += " " + strconv.Itoa(n.dtmf)
		}
		fmt.Fprintf(&b, "m=audio %d %s %s\r\n", port, m.proto, fmts)
		fmt.Fprintf(&b, "a=rtpmap:%d %s\r\n", n.codec.PT, n.codec.String())
		if n.dtmf >= 0 {
			fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", n.dtmf, n.dtmf)
		}
		b.WriteString("a=ptime:20\r\n")
		if m.rtcpMux {
			b.WriteString("a=rtcp-mux\r\n")
		} else if rtcpPort != port+1 {
			fmt.Fprintf(&b, "a=rtcp:%d\r\n", rtcpPort)
		}
		if n.key != nil {
			b.WriteString("a=crypto:" + n.key.Attribute() + "\r\n")
		}
		b.WriteString("a=" + dir + "\r\n")
	}
	return []byte(b.String())
}

// writeOffer writes our offer (a call whose INVITE had none): every codec
// the media plays, SDES keys when secure (the _80 suite first).
func writeOffer(codecs []Codec, keys []*SDESKey, o *sdpOrigin, addr netip.Addr, port, rtcpPort int, dir string) []byte {
	var b strings.Builder
	writeSession(&b, o, addr)
	proto := "RTP/AVP"
	if len(keys) > 0 {
		proto = "RTP/SAVP"
	}
	fmts := make([]string, 0, len(codecs)+1)
	for _, c := range codecs {
		fmts = append(fmts, strconv.Itoa(int(c.PT)))
	}
	fmts = append(fmts, "101")
	fmt.Fprintf(&b, "m=audio %d %s %s\r\n", port, proto, strings.Join(fmts, " "))
	for _, c := range codecs {
		fmt.Fprintf(&b, "a=rtpmap:%d %s\r\n", c.PT, c.String())
	}
	b.WriteString("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n")
	if rtcpPort != port+1 {
		fmt.Fprintf(&b, "a=rtcp:%d\r\n", rtcpPort)
	}
	for _, k := range keys {
		b.WriteString("a=crypto:" + k.Attribute() + "\r\n")
	}
	b.WriteString("a=" + dir + "\r\n")
	return []byte(b.String())
}

func writeSession(b *strings.Builder, o *sdpOrigin, addr netip.Addr) {
	o.version++
	ipv := "IP4"
	if addr.Is6() {
		ipv = "IP6"
	}
	fmt.Fprintf(b, "v=0\r\no=lemonvox %d %d IN %s %s\r\ns=-\r\nc=IN %s %s\r\nt=0 0\r\n", o.id, o.version, ipv, addr, ipv, addr)
}

// readAnswer matches the peer's answer to our offer: the codec it chose
// (the first of its list we offered) and our key for the tag it echoed.
func readAnswer(ans *sdpDesc, offered []Codec, keys []*SDESKey, pol sdpPolicy) (*negotiated, error) {
	m := ans.audio
	if m == nil {
		return nil, errSDPNoAudio
	}
	n := &negotiated{dtmf: -1}
	for _, c := range m.codecs {
		for _, o := range offered {
			if o.Same(c) && o.PT == c.PT {
				n.codec = o
				break
			}
		}
		if n.codec.Name != "" {
			break
		}
	}
	if n.codec.Name == "" {
		return nil, errSDPNoCodec
	}
	if len(keys) > 0 {
		if len(m.crypto) == 0 {
			if pol.requireSRTP || strings.Contains(m.proto, "SAVP") {
				return nil, errSDPNoCrypto
			}
			return n, nil // the peer answered plain RTP (RFC 3264: it may not)
		}
		for _, k := range keys {
			if k.Tag == m.crypto[0].Tag && k.Suite == m.crypto[0].Suite {
				n.key, n.peer = k, m.crypto[0]
			}
		}
		if n.key == nil {
			return nil, errSDPNoCrypto
		}
	} else if pol.requireSRTP {
		return nil, errSDPPlain
	}
	return n, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
