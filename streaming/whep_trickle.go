package streaming

// Trickle ICE on a WHEP session (RFC 9725 s4.3, the procedure WHEP takes
// from WHIP; fragments of RFC 8840): PATCH /whep/resource/<id> with
// Content-Type application/trickle-ice-sdpfrag adds the player's late
// candidates to the session (204). If-Match other than "*" must be the
// session's ETag (412). ICE restart (a new ice-ufrag/ice-pwd) is not
// supported: 422, as RFC 9725 has a server that supports trickle ICE but
// not restarts answer.

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/pion/webrtc/v4"
)

const (
	sdpFragType     = "application/trickle-ice-sdpfrag"
	maxSDPFrag      = 16 << 10
	maxFragCands    = 64
	maxFragLineSize = 1024
)

// sdpFrag is a parsed trickle-ice-sdpfrag: ICE credentials (empty when
// not given) and candidates with the media (mid, m= index) they belong to.
type sdpFrag struct {
	ufrag, pwd string
	cands      []fragCandidate
	end        bool // a=end-of-candidates
}

type fragCandidate struct {
	line  string // "candidate:..." (without "a=")
	mid   string
	index uint16
}

var errSDPFrag = errors.New("streaming: malformed trickle-ice-sdpfrag")

// parseSDPFrag parses a fragment (RFC 8840 s9: session-level ICE
// attributes, then m= sections with a=mid and a=candidate lines).
func parseSDPFrag(b []byte) (*sdpFrag, error) {
	f := &sdpFrag{}
	media := -1
	mids := map[int]string{}
	for l := range strings.SplitSeq(string(b), "\n") {
		l = strings.TrimRight(l, "\r")
		if l == "" {
			continue
		}
		if len(l) > maxFragLineSize || len(l) < 2 || l[1] != '=' {
			return nil, fmt.Errorf("%w: line %.40q", errSDPFrag, l)
		}
		switch {
		case strings.HasPrefix(l, "m="):
			media++
			if media > 16 {
				return nil, fmt.Errorf("%w: too many m= lines", errSDPFrag)
			}
		case strings.HasPrefix(l, "a=mid:"):
			mids[media] = strings.TrimSpace(l[len("a=mid:"):])
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			f.ufrag = strings.TrimSpace(l[len("a=ice-ufrag:"):])
		case strings.HasPrefix(l, "a=ice-pwd:"):
			f.pwd = strings.TrimSpace(l[len("a=ice-pwd:"):])
		case strings.HasPrefix(l, "a=candidate:"):
			if len(f.cands) == maxFragCands {
				return nil, fmt.Errorf("%w: more than %d candidates", errSDPFrag, maxFragCands)
			}
			if len(strings.Fields(l)) < 8 {
				return nil, fmt.Errorf("%w: candidate %.60q", errSDPFrag, l)
			}
			f.cands = append(f.cands, fragCandidate{line: l[2:], index: uint16(max(media, 0))})
		case l == "a=end-of-candidates":
			f.end = true
		}
	}
	for i := range f.cands {
		f.cands[i].mid = mids[int(f.cands[i].index)]
		if f.cands[i].mid == "" {
			f.cands[i].mid = mids[-1]
		}
	}
	return f, nil
}

// iceCredentials reads the first a=ice-ufrag and a=ice-pwd of an SDP.
func iceCredentials(sdp string) (ufrag, pwd string) {
	for l := range strings.SplitSeq(sdp, "\n") {
		l = strings.TrimRight(l, "\r")
		if v, ok := strings.CutPrefix(l, "a=ice-ufrag:"); ok && ufrag == "" {
			ufrag = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "a=ice-pwd:"); ok && pwd == "" {
			pwd = strings.TrimSpace(v)
		}
	}
	return ufrag, pwd
}

// patch serves a trickle ICE PATCH of a session.
func (s *WHEPServer) patch(w http.ResponseWriter, r *http.Request, ss *whepSession) {
	const m = http.MethodPatch
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != sdpFragType {
		w.Header().Set("Accept-Patch", sdpFragType)
		whepProblem(w, m, http.StatusUnsupportedMediaType, "PATCH takes "+sdpFragType)
		return
	}
	if im := strings.TrimSpace(r.Header.Get("If-Match")); im != "" && im != "*" && im != `"`+ss.etag+`"` {
		whepProblem(w, m, http.StatusPreconditionFailed, "If-Match does not name this session's ETag")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDPFrag))
	if err != nil {
		whepProblem(w, m, http.StatusRequestEntityTooLarge, "sdpfrag too large")
		return
	}
	f, err := parseSDPFrag(body)
	if err != nil {
		whepProblem(w, m, http.StatusBadRequest, err.Error())
		return
	}
	rd := ss.pc.RemoteDescription()
	if rd == nil {
		whepProblem(w, m, http.StatusConflict, "the session has no offer")
		return
	}
	ru, rp := iceCredentials(rd.SDP)
	if (f.ufrag != "" && f.ufrag != ru) || (f.pwd != "" && f.pwd != rp) {
		whepProblem(w, m, http.StatusUnprocessableEntity, "ICE restart is not supported; trickle candidates with the offer's ice-ufrag")
		return
	}
	for _, c := range f.cands {
		init := webrtc.ICECandidateInit{Candidate: c.line, SDPMLineIndex: &c.index}
		if c.mid != "" {
			init.SDPMid = &c.mid
		}
		if err := ss.pc.AddICECandidate(init); err != nil {
			whepProblem(w, m, http.StatusBadRequest, "candidate refused: "+err.Error())
			return
		}
	}
	s.log.Debug("whep trickle candidates added", "session", ss.id, "candidates", len(f.cands), "end", f.end)
	whepStatus(w, m, http.StatusNoContent)
}
