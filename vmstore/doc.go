// Package vmstore is Lemonvox's message store: accounts, mailboxes, messages,
// flags, UIDs and MODSEQs, media blobs, the cached MIME structure, quota,
// retention, the journal of RFC 5423 state-change events and the in-process
// hub that wakes readers after each commit. It is built on Badger v4 with
// SyncWrites on: a deposit is acknowledged only once it is durable.
//
// # Keyspace
//
// Keys start with a one-letter kind and a slash; numbers are big-endian so
// that range scans come out in order. "\x00" separates a user name from a
// mailbox name (neither may contain NUL).
//
//	A/<user>                        Account (JSON): id, password hash, PIN hash, quota, options
//	I/account-id                    last account id handed out (8 bytes)
//	N/<user>\x00<name>              mailbox id (8 bytes): the name index
//	M/<mbid:8>                      Mailbox (JSON): owner, name, UIDVALIDITY, UIDNEXT,
//	                                HIGHESTMODSEQ, special use, counters
//	U/<mbid:8><uid:4>               Message (binary, msgcodec.go): blob, flags, modseq, dates, context
//	C/<mbid:8><modseq:8>            uid (4 bytes): modseq index for CHANGEDSINCE
//	X/<mbid:8><modseq:8>            expunged uids (compact uid list) for QRESYNC VANISHED
//	S/<user>\x00<name>              subscription (empty value)
//	B/<blob:8><chunk:4>             a chunk of a message's raw RFC 5322 bytes
//	R/<blob:8>                      blob meta (JSON): size, sha256, chunk count, and
//	                                "file" when the content is in blobs/<blob:16 hex>
//	                                beside the database instead (blobfile.go)
//	Q/<blob:8><mbid:8><uid:4>       a message's reference to a blob (empty value); a
//	                                blob without references is collected
//	H/<sha256:32>                   blob id of that content (dedupe: COPY shares, equal
//	                                deposits share)
//	P/<sha256:32>                   parsed MIME structure (JSON Part tree)
//	J/<seq:8>                       journal: one Event (JSON), gap-free global sequence
//	K/<sink>                        journal cursor of a consumer (8 bytes)
//	D/<user>\x00<mbid:8><entry>     metadata entry (RFC 5464; mbid 0 = server/account)
//	Z/<account id:8><mbid:8>        URLAUTH mailbox access key (32 random octets, urlauth.go)
//	F/<id>                          submission queue entry (JSON, queue.go): a held or retried
//	                                message, kept in its sender's Outbox
//
// # Reads and commits
//
// Badger runs in managed mode: the store chooses every commit and read
// timestamp (readts.go). In Badger's own mode a new read transaction takes
// the newest commit timestamp handed out and waits until every commit up to
// it is written, fsync included; with many long-lived sessions most reads
// (a FETCH's blob chunks, a LIST, a STATUS) then queued behind other
// sessions' durable writes. Here:
//
//   - Reads open their transaction at readTs, the timestamp of the last
//     commit that is written and applied. They never wait, and they see
//     every acknowledged commit (a commit is acknowledged after readTs has
//     passed it), so a session reads its own writes. Open read timestamps
//     are registered, and the discard timestamp given to Badger (which lets
//     compactions drop superseded versions) stays below the oldest of them.
//   - A write transaction of an account reads at readTs once the account's
//     previous commit is finished (it may still be in flight when the
//     account lock is released); it does not wait for other accounts.
//   - Commits are written by one committer, in journal order. Badger syncs
//     its log once per committed transaction, so everything queued while a
//     write is in progress is replayed into one Badger transaction and
//     committed at one timestamp with SyncWrites: one sync per group, each
//     member acknowledged only once the group is durable (and atomic: a
//     group is one transaction). Writes outside any account (chunks of
//     a large deposit, collection, cursors) take their own turn.
//   - After a group is written, readTs moves to it, the index applies it
//     (all members under one lock) and the hub publishes its events.
//   - DepositEach (one message for several accounts, LMTP) builds one
//     transaction per account under their locks (taken in name order) and
//     queues them glued: a glued run is never split between groups, so
//     every copy becomes durable and visible in the same Badger commit.
//     The body is stored once; the first account's transaction writes it
//     and the others refer to it.
//
// The alternatives weighed: a shared, periodically refreshed snapshot for
// the immutable keys (B/, P/, H/) with a fresh transaction when a key is
// missing helps only content reads, and a fresh deposit is read right away
// (the fallback waits again); LIST, STATUS and metadata would still wait. A
// per-reader chunk cache cuts transactions per FETCH but not the first
// wait. Choosing timestamps keeps one store, one backup stream and
// Badger's recovery, and removes the wait from every read path at once.
//
// Large contents (64 KiB and more) are nevertheless written to files of
// their own beside the database, for the CPU a deposit costs rather than
// for reads: Badger's value log copied every chunk twice (into a buffer,
// then into its memory map, a page fault per page) and synced it with
// msync, all in its one writer goroutine. A blob file is written as the
// content streams in and fdatasynced by the depositing session before its
// transaction is queued; the committer syncs the directory before a group
// that records new files commits. Backup sends file contents as chunks,
// orphan files go at startup, and the kill -9 test covers files
// (blobfile.go).
//
// # Account names and identity
//
// An account name (CheckUserName) is 1 to 64 characters of a-z 0-9 . _ + -,
// starting with a letter or a digit, or with "+" and a digit (E.164
// numbers), ending with a letter or a digit, without "..": it is an IMAP
// URL user (RFC 5092 enc-user), the user part of a SIP URI (RFC 3261) and a
// safe file and URL path segment as it is. CreateAccount folds names to
// lower case (FoldUserName) and refuses others with ErrBadName; records of
// other names written by earlier versions are still read, listed and
// deleted.
//
// An account's identity is Account.ID, not its name: a store-wide sequence
// (I/account-id) that never hands an id out twice (identity.go). Records
// without one get one at Open (assignAccountIDs). Deleting an account
// publishes AccountDelete with the id; the hub ends the account's
// per-account subscriptions and calls OnAccountDeleted functions, and
// AccountDeletions changes as soon as the deletion is visible, so sessions,
// subscriptions and keys bound to the id end with it and never pass to an
// account created again under the name.
//
// # Implementation notes
//
//   - Every mutation of one account runs under that account's lock, builds a
//     Badger transaction that includes its journal events, and commits. The
//     journal sequence is assigned at commit time under the sequencer lock, in
//     the same order as the commits are written (see "Reads and commits"), so
//     the journal is gap-free and readers never see a later event before an
//     earlier one.
//   - A write that Badger fails to make durable after it was sequenced stops
//     the store (ErrStoreFailed): continuing could leave a gap in the journal.
//   - Counters (messages, unseen, recent, deleted, bytes, MWI new/old x
//     urgent per message context) live in the mailbox record and change in the
//     same transaction as the messages, so STATUS and MWI never scan.
//   - Message bodies are streamed in: chunks are flushed in their own
//     transactions once a deposit exceeds one batch, under a blob id that has
//     no R/ record yet, so a crash leaves only unreferenced chunks, which the
//     collector removes. The final transaction writes the R/ and H/ records.
//   - After commit, the hub hands the committed events to subscribers (IMAP
//     sessions, notifiers). The journal is the truth; the hub only wakes.
//   - Recently used mailboxes are also held in memory (index.go): the mailbox
//     record and its message records in UID order, updated from each commit's
//     written records in commit order, just before its events reach the hub.
//     Snapshot, Messages, Message, ChangedSince and UIDs read that image, so
//     a session's snapshot and the events after it line up exactly, and reads
//     do not walk Badger's memtable (which keeps every version of a record
//     that changes with each flag change until it is flushed). The index is
//     bounded (Options.IndexMessages, least recently used images dropped) and
//     rebuilt from Badger on demand; Badger stays the only durable copy.
//   - Badger bounds one transaction (about a tenth of its memtable). STORE,
//     EXPUNGE, COPY/MOVE and \Recent clearing on more than maxOpMessages
//     messages, or on fewer whose transaction is still too big, run in
//     parts, one transaction (modseq, events) each; deleting or renaming
//     (INBOX) a mailbox too large for one transaction first moves or
//     removes its messages in parts (batch.go). The modseq index entries a
//     transaction touches are written once, at commit.
//   - Message and mailbox records are encoded in a compact binary form
//     (msgcodec.go); JSON records of earlier stores are still read.
package vmstore
