package streaming

// RFC 4240 announcement parameters of the media server's Request-URI:
// sip:annc@host;play=<escaped URL>[;repeat=<n>|forever][;delay=<ms>][;duration=<ms>].
// sipgo keeps URI parameter values as written; the play URL is unescaped
// here, once.

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// errAnnc: the Request-URI's announcement parameters are malformed (400).
var errAnnc = errors.New("streaming: bad announcement parameters")

// Bounds of the announcement parameters.
const (
	maxRepeat   = 1000
	maxDelay    = time.Minute
	maxDuration = 24 * time.Hour
	maxPlayURL  = 4096
)

// annc is what a call asks to play.
type annc struct {
	play     string        // the IMAP URL, unescaped
	repeat   int           // plays; 0: forever (until BYE or duration)
	delay    time.Duration // silence between plays
	duration time.Duration // cap on the whole call's playing time; 0: none
}

// parseAnnc reads the announcement parameters of a Request-URI.
func parseAnnc(params sip.HeaderParams) (*annc, error) {
	a := &annc{repeat: 1}
	seen := map[string]bool{}
	for _, kv := range params {
		k := strings.ToLower(kv.K)
		if seen[k] {
			return nil, fmt.Errorf("%w: %s twice", errAnnc, k)
		}
		seen[k] = true
		switch k {
		case "play":
			if kv.V == "" || len(kv.V) > maxPlayURL {
				return nil, fmt.Errorf("%w: play", errAnnc)
			}
			u, err := url.PathUnescape(kv.V)
			if err != nil {
				return nil, fmt.Errorf("%w: play: %v", errAnnc, err)
			}
			for i := 0; i < len(u); i++ {
				if u[i] <= ' ' || u[i] >= 0x7f {
					return nil, fmt.Errorf("%w: play: control or non-ASCII character", errAnnc)
				}
			}
			a.play = u
		case "repeat":
			if strings.EqualFold(kv.V, "forever") {
				a.repeat = 0
				continue
			}
			n, err := strconv.Atoi(kv.V)
			if err != nil || n < 1 || n > maxRepeat {
				return nil, fmt.Errorf("%w: repeat %q", errAnnc, kv.V)
			}
			a.repeat = n
		case "delay", "duration":
			n, err := strconv.ParseUint(kv.V, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: %s %q", errAnnc, k, kv.V)
			}
			d := time.Duration(n) * time.Millisecond
			if k == "delay" {
				if d > maxDelay {
					return nil, fmt.Errorf("%w: delay over %v", errAnnc, maxDelay)
				}
				a.delay = d
			} else {
				if d > maxDuration || d == 0 {
					return nil, fmt.Errorf("%w: duration %q", errAnnc, kv.V)
				}
				a.duration = d
			}
		}
		// Other parameters (transport, locale, user, ...) are not ours.
	}
	if a.play == "" {
		return nil, fmt.Errorf("%w: no play parameter", errAnnc)
	}
	return a, nil
}
