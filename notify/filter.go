package notify

import (
	"context"
	"strings"

	"github.com/lemonvox/lemonvox/vmstore"
)

// MetadataPrefix is where users keep their notification filters, as IMAP
// METADATA (RFC 5464) server entries: <MetadataPrefix><sink name>, e.g.
// /private/vendor/lemonvox/notify/email. The admin API writes the same
// entries through vmstore.Store.SetMetadata.
const MetadataPrefix = "/private/vendor/lemonvox/notify/"

// UserFilter wraps a sink with the account's own filter, read from the
// METADATA entry MetadataPrefix+<sink name> at delivery:
//
//	absent, "" or "on"   every event the sink accepts
//	"off" / "none"       nothing
//	"MessageNew QuotaExceed ..."  only these RFC 5423 event types
//	                     (space or comma separated, case-insensitive)
//
// A filtered-out event counts as delivered (the user asked not to hear of
// it). A store error is retried like a failed delivery.
type UserFilter struct {
	Sink
	Store *vmstore.Store
}

// Deliver implements Sink.
func (f *UserFilter) Deliver(ctx context.Context, ev *vmstore.Event, attempt int) error {
	name := MetadataPrefix + f.Name()
	ents, err := f.Store.Metadata(ev.User, 0, name)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name != name {
			continue
		}
		if !filterAllows(string(e.Value), ev.Type) {
			return nil
		}
	}
	return f.Sink.Deliver(ctx, ev, attempt)
}

func filterAllows(v string, t vmstore.EventType) bool {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "", "on", "all":
		return true
	case "off", "none":
		return false
	}
	for _, w := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }) {
		if strings.EqualFold(w, string(t)) {
			return true
		}
	}
	return false
}
