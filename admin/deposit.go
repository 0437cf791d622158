package admin

import (
	"io"

	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/deposit"
)

// Prober recognises a media file from its first bytes (deposit.Prober).
type Prober = deposit.Prober

// ErrUnsupportedMedia: the content is neither a known audio file, an MMS
// PDU nor an RFC 5322 message.
var ErrUnsupportedMedia = deposit.ErrUnsupportedMedia

// DepositOptions go with a deposit of a file through the API or the
// command line.
type DepositOptions struct {
	User, Mailbox string
	From, To      string
	Subject       string
	Urgent        bool
	Context       vmstore.Context
	Service       string
	// AsMessage forces the content to be taken as a ready RFC 5322 message.
	AsMessage bool
	// Size is the size of the content in bytes when known in advance (a
	// file, an HTTP Content-Length); 0 or less means unknown (see
	// deposit.Options.Size).
	Size int64
}

// Deposit stores r for o.User through the one deposit path
// (vmstore/deposit): audio is wrapped VPIM-style, an MMS PDU is mapped to
// Internet mail, a message is stored as it is.
func Deposit(st *vmstore.Store, probe Prober, r io.Reader, o DepositOptions) (*vmstore.DepositRes, error) {
	return deposit.Deposit(st, o.User, r, deposit.Options{
		Mailbox: o.Mailbox, From: o.From, To: o.To, Subject: o.Subject, Urgent: o.Urgent,
		Context: o.Context, Service: o.Service, AsMessage: o.AsMessage, Size: o.Size, Probe: probe,
	})
}
