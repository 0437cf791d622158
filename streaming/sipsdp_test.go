package streaming

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

const phoneOffer = "v=0\r\no=phone 8812 1 IN IP4 198.51.100.7\r\ns=call\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n" +
	"m=audio 49170 RTP/SAVP 9 0 8 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n" +
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:5JK2/a4nJnco48i6fImLLEtqB2AGdwmSHDjzDhn1|2^31|1:4\r\n" +
	"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:D8ix69eS41g0LWNmzca7yXvA4NpuNyU/UXry26zr\r\na=sendrecv\r\n" +
	"m=video 49172 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"

func TestParseOfferAndAnswer(t *testing.T) {
	d, err := parseSDP([]byte(phoneOffer))
	if err != nil {
		t.Fatal(err)
	}
	m := d.audio
	if m == nil || m.port != 49170 || m.rtcpPort != 49171 || m.addr.String() != "198.51.100.7" || m.proto != "RTP/SAVP" {
		t.Fatalf("audio %+v", m)
	}
	if len(m.codecs) != 3 || m.codecs[0].Name != "G722" || m.codecs[1].PT != 0 || m.dtmf != 101 {
		t.Fatalf("codecs %+v dtmf %d", m.codecs, m.dtmf)
	}
	if len(m.crypto) != 2 || m.crypto[0].Tag != 1 || len(m.crypto[0].MKI) != 4 || m.crypto[1].Suite != SuiteAES32 {
		t.Fatalf("crypto %+v", m.crypto)
	}
	// The stored audio is PCMU: PCMU needs no conversion and wins over
	// the offer's first choice.
	choose := func(offered []Codec) (Codec, bool) {
		for _, c := range offered {
			if c.Same(PCMU) {
				return c, true
			}
		}
		return Codec{}, false
	}
	n, err := negotiate(m, choose, sdpPolicy{allowSDES: true})
	if err != nil {
		t.Fatal(err)
	}
	if n.codec.PT != 0 || n.key == nil || n.key.Tag != 1 || n.key.Suite != SuiteAES80 {
		t.Fatalf("negotiated %+v", n)
	}
	o := &sdpOrigin{id: 42}
	ans := string(writeAnswer(d, n, o, m.addr, 30000, 30001, answerDirection(m.direction)))
	for _, want := range []string{"m=audio 30000 RTP/SAVP 0 101\r\n", "a=rtpmap:0 PCMU/8000\r\n", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:",
		"a=sendonly\r\n", "m=video 0 RTP/AVP 96\r\n", "o=lemonvox 42 1 IN IP4"} {
		if !strings.Contains(ans, want) {
			t.Errorf("answer lacks %q:\n%s", want, ans)
		}
	}
	if strings.Count(ans, "m=") != 2 {
		t.Errorf("answer has %d m= lines", strings.Count(ans, "m="))
	}
	// The answer parses, and its key is ours, not the offer's.
	back, err := parseSDP([]byte(ans))
	if err != nil || back.audio == nil || len(back.audio.crypto) != 1 || string(back.audio.crypto[0].Key) != string(n.key.Key) {
		t.Fatalf("answer does not parse back: %v", err)
	}
}

func TestNegotiationRefusals(t *testing.T) {
	choose := func(offered []Codec) (Codec, bool) {
		if len(offered) == 0 {
			return Codec{}, false
		}
		return offered[0], true
	}
	plain := strings.NewReplacer("RTP/SAVP", "RTP/AVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:5JK2/a4nJnco48i6fImLLEtqB2AGdwmSHDjzDhn1|2^31|1:4\r\n", "",
		"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:D8ix69eS41g0LWNmzca7yXvA4NpuNyU/UXry26zr\r\n", "").Replace(phoneOffer)
	noCrypto := strings.NewReplacer("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:5JK2/a4nJnco48i6fImLLEtqB2AGdwmSHDjzDhn1|2^31|1:4\r\n", "",
		"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:D8ix69eS41g0LWNmzca7yXvA4NpuNyU/UXry26zr\r\n", "").Replace(phoneOffer)
	opus := strings.NewReplacer("RTP/SAVP 9 0 8 101", "RTP/SAVP 111", "a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n",
		"a=rtpmap:111 opus/48000/2\r\n").Replace(phoneOffer)
	cases := []struct {
		name  string
		offer string
		pol   sdpPolicy
		want  error
	}{
		{"plain RTP, SRTP required", plain, sdpPolicy{requireSRTP: true, allowSDES: true}, errSDPPlain},
		{"SAVP without a=crypto", noCrypto, sdpPolicy{allowSDES: true}, errSDPNoCrypto},
		{"SDES over unprotected signalling", phoneOffer, sdpPolicy{}, errSDPNoCrypto},
		{"no codec we send", opus, sdpPolicy{allowSDES: true}, errSDPNoCodec},
	}
	for _, tc := range cases {
		d, err := parseSDP([]byte(tc.offer))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, err := negotiate(d.audio, choose, tc.pol); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(tc.want.Error(), "streaming: ")) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if n, err := func() (*negotiated, error) {
		d, _ := parseSDP([]byte(plain))
		return negotiate(d.audio, choose, sdpPolicy{})
	}(); err != nil || n.key != nil {
		t.Errorf("plain RTP allowed: %v", err)
	}
	if d, err := parseSDP([]byte("v=0\r\n")); err == nil && d.audio != nil {
		t.Error("audio found in an SDP without m=")
	}
	for _, bad := range []string{"", "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n",
		strings.Replace(phoneOffer, "c=IN IP4 198.51.100.7", "c=IN IP4 not-an-address", 1)} {
		if _, err := parseSDP([]byte(bad)); err == nil {
			t.Errorf("malformed SDP accepted: %q", bad)
		}
	}
}

