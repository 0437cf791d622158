package imap

import "strings"

// capability is one CAPABILITY token and when it is announced.
type capability struct {
	name string
	when func(c *conn) bool
}

var capabilities []capability

// registerCap adds a capability; when nil, it is always announced.
// Implementing files register their own capabilities in init functions.
func registerCap(name string, when func(c *conn) bool) {
	capabilities = append(capabilities, capability{name, when})
}

func always(*conn) bool          { return true }
func authenticated(c *conn) bool { return c.state != stateNotAuth }

func init() {
	registerCap("IMAP4rev2", always) // RFC 9051
	registerCap("IMAP4rev1", always) // RFC 3501
	registerCap("STARTTLS", func(c *conn) bool {
		return !c.isTLS && c.srv.TLSConfig != nil && c.state == stateNotAuth
	}) // RFC 9051 s6.2.1
	registerCap("LOGINDISABLED", func(c *conn) bool {
		return c.state == stateNotAuth && !c.plaintextAuthAllowed()
	})
	registerCap("AUTH=PLAIN", func(c *conn) bool {
		return c.state == stateNotAuth && c.plaintextAuthAllowed()
	}) // RFC 4616
	registerCap("SASL-IR", always) // RFC 4959
	// RFC 7888: LITERAL+ (a Lemonade profile MUST, RFC 5550), in every
	// state so that the capability lists before and after login agree;
	// LITERAL- instead when configured.
	registerCap("LITERAL+", func(c *conn) bool { return !c.literalMinus() })
	registerCap("LITERAL-", func(c *conn) bool { return c.literalMinus() })
	registerCap("ENABLE", always)      // RFC 5161
	registerCap("UTF8=ACCEPT", always) // RFC 6855
	registerCap("ID", always)          // RFC 2971
	registerCap("IDLE", always)        // RFC 2177
	registerCap("NAMESPACE", always)   // RFC 2342
	registerCap("UIDPLUS", always)     // RFC 4315
	registerCap("UNSELECT", always)    // RFC 3691
	registerCap("MOVE", always)        // RFC 6851
	registerCap("CHILDREN", always)    // RFC 3348
	registerCap("LIST-EXTENDED", always)
	registerCap("LIST-STATUS", always) // RFC 5819
	registerCap("SPECIAL-USE", always) // RFC 6154
	registerCap("CREATE-SPECIAL-USE", always)
	registerCap("BINARY", always)      // RFC 3516
	registerCap("MULTIAPPEND", always) // RFC 3502
	// RFC 7889: one limit for every mailbox, so it is in the capability.
	registerCap("APPENDLIMIT", nil)
	registerCap("STATUS=SIZE", always) // RFC 8438
	registerCap("ESEARCH", always)     // RFC 4731
	registerCap("SEARCHRES", always)   // RFC 5182
	registerCap("CONDSTORE", always)   // RFC 7162
	registerCap("QRESYNC", always)
	// RFC 5256 THREAD (cmd_thread.go), once authenticated like SORT.
	registerCap("THREAD=ORDEREDSUBJECT", authenticated)
	registerCap("THREAD=REFERENCES", authenticated)
}

// capabilities returns the capability list for the connection's state.
func (c *conn) capabilities() string {
	var b strings.Builder
	for _, cp := range capabilities {
		if cp.when == nil || cp.when(c) {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(cp.name)
			if cp.name == "APPENDLIMIT" {
				b.WriteString("=" + itoa64(c.srv.appendLimit()))
			}
		}
	}
	return b.String()
}

func (c *conn) plaintextAuthAllowed() bool {
	return plaintextAuthAllowed(c.isTLS, c.nc.RemoteAddr(), c.srv.AllowInsecureAuth)
}
