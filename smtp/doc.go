// Package smtp holds the appliance's SMTP-family listeners, built on
// github.com/emersion/go-smtp:
//
//   - LMTP deposit (RFC 2033, lmtp.go): telephony platforms and MTAs hand
//     messages to local subscribers. Loopback TCP (127.0.0.1:2424) or a
//     unix socket; a reply per recipient after DATA/BDAT; unknown users
//     550 5.1.1; quota refusals per recipient at RCPT where the size is
//     known (SIZE=) and again at commit (452 4.2.2 mailbox full, 552 5.2.2
//     message too big for the quota); SIZE, 8BITMIME, PIPELINING,
//     ENHANCEDSTATUSCODES, BINARYMIME and CHUNKING (BDAT). Every
//     recipient's copy goes through vmstore/deposit (VPIM voice messages
//     keep their Message-Context and duration, MMS PDUs are mapped to
//     Internet mail) and all copies of one message are stored in one
//     durable commit before the first 250 is written.
//   - SMTP submission with BURL (submission files), sharing the helpers of
//     common.go: enhanced status replies, the mapping of store errors to
//     replies, listener setup with connection limits (netlimit), metrics.
//
// The package imports vmstore, vmstore/deposit, vmstore/message, channel,
// authlimit and netlimit, never another front end.
package smtp
