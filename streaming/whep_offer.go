package streaming

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// whepMaxOffer bounds an SDP offer's size (a browser's is 3-8 KiB).
const whepMaxOffer = 64 << 10

// whepWireCodec is a codec WHEP can send: the G.711 laws and G.722, the
// ones every WebRTC endpoint implements besides Opus (RFC 7874 s3).
type whepWireCodec struct {
	Name      string // encoding name as in a=rtpmap: PCMU, PCMA, G722
	MimeType  string
	ClockRate uint32 // RTP clock rate (G.722's is 8000 by RFC 3551's mistake)
	StaticPT  uint8
}

var whepCodecs = []whepWireCodec{
	{"PCMU", "audio/PCMU", 8000, 0},
	{"PCMA", "audio/PCMA", 8000, 8},
	{"G722", "audio/G722", 8000, 9},
}

func whepCodecByName(name string) (whepWireCodec, bool) {
	for _, c := range whepCodecs {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return whepWireCodec{}, false
}

// whepOffer is what we need to know of a client's offer before handing it
// to the WebRTC stack: the audio section's direction and, for each codec
// we can send, the payload type the client gave it.
type whepOffer struct {
	Direction string           // recvonly or sendrecv
	PT        map[string]uint8 // our codec name -> offered payload type
	Order     []string         // our codec names in the offer's order of preference
}

var (
	errOfferSyntax  = errors.New("malformed SDP offer")
	errOfferNoAudio = errors.New("the offer has no audio section")
	errOfferDir     = errors.New("the offer's audio section does not receive (WHEP offers are recvonly or sendrecv)")
	errOfferCodec   = errors.New("the offer has none of PCMU, PCMA, G722")
)

// parseWHEPOffer checks an SDP offer (draft-ietf-wish-whep: the client
// receives, we send) and returns its first active audio section's codecs.
// Errors wrap errOfferSyntax, errOfferNoAudio, errOfferDir (400) or
// errOfferCodec (406).
func parseWHEPOffer(body []byte) (*whepOffer, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty body", errOfferSyntax)
	}
	if len(body) > whepMaxOffer {
		return nil, fmt.Errorf("%w: larger than %d bytes", errOfferSyntax, whepMaxOffer)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("%w: %v", errOfferSyntax, err)
	}
	sessDir := directionOf(sd.Attributes, "sendrecv")
	for _, md := range sd.MediaDescriptions {
		if md == nil || !strings.EqualFold(md.MediaName.Media, "audio") {
			continue
		}
		if md.MediaName.Port.Value == 0 {
			continue // rejected or disabled section
		}
		if !offerProtoOK(md.MediaName.Protos) {
			return nil, fmt.Errorf("%w: audio transport %q is not UDP/TLS/RTP/SAVPF", errOfferSyntax, strings.Join(md.MediaName.Protos, "/"))
		}
		dir := directionOf(md.Attributes, sessDir)
		if dir != "recvonly" && dir != "sendrecv" {
			return nil, errOfferDir
		}
		o := &whepOffer{Direction: dir, PT: map[string]uint8{}}
		rtpmap := map[uint8]string{}
		for _, a := range md.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			ptS, enc, ok := strings.Cut(a.Value, " ")
			if !ok {
				return nil, fmt.Errorf("%w: a=rtpmap:%s", errOfferSyntax, a.Value)
			}
			pt, err := strconv.ParseUint(ptS, 10, 7)
			if err != nil {
				return nil, fmt.Errorf("%w: a=rtpmap payload type %q", errOfferSyntax, ptS)
			}
			rtpmap[uint8(pt)] = strings.TrimSpace(enc)
		}
		for _, f := range md.MediaName.Formats {
			pt, err := strconv.ParseUint(f, 10, 7)
			if err != nil {
				return nil, fmt.Errorf("%w: payload type %q", errOfferSyntax, f)
			}
			name := ""
			if enc, ok := rtpmap[uint8(pt)]; ok {
				n, rate, _ := strings.Cut(enc, "/")
				c, known := whepCodecByName(n)
				if !known {
					continue
				}
				clock, _, _ := strings.Cut(rate, "/")
				if clock != strconv.Itoa(int(c.ClockRate)) {
					continue
				}
				name = c.Name
			} else {
				for _, c := range whepCodecs {
					if uint64(c.StaticPT) == pt {
						name = c.Name
					}
				}
			}
			if name == "" {
				continue
			}
			if _, dup := o.PT[name]; !dup {
				o.PT[name] = uint8(pt)
				o.Order = append(o.Order, name)
			}
		}
		if len(o.Order) == 0 {
			return nil, errOfferCodec
		}
		return o, nil
	}
	return nil, errOfferNoAudio
}

func offerProtoOK(p []string) bool {
	s := strings.ToUpper(strings.Join(p, "/"))
	return s == "UDP/TLS/RTP/SAVPF" || s == "UDP/TLS/RTP/SAVP"
}