// The direction table (RFC 3264 s6.1) for a sender, and hold.
func TestAnswerDirection(t *testing.T) {
	for peer, want := range map[string]string{"sendrecv": "sendonly", "recvonly": "sendonly", "sendonly": "inactive", "inactive": "inactive"} {
		if got := answerDirection(peer); got != want {
			t.Errorf("%s -> %s, want %s", peer, got, want)
		}
		held := (&sdpMedia{direction: peer}).held()
		if held != (peer == "sendonly" || peer == "inactive") {
			t.Errorf("%s held=%v", peer, held)
		}
	}
}

// Our offer (delayed offer) and the peer's answer in the ACK.
func TestDelayedOfferAnswer(t *testing.T) {
	k1, _ := NewSDESKey(1, SuiteAES80)
	k2, _ := NewSDESKey(2, SuiteAES32)
	o := &sdpOrigin{id: 7}
	offer := writeOffer([]Codec{PCMU, PCMA, G722}, []*SDESKey{k1, k2}, o, mustAddr("127.0.0.1"), 40000, 40001, "sendonly")
	d, err := parseSDP(offer)
	if err != nil || d.audio == nil || len(d.audio.crypto) != 2 || len(d.audio.codecs) != 3 {
		t.Fatalf("our offer: %v\n%s", err, offer)
	}
	peerKey, _ := NewSDESKey(2, SuiteAES32)
	ans := "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/SAVP 8\r\na=rtpmap:8 PCMA/8000\r\n" +
		"a=crypto:" + peerKey.Attribute() + "\r\na=recvonly\r\n"
	ad, err := parseSDP([]byte(ans))
	if err != nil {
		t.Fatal(err)
	}
	n, err := readAnswer(ad, []Codec{PCMU, PCMA, G722}, []*SDESKey{k1, k2}, sdpPolicy{allowSDES: true})
	if err != nil || n.codec.Name != "PCMA" || n.key != k2 {
		t.Fatalf("answer: %+v %v", n, err)
	}
	if _, err := readAnswer(ad, []Codec{PCMU}, []*SDESKey{k1, k2}, sdpPolicy{}); err == nil {
		t.Fatal("answer with a codec we did not offer accepted")
	}
}

func TestParseAnnc(t *testing.T) {
	parse := func(ruri string) (*annc, error) {
		var u sip.Uri
		if err := sip.ParseUri(ruri, &u); err != nil {
			return nil, err
		}
		return parseAnnc(u.UriParams)
	}
	a, err := parse("sip:annc@ms.example.net;play=imap%3A%2F%2Falice%40vm.example.net%2FINBOX%3BUIDVALIDITY%3D1%2F%3BUID%3D42%2F%3BSECTION%3D2%3BURLAUTH%3Danonymous%3Ainternal%3A91e3;repeat=3;delay=500;duration=5000")
	if err != nil {
		t.Fatal(err)
	}
	if a.play != "imap://alice@vm.example.net/INBOX;UIDVALIDITY=1/;UID=42/;SECTION=2;URLAUTH=anonymous:internal:91e3" ||
		a.repeat != 3 || a.delay.Milliseconds() != 500 || a.duration.Milliseconds() != 5000 {
		t.Fatalf("%+v", a)
	}
	if a, err := parse("sip:annc@h;play=x;repeat=forever"); err != nil || a.repeat != 0 {
		t.Fatalf("forever: %+v %v", a, err)
	}
	for _, bad := range []string{"sip:annc@h", "sip:annc@h;play=", "sip:annc@h;play=a;repeat=0",
		"sip:annc@h;play=a;repeat=x", "sip:annc@h;play=a;delay=-1", "sip:annc@h;play=a;duration=0", "sip:annc@h;play=%zz",
		"sip:annc@h;play=a%20b", "sip:annc@h;play=a;delay=999999999"} {
		if _, err := parse(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func FuzzParseSDP(f *testing.F) {
	f.Add([]byte(phoneOffer))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0 8 96\r\na=rtpmap:96 L16/16000\r\na=rtcp-mux\r\na=rtcp:7\r\na=inactive\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=crypto:x y z\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseSDP(b)
		if err != nil {
			return
		}
		if d.audio == nil {
			return
		}
		n, err := negotiate(d.audio, func(c []Codec) (Codec, bool) {
			if len(c) == 0 {
				return Codec{}, false
			}
			return c[0], true
		}, sdpPolicy{allowSDES: true})
		if err != nil {
			return
		}
		ans := writeAnswer(d, n, &sdpOrigin{}, mustAddr("127.0.0.1"), 2000, 2001, "sendonly")
		if _, err := parseSDP(ans); err != nil {
			t.Fatalf("our answer does not parse: %v\n%s", err, ans)
		}
	})
}

func FuzzParseAnnc(f *testing.F) {
	f.Add("sip:annc@h;play=imap%3A%2F%2Fa%40h%2FINBOX%3BUID%3D1;repeat=2;delay=10;duration=100")
	f.Add("sip:annc@h;play=x;repeat=forever;locale=en_US")
	f.Fuzz(func(t *testing.T, s string) {
		var u sip.Uri
		if sip.ParseUri(s, &u) != nil {
			return
		}
		a, err := parseAnnc(u.UriParams)
		if err == nil && (a.play == "" || a.repeat < 0 || a.delay < 0 || a.duration < 0) {
			t.Fatalf("%+v", a)
		}
	})
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
