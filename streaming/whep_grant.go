package streaming

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// WHEPGrantSource plays CHANNEL grants (channel.Grants) through the
// playback engine: the WHEP source of the daemon.
type WHEPGrantSource struct {
	Store  *vmstore.Store
	Grants *channel.Grants
	Engine *Engine
	// Cache holds opened parts; nil is DefaultCache.
	Cache *PartCache
}

// ErrWHEPNotAudio: the granted part is not playable audio (406).
var ErrWHEPNotAudio = errors.New("the granted part is not playable audio")

// OpenWHEP opens the granted part and counts one use of the grant; an
// invalid token is a failed credential of src under the grants' limiter.
func (gs *WHEPGrantSource) OpenWHEP(ctx context.Context, token string, src netip.Addr) (WHEPMedia, error) {
	g, err := gs.Grants.OpenFrom(ctx, token, src)
	if err != nil {
		if errors.Is(err, channel.ErrGrantGone) {
			return nil, fmt.Errorf("%w: %w", ErrWHEPGone, err)
		}
		if errors.Is(err, channel.ErrGrantInvalid) || errors.Is(err, channel.ErrGrantExpired) || errors.Is(err, channel.ErrGrantRevoked) {
			return nil, fmt.Errorf("%w: %w", ErrWHEPForbidden, err)
		}
		return nil, err
	}
	md, err := gs.open(g)
	if err != nil {
		switch {
		case errors.Is(err, message.ErrNoSuchPart), errors.Is(err, vmstore.ErrNotFound):
			return nil, fmt.Errorf("%w: %w", ErrWHEPGone, err)
		case errors.Is(err, ErrNotAudio), errors.Is(err, ErrTooLarge), errors.Is(err, message.ErrSyntax), errors.Is(err, message.ErrNotLeaf):
			return nil, fmt.Errorf("%w: %w", ErrWHEPNotAudio, err)
		}
		return nil, err
	}
	if err := gs.Grants.Use(g); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWHEPForbidden, err)
	}
	var start time.Duration
	if g.Resume {
		start = gs.Engine.ResumePosition(g.AccountID, g.User, g.Mailbox, g.UID)
		if start >= md.Duration() {
			start = 0
		}
	}
	return &engineMedia{e: gs.Engine, st: gs.Store, md: md, g: g, start: start}, nil
}

func (gs *WHEPGrantSource) open(g *channel.Grant) (*Media, error) {
	m, err := message.Lookup(gs.Store, g.User, g.Mailbox, g.UID)
	if err != nil {
		return nil, err
	}
	defer m.Release()
	sec, err := message.ParseBinary(g.Section)
	if err != nil {
		return nil, err
	}
	p, err := m.Open(sec, message.DecodedLeaf)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return OpenMedia(p, MediaOptions{Key: m.CacheKey(g.Section), Cache: gs.Cache})
}

// engineMedia is a granted part played by the engine.
type engineMedia struct {
	e     *Engine
	st    *vmstore.Store
	md    *Media
	g     *channel.Grant
	start time.Duration
}

func (m *engineMedia) WireCodecs() []string {
	var out []string
	for _, c := range m.md.Playable() {
		if _, ok := whepCodecByName(c.Name); ok {
			out = append(out, c.Name)
		}
	}
	return out
}

func (m *engineMedia) Duration() time.Duration { return m.md.Duration() }

func (m *engineMedia) Start() time.Duration { return m.start }

func (m *engineMedia) Close() error { return nil }

func (m *engineMedia) Play(codec string, ssrc uint32, sink WHEPSink, end func(string)) (func(), error) {
	var c Codec
	for _, p := range m.md.Playable() {
		if p.Name == codec {
			c = p
		}
	}
	if c.Name == "" {
		return nil, ErrCodec
	}
	s, err := m.e.Start(PlayRequest{Media: m.md, Codec: c, SSRC: ssrc, Start: m.start, Sink: sink, SinkProtects: true, Transport: "whep",
		Account: m.g.AccountID, User: m.g.User, Mailbox: m.g.Mailbox, UIDValidity: m.g.UIDValidity, UID: m.g.UID,
		Section: m.g.Section, OnEnd: func(reason string) {
			if reason != "stop" {
				end(reason)
			}
		}})
	if err != nil {
		return nil, err
	}
	if m.g.Seen { // CHANNEL SEEN: heard once playback starts
		_ = markGrantSeen(m.st, m.g)
	}
	return s.Stop, nil
}

// FirstAudioSection is the part number (e.g. "2") of a message's first
// audio part outside attached messages, or "" if it has none.
func FirstAudioSection(root *vmstore.Part) string {
	if root == nil {
		return ""
	}
	if root.Type == "audio" {
		return "1" // a single-part message: its body is part 1
	}
	if root.Type != "multipart" {
		return ""
	}
	var walk func(p *vmstore.Part, prefix string) string
	walk = func(p *vmstore.Part, prefix string) string {
		for i := range p.Parts {
			c := &p.Parts[i]
			n := prefix + strconv.Itoa(i+1)
			switch c.Type {
			case "audio":
				return n
			case "multipart":
				if s := walk(c, n+"."); s != "" {
					return s
				}
			}
		}
		return ""
	}
	return walk(root, "")
}
