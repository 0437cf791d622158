package streaming

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
)

// ErrSDP: an SDP we cannot use.
var ErrSDP = errors.New("streaming: unusable SDP")

// DescribeSDP is the SDP of an RTSP DESCRIBE reply: one audio stream of
// codec, control "track1", the duration as a=range (so clients seek), and
// with key an RTP/SAVP m= line with one a=crypto line.
func DescribeSDP(host string, codec Codec, dur time.Duration, key *SDESKey) ([]byte, error) {
	proto := []string{"RTP", "AVP"}
	if key != nil {
		proto = []string{"RTP", "SAVP"}
	}
	addrType := "IP4"
	if strings.Contains(host, ":") {
		addrType = "IP6"
	}
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{Media: "audio", Port: sdp.RangedPort{Value: 0}, Protos: proto,
			Formats: []string{strconv.Itoa(int(codec.PT))}},
		Attributes: []sdp.Attribute{
			sdp.NewAttribute("rtpmap", fmt.Sprintf("%d %s", codec.PT, codec)),
			sdp.NewAttribute("ptime", "20"),
			sdp.NewAttribute("control", "track1"),
			sdp.NewPropertyAttribute("sendonly"),
		},
	}
	if key != nil {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("crypto", key.Attribute()))
	}
	sd := &sdp.SessionDescription{
		Origin: sdp.Origin{Username: "-", SessionID: uint64(random32())<<16 | 1, SessionVersion: 1,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: host},
		SessionName:           "Voice message",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: "IP4", Address: &sdp.Address{Address: "0.0.0.0"}},
		TimeDescriptions:      []sdp.TimeDescription{{}},
		Attributes:            []sdp.Attribute{sdp.NewAttribute("range", "npt=0-"+FormatNPT(dur))},
		MediaDescriptions:     []*sdp.MediaDescription{md},
	}
	return sd.Marshal()
}

// Offer is what an SDP offer's first audio stream asks for.
type Offer struct {
	Codecs  []Codec    // offered codecs we send, in the offer's order, with its PTs
	Crypto  []*SDESKey // usable a=crypto lines, in order
	Secure  bool       // RTP/SAVP(F)
	Address string     // c= of the stream (or the session)
	Port    int
	PTime   int
}

// ParseOffer reads an SDP offer (SIP) with pion/sdp: the first audio m=
// line's codecs we can send, its SDES keys, address and port.
func ParseOffer(raw []byte) (*Offer, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(raw)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSDP, err)
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" {
			continue
		}
		o := &Offer{Port: md.MediaName.Port.Value, PTime: 20}
		for _, p := range md.MediaName.Protos {
			if p == "SAVP" || p == "SAVPF" {
				o.Secure = true
			}
		}
		ci := md.ConnectionInformation
		if ci == nil {
			ci = sd.ConnectionInformation
		}
		if ci != nil && ci.Address != nil {
			o.Address = ci.Address.Address
		}
		maps := map[string]string{}
		for _, a := range md.Attributes {
			switch a.Key {
			case "rtpmap":
				pt, v, ok := strings.Cut(a.Value, " ")
				if ok {
					maps[pt] = strings.TrimSpace(v)
				}
			case "crypto":
				if k, err := ParseCrypto(a.Value); err == nil {
					o.Crypto = append(o.Crypto, k)
				}
			case "ptime":
				if n, err := strconv.Atoi(strings.TrimSpace(a.Value)); err == nil && n >= 10 && n <= 60 {
					o.PTime = n
				}
			}
		}
		for _, f := range md.MediaName.Formats {
			n, err := strconv.Atoi(f)
			if err != nil || n < 0 || n > 127 {
				continue
			}
			if v, ok := maps[f]; ok {
				if c, ok := ParseRTPMap(uint8(n), v); ok {
					o.Codecs = append(o.Codecs, c)
				}
				continue
			}
			if c, ok := StaticCodec(uint8(n)); ok {
				o.Codecs = append(o.Codecs, c)
			}
		}
		return o, nil
	}
	return nil, fmt.Errorf("%w: no audio stream", ErrSDP)
}
