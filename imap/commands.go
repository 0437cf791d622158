package imap

// handler runs one command. It parses its arguments from p (the command
// name has been read), writes untagged responses, and returns normally for
// a tagged OK (text in c.okText) or raises one of the errors of errors.go.
type handler func(c *conn, tag string, p *parser)

type command struct {
	handler handler
	states  state
}

// commands is the command table: name (upper case, "UID X" for UID
// commands) -> handler and the states it is allowed in (RFC 9051 s6,
// and the state table of each extension). Extension files add their
// commands through register in an init function; the table itself is here
// so that the allowed states can be read in one place.
var commands = map[string]*command{}

func register(name string, states state, h handler) {
	if commands[name] != nil {
		panic("imap: command registered twice: " + name)
	}
	commands[name] = &command{handler: h, states: states}
}

func init() {
	// Any state (RFC 9051 s6.1).
	register("CAPABILITY", statesAny, cmdCapability)
	register("NOOP", statesAny, cmdNoop)
	register("LOGOUT", statesAny, cmdLogout)
	register("ID", statesAny, cmdID) // RFC 2971
	// Not authenticated (s6.2).
	register("STARTTLS", stateNotAuth, cmdStarttls)
	register("LOGIN", stateNotAuth, cmdLogin)
	register("AUTHENTICATE", stateNotAuth, cmdAuthenticate)
	// Authenticated (s6.3); also valid when selected.
	register("ENABLE", statesAuthSel, cmdEnable) // RFC 5161
	register("SELECT", statesAuthSel, cmdSelect)
	register("EXAMINE", statesAuthSel, cmdSelect)
	register("CREATE", statesAuthSel, cmdCreate)
	register("DELETE", statesAuthSel, cmdDelete)
	register("RENAME", statesAuthSel, cmdRename)
	register("SUBSCRIBE", statesAuthSel, cmdSubscribe)
	register("UNSUBSCRIBE", statesAuthSel, cmdSubscribe)
	register("LIST", statesAuthSel, cmdList)
	register("LSUB", statesAuthSel, cmdList)
	register("NAMESPACE", statesAuthSel, cmdNamespace) // RFC 2342
	register("STATUS", statesAuthSel, cmdStatus)
	register("APPEND", statesAuthSel, cmdAppend)
	register("IDLE", statesAuthSel, cmdIdle) // RFC 2177
	// Selected (s6.4).
	register("CLOSE", stateSelected, cmdClose)
	register("UNSELECT", stateSelected, cmdClose) // RFC 3691
	register("CHECK", stateSelected, cmdNoop)     // IMAP4rev1 only; harmless
	register("EXPUNGE", stateSelected, cmdExpunge)
	register("UID EXPUNGE", stateSelected, cmdExpunge) // RFC 4315
	register("SEARCH", stateSelected, cmdSearch)
	register("UID SEARCH", stateSelected, cmdSearch)
	register("FETCH", stateSelected, cmdFetch)
	register("UID FETCH", stateSelected, cmdFetch)
	register("STORE", stateSelected, cmdStore)
	register("UID STORE", stateSelected, cmdStore)
	register("COPY", stateSelected, cmdCopy)
	register("UID COPY", stateSelected, cmdCopy)
	register("MOVE", stateSelected, cmdCopy) // RFC 6851
	register("UID MOVE", stateSelected, cmdCopy)
}
