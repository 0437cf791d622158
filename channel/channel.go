// Package channel turns message parts into something another party may
// fetch, and checks it when that party comes back: IMAP URLs (RFC 5092),
// URLAUTH authorization (RFC 4467, RFC 5593 access identifiers) and, later,
// CHANNEL grants for playback.
//
// # What channel owns now
//
//   - IMAP URLs: Parse, ParseRef, URL.String, URL.Rump, URL.Validate. The
//     server, mailbox/search and message/part forms, ;UIDVALIDITY=,
//     ;SECTION=, ;PARTIAL= (URL-PARTIAL, RFC 5550 s5.7.1), ;EXPIRE= and
//     ;URLAUTH=<access>[:<mechanism>:<token>]. Percent-encoding with the
//     achar/bchar classes of RFC 5092 s11 (EscapeUser, EscapeMailbox).
//     Mailbox names are UTF-8 in URLs (RFC 5092 s8); MailboxToMUTF7 and
//     MailboxFromMUTF7 convert for IMAP4rev1 sessions.
//
//   - Access identifiers: Access, ParseAccess, Access.Permits with a
//     Requester (anonymous, authuser, user+X, submit+X, RFC 5593 app[+X]).
//
//   - The INTERNAL URLAUTH mechanism: GenerateKey, Sign, Verify,
//     URL.Authorize, URL.VerifyToken.
//
//   - Resolver (resolve.go): GENURLAUTH (Authorize), RESETKEY (Reset)
//     and Resolve(url, requester), which checks the token, expiry, access
//     identifier, UIDVALIDITY and that the message and section still
//     exist, then opens the part through vmstore/message. Access keys are
//     the store's (vmstore/urlauth.go), per account id and mailbox id, so
//     a re-created account name never validates old URLs. The public
//     host:port URLs name is [imap] url_host.
//
//   - CHANNEL grants (grant.go): sealed, expiring playback tokens bound
//     to the account identity and to the mailbox's URLAUTH access key
//     (RESETKEY revokes them); uses counted durably in the store;
//     OpenFrom counts invalid tokens in the shared failure limiter.
//
// # Implementation notes
//
//   - Errors from Parse, ParseRef and ParseAccess are *URLError values that
//     match ErrBadURL and one more specific sentinel. They never include the
//     URL text: an authorized URL is a bearer credential and errors are
//     logged.
//   - The token covers the exact octets of the rump URL as the client sent
//     it to GENURLAUTH (RFC 4467 s3): no case folding and no percent
//     decoding. A parsed URLAUTH URL therefore keeps its rump octets; its
//     String and Rump return them while its fields are unchanged. Other URLs
//     are formatted canonically, and Parse(u.String()) equals u.
//   - INTERNAL tokens are hex(0x02 || HMAC-SHA-256(key, rump)): the leading
//     octet names the algorithm so that a later one can replace it, and the
//     whole 256-bit MAC follows (66 hex digits, lower case on output, either
//     case accepted). Keys are 256 random bits. Verification is constant
//     time in where the token differs.
//   - Relative references: only absolute-path ("/INBOX;UIDVALIDITY=..") and
//     network-path references resolve (ParseRef), as CATENATE needs;
//     relative-path references are refused as RFC 5092 s7.2 requires, and
//     dot-segments are refused rather than resolved.
//   - channel imports only vmstore and vmstore/message.
package channel
