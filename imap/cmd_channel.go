package imap

// CHANNEL / UID CHANNEL (IMAP notes s9.2, after the Lemonade channel
// draft): per requested body part, a playback URL carrying a CHANNEL
// grant (channel/grant.go) that the RTSP(S) server resolves. Capabilities
// CHANNEL and one CHANNEL=<scheme> per served scheme (RTSPS; RTSP when
// plain RTSP is allowed).
//
//	channel      = ["UID" SP] "CHANNEL" SP sequence-set SP "(" section-spec0 *(SP section-spec0) ")" SP scheme [SP channel-opts]
//	channel-opts = "(" opt *(SP opt) ")"
//	opt          = "EXPIRE" SP nz-number / "MAXUSES" SP nz-number / "SEEN" / "RESUME"
//	               / "CONVERT" SP "(" (string / "NIL") [SP "(" params ")"] ")"
//	response     = "*" SP msn SP "CHANNEL" SP "(" ["UID" SP uid SP] item *(SP item) ")"
//	item         = section-spec0 SP (string / "NIL")
//
// Parts that cannot be played (no such part, not a leaf, not audio) are
// NIL; the command still succeeds. The tagged OK carries
// [CHANNELEXPIRE <RFC 3339 time>], the earliest expiry of the URLs given.
// RESUME (our option) asks the stream to start where the account's last
// playback of the message stopped. CONVERT: only the default conversion
// (NIL, no parameters) is accepted; the codec is negotiated by the
// playback server with the player, so an explicit target is NO [CANNOT]
// (xchannelConvert). URLs are bearer credentials: they are
// only handed out over TLS (or loopback) and never logged.

