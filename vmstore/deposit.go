package vmstore

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// DepositReq is one message to store.
type DepositReq struct {
	User    string
	Mailbox string    // "" means INBOX
	Body    io.Reader // the raw RFC 5322 message; read to the end, streamed
	Flags   []string
	// InternalDate; zero means now.
	InternalDate time.Time
	// Event is MessageNew (deposit by LMTP/SMTP/HTTP, the default) or
	// MessageAppend (IMAP APPEND).
	Event   EventType
	Service string // lmtp, imap, http, cli ...
	// Urgent and Context override what the headers say when set.
	Urgent  bool
	Context Context
}

// DepositRes reports a stored message.
type DepositRes struct {
	Message Message
	Mailbox Mailbox
}

// Deposit stores a message. It returns only once the message is durable.
// Over quota it returns ErrOverQuota and stores nothing (a QuotaExceed event
// is journaled the first time the account goes over).
func (s *Store) Deposit(req DepositReq) (*DepositRes, error) {
	res, err := s.DepositMany([]DepositReq{req})
	if err != nil {
		return nil, err
	}
	return &res[0], nil
}

// DepositMany stores several messages of one account atomically (IMAP
// MULTIAPPEND, RFC 3502): bodies are streamed in one after the other, then
// one transaction makes all of them visible, or none.
func (s *Store) DepositMany(reqs []DepositReq) ([]DepositRes, error) {
	if len(reqs) == 0 {
		return nil, fmt.Errorf("%w: no message", ErrInvalid)
	}
	user := reqs[0].User
	var preps []*prepared
	defer func() {
		for _, p := range preps {
			p.release()
		}
	}()
	for _, r := range reqs {
		if r.User != user {
			return nil, fmt.Errorf("%w: messages of several accounts", ErrInvalid)
		}
		p, err := s.prepareDeposit(r)
		if err != nil {
			for _, q := range preps {
				q.sink.discard()
			}
			return nil, err
		}
		preps = append(preps, p)
		// What DepositMany holds in memory is bounded as one deposit's is:
		// once more than flushBytes of chunks wait, they go to the
		// database in their own transactions (under blob ids without an
		// R/ record, as a large deposit's chunks do).
		if pendingBytes(preps) > flushBytes {
			for _, q := range preps {
				if err := q.sink.flush(); err != nil {
					for _, q := range preps {
						q.sink.discard()
					}
					return nil, err
				}
			}
		}
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	var out []DepositRes
	overQuota := false
	_, err := s.update(user, func(w *wtx) error {
		out = out[:0]
		for _, p := range preps {
			res, over, err := w.applyDeposit(p)
			if err != nil {
				return err
			}
			if over {
				// Commit only the QuotaExceed event: drop what this
				// transaction stored so far.
				overQuota = true
				return w.keepOnlyQuotaEvents()
			}
			out = append(out, res)
		}
		return nil
	})
	for _, p := range preps {
		if err != nil || overQuota || p.dedup {
			p.sink.discard()
		}
		p.sink.recycle()
	}
	if err != nil {
		metricDepositRefused.WithLabelValues("error").Inc()
		return nil, err
	}
	if overQuota {
		metricDepositRefused.WithLabelValues("quota").Inc()
		return nil, fmt.Errorf("%w: account %q", ErrOverQuota, user)
	}
	for _, p := range preps {
		svc := p.req.Service
		if svc == "" {
			svc = "other"
		}
		metricDeposits.WithLabelValues(svc).Inc()
		metricDepositBytes.Add(float64(p.m.Size))
		metricDepositSeconds.Observe(time.Since(p.started).Seconds())
	}
	return out, nil
}

// prepared is a message that has streamed in (chunks written or pending)
// and been parsed, waiting for its transaction.
type prepared struct {
	s       *Store
	req     DepositReq
	sink    *chunkSink
	pm      *parsed
	m       Message
	dedup   bool
	started time.Time
	// boundTo: the blob that an earlier transaction of the same commit
	// bound the content to (DepositEach); 0 when none.
	boundTo uint64
}

func (p *prepared) release() {
	p.s.inflightMu.Lock()
	delete(p.s.inflight, p.sink.blob)
	p.s.inflightMu.Unlock()
}

// prepareDeposit streams a body in and parses it.
// pendingBytes counts the chunk bytes the prepared deposits hold in memory.
func pendingBytes(preps []*prepared) int {
	n := 0
	for _, p := range preps {
		for _, ch := range p.sink.pending {
			n += len(ch)
		}
	}
	return n
}

func (s *Store) prepareDeposit(req DepositReq) (*prepared, error) {
	if req.Mailbox == "" {
		req.Mailbox = "INBOX"
	}
	if req.Event == "" {
		req.Event = EventMessageNew
	}
	var flags []string
	for _, f := range req.Flags {
		c := CanonFlag(f)
		if c == "" {
			return nil, fmt.Errorf("%w: flag %q", ErrInvalid, f)
		}
		flags = applyFlags(flags, FlagsAdd, []string{c})
	}
	// Fail fast before reading the body.
	acct, err := s.GetAccount(req.User)
	if err != nil {
		return nil, err
	}
	if _, err := s.Mailbox(req.User, req.Mailbox); err != nil {
		return nil, err
	}
	p := &prepared{s: s, req: req, started: time.Now()}
	p.sink = &chunkSink{s: s, blob: s.nextBlob.Add(1)}
	s.inflightMu.Lock()
	s.inflight[p.sink.blob] = struct{}{}
	s.inflightMu.Unlock()
	fail := func(err error) (*prepared, error) {
		p.sink.discard()
		p.sink.recycle()
		p.release()
		return nil, err
	}
	h := sha256.New()
	limit := s.opts.MaxMessageSize
	tee := io.TeeReader(io.LimitReader(req.Body, limit+1), io.MultiWriter(h, p.sink))
	pm, err := parseMessage(tee, s.opts.Prober)
	if err == nil {
		_, err = io.Copy(io.Discard, tee)
	}
	if err != nil {
		if p.sink.err != nil {
			return fail(p.sink.err)
		}
		return fail(fmt.Errorf("vmstore: reading message: %w", err))
	}
	if p.sink.size > limit {
		return fail(fmt.Errorf("%w: more than %d bytes", ErrTooBig, limit))
	}
	if p.sink.size == 0 {
		return fail(fmt.Errorf("%w: empty message", ErrInvalid))
	}
	if max := acct.Options.Retention.MaxDurationSec; max > 0 && pm.duration > float64(max) {
		return fail(fmt.Errorf("%w: %.0f s exceeds the %d s limit", ErrTooBig, pm.duration, max))
	}
	// A content in a file is made durable here, by the session, before
	// its transaction is queued: the sessions' syncs overlap each other
	// and the committer's.
	if err := p.sink.finish(); err != nil {
		return fail(err)
	}
	now := s.now().UTC()
	p.pm = pm
	p.m = Message{
		Flags:        flags,
		InternalDate: req.InternalDate.UTC(),
		SaveDate:     now,
		Size:         p.sink.size,
		Hash:         h.Sum(nil),
		Context:      pm.context,
		Duration:     pm.duration,
		Urgent:       pm.urgent || req.Urgent,
		Recent:       true,
		Binary:       pm.root.HasBinary(),
		From:         truncate(pm.from, 256),
		Subject:      truncate(pm.subject, 256),
		SentDate:     pm.date.UTC(),
		To:           truncate(pm.to, 256),
		Cc:           truncate(pm.cc, 256),
		Keys:         pm.keys.bounded(),
	}
	if pm.date.IsZero() {
		p.m.SentDate = time.Time{}
	}
	if req.InternalDate.IsZero() {
		p.m.InternalDate = now
	}
	if req.Context != ContextUnknown {
		p.m.Context = req.Context
	}
	if p.m.Has(FlagSeen) {
		p.m.SeenAt = now
	}
	return p, nil
}

// applyDeposit stores a prepared message inside w. over reports that the
// quota refused it (w then holds the QuotaExceed event, if any).
func (w *wtx) applyDeposit(p *prepared) (DepositRes, bool, error) {
	req, m, sum := p.req, p.m, p.m.Hash
	mb, err := w.mailboxByName(req.User, req.Mailbox)
	if err != nil {
		return DepositRes{}, false, err
	}
	if err := w.checkQuota(req.User, m.Size, 1); err != nil {
		if !errors.Is(err, ErrOverQuota) {
			return DepositRes{}, false, err
		}
		return DepositRes{}, true, nil
	}
	// Bind to the content: an existing blob of the same bytes, or ours.
	var existing []byte
	if p.boundTo == 0 {
		if it, err := w.txn.Get(hashKey(sum)); err == nil {
			existing, _ = it.ValueCopy(nil)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return DepositRes{}, false, err
		}
	}
	switch {
	case p.boundTo != 0:
		// An earlier transaction of the same commit bound it
		// (DepositEach): its chunks and records are written there.
		m.Blob = p.boundTo
	case len(existing) == 8:
		p.dedup = true
		m.Blob = blobOfKey(existing)
	default:
		m.Blob = p.sink.blob
		if err := p.sink.writePending(w); err != nil {
			return DepositRes{}, false, err
		}
		if p.sink.inFile {
			w.newFiles = true
		}
		if err := w.put(blobKey(p.sink.blob), blobMeta{Size: p.sink.size, Hash: sum, Chunks: p.sink.n, File: p.sink.inFile}); err != nil {
			return DepositRes{}, false, err
		}
		if err := w.set(hashKey(sum), be64(nil, p.sink.blob)); err != nil {
			return DepositRes{}, false, err
		}
	}
	if ok, err := w.exists(partKey(sum)); err != nil {
		return DepositRes{}, false, err
	} else if !ok {
		if err := w.put(partKey(sum), &p.pm.root); err != nil {
			return DepositRes{}, false, err
		}
	}
	was := mb.Counts.MWI
	m.MailboxID = mb.ID
	m.UID = mb.UIDNext
	m.ModSeq = mb.HighestModSeq + 1
	mb.UIDNext++
	mb.HighestModSeq = m.ModSeq
	mb.Counts.apply(&m, +1)
	if err := w.putMessage(&m, 0); err != nil {
		return DepositRes{}, false, err
	}
	if err := w.addRef(m.Blob, mb.ID, m.UID); err != nil {
		return DepositRes{}, false, err
	}
	if err := w.putMailbox(mb); err != nil {
		return DepositRes{}, false, err
	}
	ev := Event{Type: req.Event, User: req.User, MailboxID: mb.ID, Mailbox: mb.Name, UIDValidity: mb.UIDValidity,
		UIDs: []uint32{m.UID}, ModSeq: m.ModSeq, UIDNext: mb.UIDNext, Messages: mb.Counts.Messages,
		Unseen: mb.Counts.Unseen, Service: req.Service, MsgFlags: [][]string{m.Flags}, MsgModSeq: []uint64{m.ModSeq}}
	fillMessageEvent(&ev, &m)
	if mb.Name == "INBOX" && was != mb.Counts.MWI {
		ev.MWI = mb.MWI()
	}
	w.emit(ev)
	return DepositRes{Message: m, Mailbox: *mb}, false, nil
}

// keepOnlyQuotaEvents turns w into a transaction that commits nothing but
// its QuotaExceed event (and the account's over-quota mark): the writes of
// messages already applied in it are dropped by starting afresh.
func (w *wtx) keepOnlyQuotaEvents() error {
	var keep []Event
	for _, e := range w.events {
		if e.Type == EventQuotaExceed {
			keep = append(keep, e)
		}
	}
	w.txn.Discard()
	w.txn = w.s.db.NewTransactionAt(w.txn.ReadTs(), true)
	w.writes = nil
	w.events = keep
	w.changes = nil
	w.modseqIdx = nil
	if len(keep) == 0 {
		return nil
	}
	var a Account
	if err := w.get(accountKey(keep[0].User), &a); err != nil {
		return err
	}
	a.OverQuota = true
	return w.put(accountKey(keep[0].User), &a)
}

func blobOfKey(v []byte) uint64 {
	var b uint64
	for _, c := range v {
		b = b<<8 | uint64(c)
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// Usage is an account's storage use over all its mailboxes.
type Usage struct {
	Bytes    int64 `json:"bytes"`
	Messages int64 `json:"messages"`
}

func (w *wtx) usage(user string) (Usage, error) {
	mbs, err := w.listMailboxes(user)
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	for _, mb := range mbs {
		u.Bytes += mb.Counts.Bytes
		u.Messages += int64(mb.Counts.Messages)
	}
	return u, nil
}

// Usage returns the account's storage use.
func (s *Store) Usage(user string) (Usage, error) {
	var u Usage
	err := s.view(func(txn *badger.Txn) error {
		mbs, err := listMailboxes(txn, user)
		for _, mb := range mbs {
			u.Bytes += mb.Counts.Bytes
			u.Messages += int64(mb.Counts.Messages)
		}
		return err
	})
	return u, err
}

// checkQuota returns ErrOverQuota when adding bytes/messages would exceed
// the account's quota, journaling QuotaExceed on the transition.
func (w *wtx) checkQuota(user string, bytes, messages int64) error {
	var a Account
	if err := w.get(accountKey(user), &a); err != nil {
		return fmt.Errorf("%w: account %q", err, user)
	}
	if a.Quota.Bytes == 0 && a.Quota.Messages == 0 {
		return nil
	}
	u, err := w.usage(user)
	if err != nil {
		return err
	}
	if !a.Quota.exceeded(u, bytes, messages) {
		return nil
	}
	if !a.OverQuota {
		a.OverQuota = true
		if err := w.put(accountKey(user), &a); err != nil {
			return err
		}
		w.emit(Event{Type: EventQuotaExceed, User: user, QuotaBytes: a.Quota.Bytes, QuotaMessages: a.Quota.Messages,
			UsedBytes: u.Bytes, UsedMessages: u.Messages})
	}
	return ErrOverQuota
}

// exceeded tells whether adding bytes and messages to u goes past q.
func (q Quota) exceeded(u Usage, bytes, messages int64) bool {
	return (q.Bytes > 0 && u.Bytes+bytes > q.Bytes) || (q.Messages > 0 && u.Messages+messages > q.Messages)
}

// quotaWithin journals QuotaWithin when an account that was over quota is
// back under it.
func (w *wtx) quotaWithin(user string) error {
	var a Account
	if err := w.get(accountKey(user), &a); err != nil || !a.OverQuota {
		return nil
	}
	u, err := w.usage(user)
	if err != nil {
		return err
	}
	if (a.Quota.Bytes > 0 && u.Bytes >= a.Quota.Bytes) || (a.Quota.Messages > 0 && u.Messages >= a.Quota.Messages) {
		return nil
	}
	a.OverQuota = false
	if err := w.put(accountKey(user), &a); err != nil {
		return err
	}
	w.emit(Event{Type: EventQuotaWithin, User: user, QuotaBytes: a.Quota.Bytes, QuotaMessages: a.Quota.Messages,
		UsedBytes: u.Bytes, UsedMessages: u.Messages})
	return nil
}
