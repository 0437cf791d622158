package streaming

// Session timers (RFC 4028) and the end of calls whose media stopped.
//
// Session timers: an INVITE's Session-Expires below our Min-SE gets 422
// with Min-SE (s9) when the caller supports timers, and is raised to our
// Min-SE when it does not (erratum 1687); otherwise its interval is kept (lowered to
// SessionExpires, never below the request's Min-SE), and a caller that
// names none but says Supported: timer gets SessionExpires. The refresher
// is the one the request names; without one the caller (uac) when it
// supports timers, else us (uas); a caller without timer support is never
// made the refresher. The 2xx says Session-Expires with the refresher,
// Require: timer when it is the caller (s9). The caller refreshes with a
// re-INVITE or UPDATE (RFC 3311) in the dialog; each refresh renegotiates
// and restarts the timer. When we are the refresher we send an UPDATE
// (when the caller's Allow lists it) or a re-INVITE with our last session
// description at half the interval (s10); a refresh that fails ends the
// call with BYE. Without a refresh, the side that is not the refresher
// sends BYE at interval - min(32 s, interval/3) (s10).
//
// Media timeout: once the caller has sent RTP or RTCP to the call's
// sockets, silence from it for MediaTimeout (not while the call is held)
// ends the call with BYE: the phone is gone without a BYE of its own.

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Defaults of session timers and the media timeout.
const (
	DefaultSessionExpires = 1800 * time.Second
	// MinSessionExpires is the smallest Min-SE RFC 4028 s4 allows.
	MinSessionExpires   = 90 * time.Second
	DefaultMediaTimeout = 60 * time.Second
)

// sessionTimer is a dialog's negotiated session interval (seconds, 0:
// none) and refresher ("uac": the caller, "uas": us).
type sessionTimer struct {
	interval  int
	refresher string
}

