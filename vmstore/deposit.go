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

	started := time.Now()
	sink := &chunkSink{s: s, blob: s.nextBlob.Add(1)}
	s.inflightMu.Lock()
	s.inflight[sink.blob] = struct{}{}
	s.inflightMu.Unlock()
	defer func() {
		s.inflightMu.Lock()
		delete(s.inflight, sink.blob)
		s.inflightMu.Unlock()
	}()
	h := sha256.New()
	limit := s.opts.MaxMessageSize
	tee := io.TeeReader(io.LimitReader(req.Body, limit+1), io.MultiWriter(h, sink))
	var prober func(string, []byte, int64) (time.Duration, bool)
	if s.opts.Prober != nil {
		prober = s.opts.Prober
	}
	pm, err := parseMessage(tee, prober)
	if err == nil {
		_, err = io.Copy(io.Discard, tee)
	}
	if err != nil {
		sink.discard()
		if sink.err != nil {
			return nil, sink.err
		}
		return nil, fmt.Errorf("vmstore: reading message: %w", err)
	}
	sink.finish()
	if sink.size > limit {
		sink.discard()
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooBig, limit)
	}
	if sink.size == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrInvalid)
	}
	if max := acct.Options.Retention.MaxDurationSec; max > 0 && pm.duration > float64(max) {
		sink.discard()
		return nil, fmt.Errorf("%w: %.0f s exceeds the %d s limit", ErrTooBig, pm.duration, max)
	}
	sum := h.Sum(nil)
	now := s.now().UTC()
	m := Message{
		Flags:        flags,
		InternalDate: req.InternalDate.UTC(),
		SaveDate:     now,
		Size:         sink.size,
		Hash:         sum,
		Context:      pm.context,
		Duration:     pm.duration,
		Urgent:       pm.urgent || req.Urgent,
		Recent:       true,
		From:         truncate(pm.from, 256),
		Subject:      truncate(pm.subject, 256),
	}
	if req.InternalDate.IsZero() {
		m.InternalDate = now
	}
	if req.Context != ContextUnknown {
		m.Context = req.Context
	}
	if m.Has(FlagSeen) {
		m.SeenAt = now
	}

	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	var res DepositRes
	overQuota := false
	dedup := false
	_, err = s.update(req.User, func(w *wtx) error {
		mb, err := w.mailboxByName(req.User, req.Mailbox)
		if err != nil {
			return err
		}
		if err := w.checkQuota(req.User, m.Size, 1); err != nil {
			if !errors.Is(err, ErrOverQuota) {
				return err
			}
			overQuota = true
			return nil // commit the QuotaExceed event, store nothing
		}
		// Bind to the content: an existing blob of the same bytes, or ours.
		var existing []byte
		if it, err := w.txn.Get(hashKey(sum)); err == nil {
			existing, _ = it.ValueCopy(nil)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if len(existing) == 8 {
			dedup = true
			m.Blob = blobOfKey(existing)
		} else {
			m.Blob = sink.blob
			if err := sink.writePending(w); err != nil {
				return err
			}
			if err := w.put(blobKey(sink.blob), blobMeta{Size: sink.size, Hash: sum, Chunks: sink.n}); err != nil {
				return err
			}
			if err := w.set(hashKey(sum), be64(nil, sink.blob)); err != nil {
				return err
			}
		}
		if ok, err := w.exists(partKey(sum)); err != nil {
			return err
		} else if !ok {
			if err := w.put(partKey(sum), &pm.root); err != nil {
				return err
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
			return err
		}
		if err := w.addRef(m.Blob, mb.ID, m.UID); err != nil {
			return err
		}
		if err := w.putMailbox(mb); err != nil {
			return err
		}
		ev := Event{Type: req.Event, User: req.User, MailboxID: mb.ID, Mailbox: mb.Name, UIDValidity: mb.UIDValidity,
			UIDs: []uint32{m.UID}, ModSeq: m.ModSeq, UIDNext: mb.UIDNext, Messages: mb.Counts.Messages,
			Unseen: mb.Counts.Unseen, Service: req.Service, MsgFlags: [][]string{m.Flags}, MsgModSeq: []uint64{m.ModSeq}}
		fillMessageEvent(&ev, &m)
		if mb.Name == "INBOX" && was != mb.Counts.MWI {
			ev.MWI = mb.MWI()
		}
		w.emit(ev)
		res = DepositRes{Message: m, Mailbox: *mb}
		return nil
	})
	if err != nil || overQuota || dedup {
		sink.discard()
	}
	if err != nil {
		metricDepositRefused.WithLabelValues("error").Inc()
		return nil, err
	}
	if overQuota {
		metricDepositRefused.WithLabelValues("quota").Inc()
		return nil, fmt.Errorf("%w: account %q", ErrOverQuota, req.User)
	}
	svc := req.Service
	if svc == "" {
		svc = "other"
	}
	metricDeposits.WithLabelValues(svc).Inc()
	metricDepositBytes.Add(float64(m.Size))
	metricDepositSeconds.Observe(time.Since(started).Seconds())
	return &res, nil
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
	over := (a.Quota.Bytes > 0 && u.Bytes+bytes > a.Quota.Bytes) || (a.Quota.Messages > 0 && u.Messages+messages > a.Quota.Messages)
	if !over {
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
