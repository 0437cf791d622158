package notify

// Bounds on MWI subscriptions (per account, per source, in all) and on one
// account's NOTIFY fan-out. Transport limits are the endpoint's (sipep).

import (
	"net/netip"
)

// Defaults of the limits (sized for 10,000 handsets).
const (
	DefaultMaxSubscriptions  = 50000
	DefaultMaxSubsPerAccount = 20
	DefaultMaxSubsPerSource  = 100
	DefaultFanOut            = 8
)

func (m *MWIServer) limitDefaults() {
	if m.MaxSubscriptions == 0 {
		m.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if m.MaxSubsPerAccount == 0 {
		m.MaxSubsPerAccount = DefaultMaxSubsPerAccount
	}
	if m.MaxSubsPerSource == 0 {
		m.MaxSubsPerSource = DefaultMaxSubsPerSource
	}
	if m.FanOut <= 0 {
		m.FanOut = DefaultFanOut
	}
}

// admitSub checks the subscription limits for a new dialog; called with
// m.mu held. It returns 0 or the status code and reason to refuse with.
func (m *MWIServer) admitSub(user string, src netip.Addr, trusted bool) (int, string) {
	switch {
	case m.MaxSubscriptions > 0 && len(m.subs) >= m.MaxSubscriptions:
		return 503, "Service Unavailable (too many subscriptions)"
	case !trusted && m.MaxSubsPerSource > 0 && m.bySource[src] >= m.MaxSubsPerSource:
		return 503, "Service Unavailable (too many subscriptions from this address)"
	case m.MaxSubsPerAccount > 0 && m.accounts[user] != nil && len(m.accounts[user].subs) >= m.MaxSubsPerAccount:
		return 403, "Forbidden (too many subscriptions for this account)"
	}
	return 0, ""
}
