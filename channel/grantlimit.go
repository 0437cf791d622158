package channel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// FailureLimiter is the shared authentication limiter as channel sees it:
// cmd adapts an authlimit.Limiter (channel may not import it). A grant
// token that is no grant of this store is a failed credential of the
// address that presented it, as a wrong password or URLAUTH token is.
type FailureLimiter interface {
	Begin(ctx context.Context, service string, src netip.Addr, account string) (LimitedAttempt, error)
}

// LimitedAttempt is one attempt admitted by a FailureLimiter.
type LimitedAttempt interface {
	Failed() time.Duration
	Abandon()
}

// ErrGrantThrottled: the address has too many failed grants queued; the
// token was not checked. It matches ErrGrantInvalid (refused as such).
var ErrGrantThrottled = fmt.Errorf("%w: too many invalid grants from this address, try later", ErrGrantInvalid)

// OpenFrom is Open for a token presented from src, under Limiter when one
// is set: an invalid (forged, tampered) token counts as a failed
// credential of src and is delayed as failed logins are; an address with
// too many attempts queued gets ErrGrantThrottled unchecked. Expired,
// revoked or gone grants were real ones and count neither way. Playback
// servers (RTSP DESCRIBE/SETUP, WHEP) should call it instead of Open.
func (gs *Grants) OpenFrom(ctx context.Context, token string, src netip.Addr) (*Grant, error) {
	if gs.Limiter == nil {
		return gs.Open(token)
	}
	att, err := gs.Limiter.Begin(ctx, "grant", src, "")
	if err != nil {
		return nil, ErrGrantThrottled
	}
	g, err := gs.Open(token)
	if errors.Is(err, ErrGrantInvalid) {
		att.Failed()
	} else {
		att.Abandon()
	}
	return g, err
}