// headerValues returns the comma-separated values of the headers with
// one of the names (long and compact forms).
func headerValues(req *sip.Request, names ...string) []string {
	var out []string
	for _, n := range names {
		for _, h := range req.GetHeaders(n) {
			for v := range strings.SplitSeq(h.Value(), ",") {
				if v = strings.TrimSpace(v); v != "" {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// hasOption tells whether a Supported, Require or Allow list holds tag.
func hasOption(vals []string, tag string) bool {
	for _, v := range vals {
		if strings.EqualFold(v, tag) {
			return true
		}
	}
	return false
}

// parseDelta parses "delta-seconds *(;param)" (Session-Expires, Min-SE):
// the seconds and the refresher parameter, if any.
func parseDelta(v string) (int, string, bool) {
	f := strings.Split(v, ";")
	d := strings.TrimSpace(f[0])
	if d == "" || len(d) > 10 {
		return 0, "", false
	}
	n, err := strconv.Atoi(d)
	if err != nil || n < 0 {
		return 0, "", false
	}
	ref := ""
	for _, p := range f[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "refresher") {
			ref = strings.ToLower(strings.TrimSpace(val))
		}
	}
	return n, ref, true
}

func (s *SIPServer) unit() time.Duration {
	if s.timerUnit > 0 {
		return s.timerUnit
	}
	return time.Second
}

// minSE is our Min-SE in seconds.
func (s *SIPServer) minSE() int {
	return max(int(s.MinSE/time.Second), int(MinSessionExpires/time.Second))
}

// negotiateTimer applies RFC 4028 s9 to an INVITE (or a refresh in the
// dialog): the timer, or the refusal (422 with our Min-SE, 400 for a
// malformed header).
func (s *SIPServer) negotiateTimer(req *sip.Request) (sessionTimer, *callError) {
	ours := s.minSE()
	se, ref, hasSE := 0, "", false
	if v := headerValues(req, "Session-Expires", "x"); len(v) > 0 {
		var ok bool
		if se, ref, ok = parseDelta(v[0]); !ok {
			return sessionTimer{}, &callError{code: 400, reason: "Bad Request (Session-Expires)"}
		}
		hasSE = true
	}
	reqMin := int(MinSessionExpires / time.Second)
	if v := headerValues(req, "Min-SE"); len(v) > 0 {
		n, _, ok := parseDelta(v[0])
		if !ok {
			return sessionTimer{}, &callError{code: 400, reason: "Bad Request (Min-SE)"}
		}
		reqMin = max(reqMin, n)
	}
	sup := hasOption(headerValues(req, "Supported", "k"), "timer")
	lower := max(ours, reqMin)
	if hasSE && se < ours {
		if sup {
			return sessionTimer{}, &callError{code: 422, reason: "Session Interval Too Small",
				hdrs: []sip.Header{sip.NewHeader("Min-SE", strconv.Itoa(ours))}}
		}
		// A caller that does not know timers (a proxy asked for one)
		// would fail on a 422: raise the interval to our minimum
		// instead, as a proxy does (s8.1; RFC 4028 erratum 1687).
		se = lower
	}
	limit := int(s.SessionExpires / time.Second)
	switch {
	case !hasSE && (limit <= 0 || !sup):
		return sessionTimer{}, nil
	case !hasSE:
		se = max(limit, lower)
	case limit > 0 && se > limit:
		// Lowered, never below the request's Min-SE nor above its own
		// interval (s9: the UAS does not increase it).
		se = min(se, max(limit, lower))
	}
	if ref != "uac" && ref != "uas" {
		ref = "uas"
		if sup {
			ref = "uac"
		}
	}
	if ref == "uac" && !sup {
		ref = "uas" // a caller that does not know timers cannot refresh
	}
	return sessionTimer{interval: se, refresher: ref}, nil
}

// timerHeaders are a 2xx's session timer headers.
func (t sessionTimer) headers() []sip.Header {
	h := []sip.Header{sip.NewHeader("Supported", "timer")}
	if t.interval > 0 {
		h = append(h, sip.NewHeader("Session-Expires", strconv.Itoa(t.interval)+";refresher="+t.refresher))
		if t.refresher == "uac" {
			h = append(h, sip.NewHeader("Require", "timer"))
		}
	}
	return h
}

// startTimerLocked (re)starts the session timer: our refresh at half the
// interval, or the BYE before expiry when the caller refreshes. c.mu held.
func (c *call) startTimerLocked() {
	if c.seTimer != nil {
		c.seTimer.Stop()
		c.seTimer = nil
	}
	if c.ended || c.timer.interval == 0 {
		return
	}
	u := c.s.unit()
	iv := time.Duration(c.timer.interval) * u
	if c.timer.refresher == "uas" {
		c.seTimer = time.AfterFunc(iv/2, c.refresh)
		return
	}
	c.seTimer = time.AfterFunc(iv-min(32*u, iv/3), func() { c.hangup("session expired", true) })
}

// refresh sends our session refresh; a failure ends the call.
func (c *call) refresh() {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	if c.inReinvite {
		// A transaction of the caller's is in progress: try again soon.
		c.seTimer = time.AfterFunc(c.s.unit(), c.refresh)
		c.mu.Unlock()
		return
	}
	c.inReinvite = true
	c.localCSeq++
	cseq := c.localCSeq
	useUpdate := c.peerUpdate
	body := c.lastSDP
	t := c.timer
	c.mu.Unlock()
	ok := c.sendRefresh(cseq, useUpdate, body, t)
	c.mu.Lock()
	c.inReinvite = false
	if ok {
		c.startTimerLocked()
	}
	c.mu.Unlock()
	if !ok {
		c.hangup("session refresh failed", true)
	}
}

// dialogRequest is a request of ours in the dialog (RFC 3261 s12.2.1.1).
func (c *call) dialogRequest(method sip.RequestMethod, cseq uint32) *sip.Request {
	req := sip.NewRequest(method, c.target)
	if c.transport != "" {
		req.SetTransport(strings.ToUpper(c.transport))
	}
	from := &sip.FromHeader{Address: c.localURI, Params: sip.NewParams()}
	from.Params.Add("tag", c.localTag)
	to := &sip.ToHeader{Address: c.remoteURI, Params: sip.NewParams()}
	to.Params.Add("tag", c.remoteTag)
	req.AppendHeader(from)
	req.AppendHeader(to)
	cid := sip.CallIDHeader(c.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	for _, r := range c.routes {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	maxf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxf)
	req.AppendHeader(&sip.ContactHeader{Address: c.s.ep.ContactURI(c.transport)})
	return req
}

// sendRefresh sends an UPDATE without a body, or a re-INVITE with our
// last session description (unchanged, RFC 4028 s7.4) and its ACK; the
// 2xx's Session-Expires, if any, becomes the timer.
func (c *call) sendRefresh(cseq uint32, useUpdate bool, body []byte, t sessionTimer) bool {
	method := sip.INVITE
	if useUpdate {
		method = sip.UPDATE
	}
	req := c.dialogRequest(method, cseq)
	req.AppendHeader(sip.NewHeader("Session-Expires", strconv.Itoa(t.interval)+";refresher=uas"))
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	req.AppendHeader(sip.NewHeader("Allow", sipAllow))
	if !useUpdate {
		ct := sip.ContentTypeHeader("application/sdp")
		req.AppendHeader(&ct)
		req.SetBody(body)
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, 32*time.Second)
	defer cancel()
	res, err := c.s.ep.Do(ctx, req)
	if err != nil {
		c.log.Info("session refresh failed", "method", method, "err", err)
		return false
	}
	if !useUpdate && res.IsSuccess() {
		ack := c.dialogRequest(sip.ACK, cseq)
		if err := c.s.ep.WriteRequest(ack); err != nil {
			c.log.Info("ACK of the refresh", "err", err)
		}
	}
	if !res.IsSuccess() {
		c.log.Info("session refresh refused", "method", method, "status", res.StatusCode)
		return false
	}
	if v := res.GetHeader("Session-Expires"); v != nil {
		if n, ref, ok := parseDelta(v.Value()); ok && n >= c.s.minSE() {
			c.mu.Lock()
			c.timer.interval = n
			if ref == "uac" || ref == "uas" {
				c.timer.refresher = ref
			}
			c.mu.Unlock()
		}
	}
	c.log.Debug("session refreshed", "method", method)
	return true
}

// ---- media timeout ----

func (s *SIPServer) mediaTimeout() time.Duration {
	switch {
	case s.MediaTimeout < 0:
		return 0
	case s.MediaTimeout == 0:
		return DefaultMediaTimeout
	}
	return s.MediaTimeout
}

// watchMediaLocked arms the media watchdog (c.mu held).
func (c *call) watchMediaLocked() {
	to := c.s.mediaTimeout()
	if to == 0 || c.ended {
		return
	}
	next := to
	if last := c.lastRx.Load(); last != 0 {
		next = max(time.Until(time.Unix(0, last).Add(to)), time.Millisecond)
	}
	c.mediaTimer = time.AfterFunc(next, c.checkMedia)
}

// checkMedia ends a call whose caller went silent after sending media.
func (c *call) checkMedia() {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	last := c.lastRx.Load()
	if last != 0 && !c.held && time.Since(time.Unix(0, last)) >= c.s.mediaTimeout() {
		c.mu.Unlock()
		c.hangup("media timeout", true)
		return
	}
	if c.held && last != 0 {
		// Held: silence is expected; count from now once resumed.
		c.lastRx.Store(time.Now().UnixNano())
	}
	c.watchMediaLocked()
	c.mu.Unlock()
}
