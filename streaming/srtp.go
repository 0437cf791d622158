package streaming

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// SDES crypto suites (RFC 4568 s6.2) we speak. AES_CM_128_HMAC_SHA1_80
// comes first: FFmpeg's SDES _32 uses a 4-octet SRTCP tag where pion (and
// RFC 5764) use 10, so our reports and BYE would fail its check.
const (
	SuiteAES80 = "AES_CM_128_HMAC_SHA1_80"
	SuiteAES32 = "AES_CM_128_HMAC_SHA1_32"
)

// ErrCrypto: an a=crypto line we cannot use.
var ErrCrypto = errors.New("streaming: unusable a=crypto")

// SDESKey is one SRTP master key and salt with its suite, as an a=crypto
// line carries them.
type SDESKey struct {
	Tag   int
	Suite string
	Key   []byte // 16 octets
	Salt  []byte // 14 octets
	MKI   []byte // nil: none
}

func profileOf(suite string) (srtp.ProtectionProfile, bool) {
	switch suite {
	case SuiteAES80:
		return srtp.ProtectionProfileAes128CmHmacSha1_80, true
	case SuiteAES32:
		return srtp.ProtectionProfileAes128CmHmacSha1_32, true
	}
	return 0, false
}

// NewSDESKey makes a fresh random key of the suite (crypto/rand).
func NewSDESKey(tag int, suite string) (*SDESKey, error) {
	if _, ok := profileOf(suite); !ok {
		return nil, fmt.Errorf("%w: suite %q", ErrCrypto, suite)
	}
	b := make([]byte, 30)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return &SDESKey{Tag: tag, Suite: suite, Key: b[:16], Salt: b[16:]}, nil
}

// Attribute is the a=crypto value: "<tag> <suite> inline:<40 base64>",
// with no lifetime, MKI or session parameters (FFmpeg takes no more).
func (k *SDESKey) Attribute() string {
	return fmt.Sprintf("%d %s inline:%s", k.Tag, k.Suite, base64.StdEncoding.EncodeToString(append(append([]byte{}, k.Key...), k.Salt...)))
}

// ParseCrypto parses the value of an a=crypto attribute (RFC 4568 s9.1):
// tag, suite, the first key-param's key, salt and MKI. Lifetimes are
// checked for form only; session parameters other than KDR=0 and WSH are
// refused (we do not implement them).
func ParseCrypto(v string) (*SDESKey, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return nil, fmt.Errorf("%w: too few fields", ErrCrypto)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || len(f[0]) > 9 {
		return nil, fmt.Errorf("%w: tag", ErrCrypto)
	}
	if _, ok := profileOf(f[1]); !ok {
		return nil, fmt.Errorf("%w: suite %q", ErrCrypto, f[1])
	}
	for _, p := range f[3:] {
		if p != "KDR=0" && !strings.HasPrefix(p, "WSH=") {
			return nil, fmt.Errorf("%w: session parameter %q", ErrCrypto, p)
		}
	}
	kp, _, _ := strings.Cut(f[2], ";")
	inline, ok := strings.CutPrefix(kp, "inline:")
	if !ok {
		return nil, fmt.Errorf("%w: key method", ErrCrypto)
	}
	parts := strings.Split(inline, "|")
	raw, err := base64.StdEncoding.DecodeString(parts[0])
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(parts[0])
	}
	if err != nil || len(raw) != 30 {
		return nil, fmt.Errorf("%w: key length", ErrCrypto)
	}
	k := &SDESKey{Tag: tag, Suite: f[1], Key: raw[:16], Salt: raw[16:]}
	for _, p := range parts[1:] {
		if v, l, ok := strings.Cut(p, ":"); ok {
			mki, err1 := strconv.ParseUint(v, 10, 64)
			n, err2 := strconv.Atoi(l)
			if err1 != nil || err2 != nil || n < 1 || n > 8 || (n < 8 && mki >= 1<<(8*n)) || k.MKI != nil {
				return nil, fmt.Errorf("%w: MKI", ErrCrypto)
			}
			k.MKI = make([]byte, n)
			for i := n - 1; i >= 0; i-- {
				k.MKI[i] = byte(mki)
				mki >>= 8
			}
			continue
		}
		life := strings.TrimPrefix(p, "2^")
		n, err := strconv.ParseUint(life, 10, 64)
		if err != nil || (strings.HasPrefix(p, "2^") && n > 48) || n == 0 {
			return nil, fmt.Errorf("%w: lifetime", ErrCrypto)
		}
		if !strings.HasPrefix(p, "2^") && n < 1<<16 || strings.HasPrefix(p, "2^") && n < 16 {
			return nil, fmt.Errorf("%w: lifetime too short", ErrCrypto)
		}
	}
	return k, nil
}

// Protector encrypts one outgoing stream's RTP and RTCP.
type Protector struct {
	ctx *srtp.Context
	hdr rtp.Header
}

// NewProtector returns the sending side of k.
func NewProtector(k *SDESKey) (*Protector, error) {
	prof, ok := profileOf(k.Suite)
	if !ok {
		return nil, fmt.Errorf("%w: suite %q", ErrCrypto, k.Suite)
	}
	var opts []srtp.ContextOption
	if k.MKI != nil {
		opts = append(opts, srtp.MasterKeyIndicator(k.MKI))
	}
	ctx, err := srtp.CreateContext(k.Key, k.Salt, prof, opts...)
	if err != nil {
		return nil, err
	}
	return &Protector{ctx: ctx}, nil
}

// RTP appends the SRTP form of the plain packet to dst[:0].
func (p *Protector) RTP(dst, plain []byte) ([]byte, error) {
	return p.ctx.EncryptRTP(dst[:0], plain, &p.hdr)
}

// RTCP returns the SRTCP form of a compound RTCP packet.
func (p *Protector) RTCP(dst, plain []byte) ([]byte, error) {
	return p.ctx.EncryptRTCP(dst[:0], plain, nil)
}

// NewUnprotector returns the receiving side of k (replay protection on).
func NewUnprotector(k *SDESKey) (*srtp.Context, error) {
	prof, ok := profileOf(k.Suite)
	if !ok {
		return nil, fmt.Errorf("%w: suite %q", ErrCrypto, k.Suite)
	}
	opts := []srtp.ContextOption{srtp.SRTPReplayProtection(64), srtp.SRTCPReplayProtection(64)}
	if k.MKI != nil {
		opts = append(opts, srtp.MasterKeyIndicator(k.MKI))
	}
	return srtp.CreateContext(k.Key, k.Salt, prof, opts...)
}
