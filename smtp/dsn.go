package smtp

import (
	"encoding/json"
	"strings"

	gosmtp "github.com/emersion/go-smtp"
)

// Delivery status notification parameters (RFC 3461): RET and ENVID on
// MAIL FROM, NOTIFY and ORCPT on RCPT TO. The submission listener
// announces DSN, accepts them and keeps them with the transaction: a held
// (FUTURERELEASE) or retried message keeps them in its queue entry, the
// smarthost gets them when it announces DSN itself (RFC 3461 s4: "relay"
// the parameters), and this server's own failure reports follow them:
// NOTIFY=NEVER or a NOTIFY without FAILURE asks for no report of that
// recipient, RET=FULL for the whole message rather than its header,
// ENVID and ORCPT are quoted in the report (RFC 3464 Original-Envelope-Id,
// Original-Recipient). Reports of successful local delivery
// (NOTIFY=SUCCESS) are not sent.

// dsnParams are the RFC 3461 parameters of one transaction.
type dsnParams struct {
	Ret   string             `json:"ret,omitempty"`   // "FULL", "HDRS" or ""
	EnvID string             `json:"envid,omitempty"` // decoded
	Rcpts map[string]rcptDSN `json:"rcpts,omitempty"` // by recipient address, lower case
}

// rcptDSN are the RFC 3461 parameters of one recipient.
type rcptDSN struct {
	Notify    []string `json:"notify,omitempty"` // "NEVER", or some of SUCCESS, FAILURE, DELAY
	ORcptType string   `json:"orcpt_type,omitempty"`
	ORcpt     string   `json:"orcpt,omitempty"` // decoded
}

// keep records a recipient's parameters.
func (d *dsnParams) keep(addr string, r rcptDSN) {
	if len(r.Notify) == 0 && r.ORcpt == "" {
		return
	}
	if d.Rcpts == nil {
		d.Rcpts = map[string]rcptDSN{}
	}
	d.Rcpts[strings.ToLower(addr)] = r
}

// empty reports whether no parameter was given.
func (d *dsnParams) empty() bool {
	return d == nil || d.Ret == "" && d.EnvID == "" && len(d.Rcpts) == 0
}

func (d *dsnParams) rcpt(addr string) rcptDSN {
	if d == nil {
		return rcptDSN{}
	}
	return d.Rcpts[strings.ToLower(addr)]
}

