package deposit

import (
	"bufio"
	"fmt"
	"net/textproto"

	"github.com/lemonvox/lemonvox/vmstore"
)

// mmsMediaType is the media type of an MMS PDU (OMA MMS encapsulation).
const mmsMediaType = "application/vnd.wap.mms-message"

// IsMMSPDU tells whether head starts like an MMS PDU.
func IsMMSPDU(head []byte) bool { return false }

func mmsToMail(r *bufio.Reader, o Options) ([]byte, error) {
	return nil, fmt.Errorf("%w: MMS PDU", vmstore.ErrInvalid)
}

func mmsInMessageToMail(r *bufio.Reader, h textproto.MIMEHeader, o Options) ([]byte, error) {
	return nil, fmt.Errorf("%w: MMS PDU", vmstore.ErrInvalid)
}
