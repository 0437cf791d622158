package streaming

import (
	"strings"
	"testing"
)

// FuzzWHEPOffer feeds arbitrary offers to the WHEP offer check: it never
// panics, and what it accepts names an audio section with at least one
// codec we can send, each with one payload type.
func FuzzWHEPOffer(f *testing.F) {
	pcOffer := makeOffer(f, clientPC(f, "PCMU", "G722"))
	f.Add([]byte(pcOffer))
	f.Add([]byte(strings.Replace(pcOffer, "a=recvonly", "a=sendrecv", 1)))
	f.Fuzz(func(t *testing.T, offer []byte) {
		o, err := parseWHEPOffer(offer)
		if err != nil {
			return
		}
		if len(o.Order) == 0 || len(o.Order) != len(o.PT) {
			t.Fatalf("accepted offer without codecs: %+v", o)
		}
		if o.Direction != "recvonly" && o.Direction != "sendrecv" {
			t.Fatalf("accepted direction %q", o.Direction)
		}
		for name, pt := range o.PT {
			if _, ok := whepCodecByName(name); !ok || pt > 127 {
				t.Fatalf("codec %s pt %d", name, pt)
			}
		}
	})
}