// wantsFailure reports whether a failure of the recipient is to be
// reported: without NOTIFY, as without DSN, it is (RFC 3461 s4.1).
func (r rcptDSN) wantsFailure() bool {
	return len(r.Notify) == 0 || containsFold(r.Notify, "FAILURE")
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// marshal gives the queue entry's form (nil without parameters).
func (d *dsnParams) marshal() json.RawMessage {
	if d.empty() {
		return nil
	}
	b, _ := json.Marshal(d)
	return b
}

func unmarshalDSN(b json.RawMessage) *dsnParams {
	if len(b) == 0 {
		return nil
	}
	var d dsnParams
	if json.Unmarshal(b, &d) != nil {
		return nil
	}
	return &d
}

// maxEnvID bounds ENVID (RFC 3461 s4.4: 100 characters).
const maxEnvID = 100

// parseXtext decodes RFC 3461 s4 xtext: printable ASCII but "+" and "=",
// and "+" followed by two upper-case hex digits.
func parseXtext(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) {
				return "", false
			}
			h, l := unhexUpper(s[i+1]), unhexUpper(s[i+2])
			if h < 0 || l < 0 {
				return "", false
			}
			b.WriteByte(byte(h<<4 | l))
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func unhexUpper(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// encodeXtext encodes s as RFC 3461 xtext.
func encodeXtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			b.WriteByte('+')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// parseMailDSN reads RET and ENVID (RFC 3461 s4.3, s4.4) into d.
func parseMailDSN(d *dsnParams, k, v string, hasV bool) *paramError {
	switch k {
	case "RET":
		switch strings.ToUpper(v) {
		case "FULL", "HDRS":
			d.Ret = strings.ToUpper(v)
		default:
			return perr(501, 5, 5, 4, "Bad RET parameter (FULL or HDRS)")
		}
	case "ENVID":
		id, ok := parseXtext(v)
		if !hasV || !ok || id == "" || len(v) > maxEnvID {
			return perr(501, 5, 5, 4, "Bad ENVID parameter")
		}
		d.EnvID = id
	}
	return nil
}

// parseRcptParams reads the RCPT TO parameters: NOTIFY and ORCPT (RFC
// 3461 s4.1, s4.2); anything else is 555.
func parseRcptParams(params []string) (rcptDSN, *paramError) {
	var r rcptDSN
	seen := map[string]bool{}
	for _, p := range params {
		k, v, hasV := strings.Cut(p, "=")
		k = strings.ToUpper(k)
		if seen[k] {
			return r, perr(501, 5, 5, 4, "Duplicate parameter "+k)
		}
		seen[k] = true
		switch k {
		case "NOTIFY":
			if !hasV || v == "" {
				return r, perr(501, 5, 5, 4, "Bad NOTIFY parameter")
			}
			vals := strings.Split(strings.ToUpper(v), ",")
			for i, x := range vals {
				switch x {
				case "NEVER":
					if len(vals) != 1 {
						return r, perr(501, 5, 5, 4, "NOTIFY=NEVER stands alone")
					}
				case "SUCCESS", "FAILURE", "DELAY":
					if containsFold(vals[:i], x) {
						return r, perr(501, 5, 5, 4, "Bad NOTIFY parameter")
					}
				default:
					return r, perr(501, 5, 5, 4, "Bad NOTIFY parameter")
				}
			}
			r.Notify = vals
		case "ORCPT":
			typ, addr, ok := strings.Cut(v, ";")
			dec, okx := parseXtext(addr)
			if !hasV || !ok || typ == "" || !okx || dec == "" || len(v) > 500 {
				return r, perr(501, 5, 5, 4, "Bad ORCPT parameter (addr-type;xtext)")
			}
			for i := 0; i < len(typ); i++ {
				if c := typ[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
					return r, perr(501, 5, 5, 4, "Bad ORCPT address type")
				}
			}
			r.ORcptType, r.ORcpt = strings.ToLower(typ), dec
		default:
			return r, perr(555, 5, 5, 4, "Unsupported RCPT parameter "+k)
		}
	}
	return r, nil
}

// mailOptions adds the transaction's RET and ENVID to go-smtp's MAIL
// options (sent only when the smarthost announces DSN).
func (d *dsnParams) mailOptions(o *gosmtp.MailOptions) {
	if d == nil {
		return
	}
	o.Return = gosmtp.DSNReturn(d.Ret)
	o.EnvelopeID = d.EnvID
}

// rcptOptions gives go-smtp's RCPT options of a recipient (nil: none).
func (d *dsnParams) rcptOptions(addr string) *gosmtp.RcptOptions {
	r := d.rcpt(addr)
	if len(r.Notify) == 0 && r.ORcpt == "" {
		return nil
	}
	o := &gosmtp.RcptOptions{}
	for _, n := range r.Notify {
		o.Notify = append(o.Notify, gosmtp.DSNNotify(n))
	}
	if r.ORcpt != "" {
		switch r.ORcptType {
		case "rfc822":
			o.OriginalRecipientType, o.OriginalRecipient = gosmtp.DSNAddressTypeRFC822, r.ORcpt
		case "utf-8":
			o.OriginalRecipientType, o.OriginalRecipient = gosmtp.DSNAddressTypeUTF8, r.ORcpt
		}
	}
	return o
}

// mailSuffix and rcptSuffix are the parameters for the raw BDAT relay
// path, when the smarthost announces DSN.
func (d *dsnParams) mailSuffix() string {
	if d == nil {
		return ""
	}
	s := ""
	if d.Ret != "" {
		s += " RET=" + d.Ret
	}
	if d.EnvID != "" {
		s += " ENVID=" + encodeXtext(d.EnvID)
	}
	return s
}

func (d *dsnParams) rcptSuffix(addr string) string {
	r := d.rcpt(addr)
	s := ""
	if len(r.Notify) > 0 {
		s += " NOTIFY=" + strings.Join(r.Notify, ",")
	}
	if r.ORcpt != "" {
		s += " ORCPT=" + r.ORcptType + ";" + encodeXtext(r.ORcpt)
	}
	return s
}
