package streaming

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

// FuzzReadMessage: RTSP request parsing never panics or reads beyond its
// limits; what parses has a method, a URL and bounded headers.
func FuzzReadMessage(f *testing.F) {
	f.Add("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
	f.Add("DESCRIBE rtsps://h:1/tok RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n")
	f.Add("SET_PARAMETER rtsp://h/x RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 4\r\n\r\nabcd")
	f.Add("$\x01\x00\x08\x80\xc9\x00\x01\x00\x00\x00\x00")
	f.Add("PLAY x RTSP/2.0\r\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		br := bufio.NewReaderSize(strings.NewReader(in), 512)
		for range 8 {
			req, fr, err := ReadMessage(br)
			if err != nil {
				return
			}
			if fr != nil {
				continue
			}
			if req.Method == "" || len(req.Header) > maxHeaderCount || len(req.Body) > maxBodyBytes {
				t.Fatalf("bad request accepted: %+v", req)
			}
			if sp, err := ParseTransport(req.Get("Transport")); err == nil {
				chooseTransport(sp)
			}
			if d, ok, err := ParseRange(req.Get("Range")); err == nil && ok && d < 0 {
				t.Fatalf("negative range %v", d)
			}
			parseTarget(req.URL)
		}
	})
}

// FuzzTransportRange: Transport and Range header parsing.
func FuzzTransportRange(f *testing.F) {
	f.Add("RTP/AVP/TCP;unicast;interleaved=0-1", "npt=0.000-")
	f.Add("RTP/SAVP;unicast;client_port=5000-5001, RTP/AVP;multicast", "npt=00:01:02.5-00:02:00")
	f.Add("RTP/AVP;unicast;client_port=70000", "npt=now-")
	f.Add("RTP/AVP;mode=record", "clock=19961108T143720.25Z-")
	f.Fuzz(func(t *testing.T, tr, rg string) {
		if sp, err := ParseTransport(tr); err == nil {
			for _, s := range sp {
				if s.ClientPort[0] < 0 || s.ClientPort[0] > 65535 || s.Interleave[0] > 255 {
					t.Fatalf("out of range: %+v", s)
				}
			}
		}
		if d, ok, err := ParseRange(rg); err == nil && ok && (d < 0 || d > 1e7*time.Second) {
			t.Fatalf("range %v", d)
		}
		if r, err := ParseRangeSpec(rg); err == nil && (r.Start < 0 || r.End < 0 || !r.HasStart && r.Start != 0) {
			t.Fatalf("range spec %+v", r)
		}
	})
}

// FuzzParseOffer: SDP offers (pion/sdp plus our a=crypto and rtpmap
// handling) never panic; usable keys are 30 octets.
func FuzzParseOffer(f *testing.F) {
	f.Add("v=0\r\no=phone 8812 1 IN IP4 198.51.100.7\r\ns=call\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 49170 RTP/SAVP 9 0 8 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:5JK2/a4nJnco48i6fImLLEtqB2AGdwmSHDjzDhn1|2^31|1:4\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:D8ix69eS41g0LWNmzca7yXvA4NpuNyU/UXry26zr\r\na=sendrecv\r\n")
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 96\r\na=rtpmap:96 L16/16000\r\n")
	f.Add("v=0\r\ns=-\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		o, err := ParseOffer([]byte(in))
		if err != nil {
			return
		}
		for _, k := range o.Crypto {
			if len(k.Key) != 16 || len(k.Salt) != 14 {
				t.Fatalf("key %d+%d", len(k.Key), len(k.Salt))
			}
			if _, err := NewProtector(k); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzParseCrypto: a=crypto values.
func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:9FvPMiVkaMN0d++Zk/vGlFXCWXzrv9TYvKIcJW63")
	f.Add("2 AES_CM_128_HMAC_SHA1_32 inline:5JK2/a4nJnco48i6fImLLEtqB2AGdwmSHDjzDhn1|2^31|1:4 KDR=0")
	f.Add("3 AES_CM_128_HMAC_SHA1_80 inline:5JK2/a4nJnco48i6fImLLEtqB2AGdwmSHDjzDhn1|1:300")
	f.Fuzz(func(t *testing.T, in string) {
		k, err := ParseCrypto(in)
		if err != nil {
			return
		}
		if len(k.Key) != 16 || len(k.Salt) != 14 || len(k.MKI) > 8 {
			t.Fatalf("%+v", k)
		}
		if k2, err := ParseCrypto(k.Attribute()); err != nil || string(k2.Key) != string(k.Key) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
