package channel

import (
	"slices"
	"strings"
)

// AccessKind is the kind of a URLAUTH access identifier (RFC 5092 s6.1.2,
// extended by RFC 5593 s3.3).
type AccessKind uint8

const (
	// AccessNone: the URL carries no ;URLAUTH= component.
	AccessNone AccessKind = iota
	// AccessAnonymous ("anonymous"): anyone, including anonymous and
	// unauthenticated requesters.
	AccessAnonymous
	// AccessAuthUser ("authuser"): any authenticated, non-anonymous user.
	AccessAuthUser
	// AccessUser ("user+<userid>"): only that user.
	AccessUser
	// AccessSubmit ("submit+<userid>"): only a submission entity acting
	// for that user.
	AccessSubmit
	// AccessApplication ("<app>" or "<app>+<userid>", RFC 5593): only an
	// identity registered for that application, e.g. "stream" (RFC 5616).
	AccessApplication
)

var accessKindNames = [...]string{"none", "anonymous", "authuser", "user", "submit", "application"}

func (k AccessKind) String() string {
	if int(k) < len(accessKindNames) {
		return accessKindNames[k]
	}
	return "unknown"
}

// Access is a URLAUTH access identifier. The zero value is AccessNone.
type Access struct {
	Kind AccessKind
	// Application is the RFC 5593 application name, lower case; set only
	// for AccessApplication.
	Application string
	// User is the decoded userid of user+, submit+ and <app>+ identifiers.
	User string
}

// String returns the identifier as it appears in a URL, with the user
// percent-encoded as enc-user and names in lower case. AccessNone gives "".
func (a Access) String() string {
	switch a.Kind {
	case AccessAnonymous:
		return "anonymous"
	case AccessAuthUser:
		return "authuser"
	case AccessUser:
		return "user+" + EscapeUser(a.User)
	case AccessSubmit:
		return "submit+" + EscapeUser(a.User)
	case AccessApplication:
		if a.User != "" {
			return a.Application + "+" + EscapeUser(a.User)
		}
		return a.Application
	}
	return ""
}

// ParseAccess parses an access identifier as it appears after ";URLAUTH="
// (RFC 5092 s11 "access", RFC 5593 s4). Names are case-insensitive. The
// registered prefixes "user" and "submit" need a userid; the registered
// names "anonymous" and "authuser" take none (RFC 5593 s6).
func ParseAccess(s string) (Access, error) {
	a, off, reason := parseAccess(s)
	if reason != "" {
		return Access{}, urlErr(ErrBadAccess, off, reason)
	}
	return a, nil
}

func parseAccess(s string) (Access, int, string) {
	name, encUser, plus := strings.Cut(s, "+")
	if name == "" {
		return Access{}, 0, "empty access identifier"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return Access{}, i, "access identifier is not letters and digits"
		}
	}
	name = strings.ToLower(name)
	var user string
	if plus {
		if encUser == "" {
			return Access{}, len(name) + 1, "empty userid in access identifier"
		}
		u, off, ok := unescape(encUser, classA)
		if !ok {
			return Access{}, len(name) + 1 + off, "invalid character in access userid"
		}
		if reason := checkName(u, "access userid"); reason != "" {
			return Access{}, len(name) + 1, reason
		}
		user = u
	}
	switch name {
	case "anonymous", "authuser":
		if plus {
			return Access{}, len(name), name + " takes no userid"
		}
		if name == "anonymous" {
			return Access{Kind: AccessAnonymous}, 0, ""
		}
		return Access{Kind: AccessAuthUser}, 0, ""
	case "user", "submit":
		if !plus {
			return Access{}, len(name), name + "+ needs a userid"
		}
		if name == "user" {
			return Access{Kind: AccessUser, User: user}, 0, ""
		}
		return Access{Kind: AccessSubmit, User: user}, 0, ""
	}
	return Access{Kind: AccessApplication, Application: name, User: user}, 0, ""
}

// Requester is who asks to use a URLAUTH-authorized URL.
type Requester struct {
	// User is the authorization identity of the session. For a
	// submission entity (Submit) or an application entity it is the user
	// on whose behalf it acts: the submission server checks that against
	// its SMTP client before it fetches (RFC 4468 s3.4), and passes it on.
	User string
	// Authenticated is true for a session logged in as a non-anonymous
	// user; false for unauthenticated and SASL ANONYMOUS sessions.
	Authenticated bool
	// Submit is true when the session's identity is configured as a
	// message submission entity (RFC 5092 s6.1.2 "submit+").
	Submit bool
	// Applications lists the other RFC 5593 applications the session's
	// identity is registered for (e.g. "stream"), case-insensitive.
	Applications []string
	// OnBehalfOfAny: the requester is a submission or application entity
	// that has not said for whom it acts (an IMAP session of such an
	// identity): the userid of submit+<userid> and <app>+<userid> is not
	// checked, as RFC 4467 s7.1 and RFC 5593 s3.3 leave that to the
	// entity (the submission server compares it with its client, RFC
	// 4468 s3.4). In-process entities set User instead.
	OnBehalfOfAny bool
	// Own: URLs without ;URLAUTH= resolve with User's own rights (its
	// own mailboxes), as CATENATE uses them (RFC 4469 s3). URLAUTH URLs
	// are checked as for anyone else.
	Own bool
}

// Permits reports whether requester r may use a URL authorized for a:
//
//	anonymous      anyone, unauthenticated included
//	authuser       any authenticated non-anonymous session of a user
//	               acting for itself: not a submission or application
//	               entity (see below)
//	user+X         an authenticated session whose User is X
//	submit+X       an authenticated submission entity acting for X (or
//	               for anyone: OnBehalfOfAny)
//	app, app+X     an authenticated session registered for app (acting for
//	               X, or for anyone)
//
// AccessNone permits nobody. User names are compared exactly: callers pass
// the account's canonical name.
//
// "authuser" is limited to sessions logged in as an authorized user of
// the server (RFC 4467 s3): a user of its own. Submission and application
// entities (Submit, Applications) are not: they redeem URLs for others
// (the submission server for its SMTP client, RFC 4468 s3.3, which names
// the URLs meant for it submit+<user>; a media server for whoever placed
// the call, RFC 5616), so letting them redeem "authuser" would hand such
// URLs to people who are no authorized users at all.
func (a Access) Permits(r Requester) bool {
	switch a.Kind {
	case AccessAnonymous:
		return true
	case AccessAuthUser:
		return r.Authenticated && !r.entity()
	case AccessUser:
		return r.Authenticated && a.User != "" && r.User == a.User
	case AccessSubmit:
		return r.Authenticated && r.Submit && a.User != "" && (r.OnBehalfOfAny || r.User == a.User)
	case AccessApplication:
		if !r.Authenticated || !slices.ContainsFunc(r.Applications, func(s string) bool {
			return strings.EqualFold(s, a.Application)
		}) {
			return false
		}
		return a.User == "" || r.OnBehalfOfAny || r.User == a.User
	}
	return false
}

// entity reports whether r is a submission or application entity.
func (r Requester) entity() bool { return r.Submit || len(r.Applications) > 0 || r.OnBehalfOfAny }

// Permits is a.Permits(r).
func Permits(a Access, r Requester) bool { return a.Permits(r) }
