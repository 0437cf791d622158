// Package notify turns the store's journal of state changes into outband
// notifications: signed RFC 5423 webhooks, SIP message-waiting indication
// (RFC 3842 SUBSCRIBE/NOTIFY and unsolicited NOTIFY), OMTP visual-voicemail
// SYNC texts for an SMS gateway.
//
// A Dispatcher tails vmstore's journal (vmstore.Store.ReadJournal), woken
// by the store's hub after each commit and by a slow poll, and hands each
// event to every Sink that accepts it. Sinks are plug-ins:
//
//   - WebhookSink: RFC 5423 events as JSON, Standard Webhooks HMAC-SHA256
//     signatures, HTTPS with certificate checks (payload.go, sign.go).
//   - MWIServer: RFC 3842 notifier on the appliance's SIP endpoint (sipep),
//     SUBSCRIBE/NOTIFY dialogs and unsolicited NOTIFY to per-account
//     targets (mwiserver.go, mwi.go).
//   - VVMSink: OMTP VVM SYNC texts posted to an SMS gateway (vvm.go).
//   - NATSSink: the webhook JSON on NATS JetStream subjects per account.
//   - EmailSink: voicemail-to-email through a smarthost.
//   - HoldWhileOnline wraps an outband sink to hold events while the
//     account has a client session (Presence follows Login/Logout).
//   - UserFilter wraps a sink with the user's own filter, kept as an IMAP
//     METADATA entry under MetadataPrefix.
//
// The URLAUTH URL of a message (vnd.lemonvox.url) comes from the optional
// PayloadBuilder.URLFor / EmailSink.URLFor functions; MessageURLs.URLFor
// (urlauth.go) makes one through channel.Resolver, with the configured
// access identifier and lifetime. Store API wishes are in STORE-NEEDS.md.
//
// # Implementation notes
//
//   - At-least-once: each sink has a durable cursor in the store
//     (CursorName(sink)); it only moves past an event once the event was
//     delivered or written (fsync) to the sink's dead-letter list. The cursor
//     is written every CursorInterval and on Close, so after a crash or
//     kill -9 the events delivered since the last write are delivered again.
//     Receivers dedupe by the event's journal seq: it is in the webhook-id
//     ("evt_<seq>_<sink tag>") and in data."vnd.lemonvox.journalSeq".
//   - Order: one worker per account and sink delivers that account's events
//     one after the other, in journal order; a retrying account blocks only
//     itself (until the sink's Window of unfinished events is full).
//     Different accounts are delivered concurrently (Concurrency).
//   - Retries: exponential backoff from BaseBackoff to MaxBackoff with equal
//     jitter, at least a Retry-After the receiver asked for; after
//     MaxAttempts, or at once for a Permanent error, the event goes to the
//     dead-letter list (<DeadLetterDir>/<sink>.deadletter.jsonl). The admin
//     API reads it with DeadLetters and acts with Replay / DropDeadLetters.
//   - A receiver answering 410 Gone disables its sink (Standard Webhooks):
//     a marker file records it durably, the cursor stays put, nothing is
//     lost, and EnableSink resumes delivery from the cursor.
//   - Webhook bodies are a pure function of the event (PayloadBuilder), so
//     every retry sends the same bytes under the same webhook-id; only
//     webhook-timestamp and the signature change (notes s6.4).
//   - MWI is state, not a stream of events: the MWIServer sink records the
//     account's latest counts (vmstore.Event.MWI) and notifies subscribers
//     and targets coalesced (the first change at once, changes within
//     Coalesce after it in one NOTIFY with the latest counts).
//   - The store's journal is never trimmed here; cmd may trim it to the
//     minimum cursor of all consumers.
//   - Lock order in MWIServer: a subscription's mutex before the server's.
//     Subscriptions live in memory: after a restart a refreshing phone gets
//     481 and subscribes again (RFC 6665 s4.1.2.2).
//
// # SUBSCRIBE authorization
//
// vmstore keeps only argon2id hashes of account passwords, from which no SIP
// digest can be verified. MWIServer therefore accepts two kinds of
// subscribers: requests from TrustedNetworks (the PBX, which has
// authenticated its phones) for any account, and phones that authenticate
// with HTTP digest (RFC 3261 s22, RFC 2617 MD5, qop=auth) against a per-account
// SIP credential kept as HA1 = MD5(user:realm:secret) in the account's
// notification preferences, Account.Options.Notify["sip_ha1"], set by the
// admin API (SIPHA1 computes it). An account without that preference can
// only be watched through a trusted PBX. A subscriber authenticated as one
// account may only watch that account's mailbox (403 otherwise). Nonces,
// nonce counts, the qop and uri rules and the authentication limiter are
// the endpoint's (sipep.Endpoint.Authenticate); an untrusted subscriber's
// NOTIFYs go to its source address, never to the Contact it names.
//
// # Validation and limits
//
// The SIP endpoint (sipep) validates every message, rate-limits sources
// and bounds connections. mwilimits.go holds what is MWI's: the
// subscription limits and the per-account fan-out bound.
package notify