import (
	"fmt"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// ChannelService is what CHANNEL needs from the daemon.
type ChannelService struct {
	Grants *channel.Grants
	// URLs maps each served scheme, upper case ("RTSPS", "RTSP"), to the
	// URL prefix its server answers, e.g. "rtsps://vm.example.net:8555/".
	URLs map[string]string
	// MaxExpire clamps EXPIRE (default channel.MaxGrantLife); DefaultExpire
	// is the validity without EXPIRE (default 300 s).
	MaxExpire, DefaultExpire time.Duration
}

// maxChannelMessages bounds the messages of one CHANNEL command.
const maxChannelMessages = 50

func init() {
	registerCap("CHANNEL", func(c *conn) bool { return c.srv.Channel != nil && authenticated(c) })
	registerCap("CHANNEL=RTSPS", func(c *conn) bool { return c.channelScheme("RTSPS") && authenticated(c) })
	registerCap("CHANNEL=RTSP", func(c *conn) bool { return c.channelScheme("RTSP") && authenticated(c) })
	register("CHANNEL", stateSelected, cmdChannel)
	register("UID CHANNEL", stateSelected, cmdChannel)
}

func (c *conn) channelScheme(s string) bool {
	return c.srv.Channel != nil && c.srv.Channel.URLs[s] != ""
}

type channelOpts struct {
	expire          time.Duration
	maxUses         int
	seen, resume    bool
	convertTo       string
	convertExplicit bool
	convertParams   int
}

func (p *parser) xchannelOpts() channelOpts {
	var o channelOpts
	p.xlist(func() {
		name := strings.ToUpper(p.xatom())
		switch name {
		case "EXPIRE":
			p.xsp()
			o.expire = time.Duration(p.xnznumber()) * time.Second
		case "MAXUSES":
			p.xsp()
			o.maxUses = int(min(p.xnznumber(), 1000))
		case "SEEN":
			o.seen = true
		case "RESUME":
			o.resume = true
		case "CONVERT":
			p.xsp()
			p.xexpect('(')
			if p.PeekFold("NIL") {
				p.ConsumeFold("NIL")
			} else {
				o.convertTo = strings.ToLower(p.xstring())
			}
			o.convertExplicit = true
			if p.Consume(' ') {
				p.xlist(func() { p.xastring(); p.xsp(); p.xastring(); o.convertParams++ })
			}
			p.xexpect(')')
		default:
			xsyntaxf("unknown CHANNEL option %q", name)
		}
	})
	return o
}

func cmdChannel(c *conn, tag string, p *parser) {
	s := c.xselected()
	isUID := c.cmd == "UID CHANNEL"
	p.xsp()
	set, dollar := p.xseqset()
	p.xsp()
	var secs []section
	p.xlist(func() { secs = append(secs, p.xsection(false)) })
	if len(secs) == 0 {
		xsyntaxf("empty channel-set")
	}
	p.xsp()
	scheme := strings.ToUpper(p.xatom())
	var o channelOpts
	if p.Consume(' ') {
		o = p.xchannelOpts()
	}
	p.xend()
	svc := c.srv.Channel
	if svc == nil {
		xusererrorf("UNAVAILABLE", "playback is not configured")
	}
	prefix := svc.URLs[scheme]
	if prefix == "" {
		xusererrorf("CANNOT", "scheme %s not supported", scheme)
	}
	if o.convertExplicit {
		xchannelConvert(o)
	}
	if !c.isTLS && !c.plaintextAuthAllowed() {
		xusererrorf("PRIVACYREQUIRED", "CHANNEL URLs are given over TLS only")
	}
	maxExp := svc.MaxExpire
	if maxExp <= 0 {
		maxExp = channel.MaxGrantLife
	}
	exp := svc.DefaultExpire
	if exp <= 0 {
		exp = 5 * time.Minute
	}
	if o.expire > 0 {
		exp = min(o.expire, maxExp)
	}
	uids := c.resolveSeqs(set, dollar, isUID)
	if len(uids) > maxChannelMessages {
		xusererrorf("LIMIT", "at most %d messages in one CHANNEL", maxChannelMessages)
	}
	msgs := c.xloadMessages(uids)
	if !isUID && len(msgs) < len(uids) {
		xusererrorf("EXPUNGEISSUED", "some messages were expunged")
	}
	var earliest time.Time
	for i := range msgs {
		m := &msgs[i]
		seq, ok := s.seqOf(m.UID)
		if !ok {
			continue
		}
		fm := &fetchMsg{seq: seq, msg: m}
		urls := make([]string, len(secs))
		for j, sec := range secs {
			if !playable(c, fm, sec) {
				continue
			}
			tok, g, err := svc.Grants.Issue(channel.Grant{AccountID: c.acctID, User: c.user, Mailbox: s.mb.Name,
				UIDValidity: s.mb.UIDValidity, UID: m.UID, Section: sec.String(), Expires: time.Now().Add(exp),
				MaxUses: o.maxUses, Seen: o.seen, Resume: o.resume})
			xcheckf(err, "issuing grant")
			urls[j] = prefix + tok
			if earliest.IsZero() || g.Expires.Before(earliest) {
				earliest = g.Expires
			}
		}
		fm.release()
		c.enc.Raw("* ").Number(uint64(seq)).Raw(" CHANNEL (")
		if isUID {
			c.enc.Raw("UID ").Number(uint64(m.UID)).SP()
		}
		for j, sec := range secs {
			if j > 0 {
				c.enc.SP()
			}
			c.enc.Raw("[" + sec.String() + "] ")
			if urls[j] == "" {
				c.enc.Raw("NIL")
			} else {
				c.enc.String(urls[j])
			}
		}
		c.enc.Raw(")").CRLF()
		if err := c.enc.Err(); err != nil {
			panic(ioError{err})
		}
	}
	if !earliest.IsZero() {
		c.okText = fmt.Sprintf("[CHANNELEXPIRE %s] %s completed", earliest.UTC().Format(time.RFC3339), c.cmd)
	}
}

// xchannelConvert checks the CONVERT option of CHANNEL. The stream's
// codec is chosen by the playback server for the player (RTSP DESCRIBE,
// SIP and WHEP offer/answer), not by the grant, so only the default
// conversion (RFC 5259 s5: NIL, "the server chooses") without parameters
// can be honoured. Anything else is refused for the whole command rather
// than ignored: a malformed media type is BAD (RFC 5259 s5 SHOULD), a
// well-formed one NO [CANNOT] (RFC 5530: it can never succeed here), as
// are conversion parameters (RFC 5259 forbids ignoring them).
func xchannelConvert(o channelOpts) {
	if o.convertTo != "" {
		typ, sub, ok := strings.Cut(o.convertTo, "/")
		if !ok || !isMediaToken(typ) || !isMediaToken(sub) {
			xsyntaxf("CONVERT: %q is not a type/subtype media type", o.convertTo)
		}
		if typ != "audio" {
			xusererrorf("CANNOT", "streams are audio; cannot convert to %s", o.convertTo)
		}
		xusererrorf("CANNOT", "CHANNEL does not convert to %s: the player and the playback server negotiate the codec; use CONVERT (NIL) or no CONVERT", o.convertTo)
	}
	if o.convertParams > 0 {
		xusererrorf("CANNOT", "CHANNEL CONVERT takes no conversion parameters")
	}
}

// isMediaToken reports whether s is an RFC 2045 token (a media type or
// subtype name).
func isMediaToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// playable reports whether a section is a single audio part.
func playable(c *conn, fm *fetchMsg, sec section) bool {
	if !sec.PartOnly() {
		return false
	}
	pt, err := c.xmsg(fm).Open(sec, message.DecodedLeaf)
	if err != nil {
		return false
	}
	defer pt.Close()
	return strings.EqualFold(pt.Type, "audio")
}
