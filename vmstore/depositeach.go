package vmstore

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// DepositEach stores one message for several accounts (an LMTP delivery
// to several recipients): the body streams in and is parsed once, stored
// once (every account's message refers to the same blob), and the
// accounts' transactions are committed glued together, in one Badger
// transaction: when DepositEach returns, every accepted copy is durable.
//
// req.User is ignored; users may repeat (one copy each time). The result
// has one entry per user, in order: the stored message, or its own error
// (ErrNotFound for an unknown account or mailbox, ErrOverQuota when that
// account's quota refuses it: nothing is stored for that account). The
// error is for what fails for all (reading the body, a commit).
func (s *Store) DepositEach(req DepositReq, users []string) ([]DepositRes, []error, error) {
	if len(users) == 0 {
		return nil, nil, fmt.Errorf("%w: no recipient", ErrInvalid)
	}
	res := make([]DepositRes, len(users))
	errs := make([]error, len(users))
	mailbox := req.Mailbox
	if mailbox == "" {
		mailbox = "INBOX"
	}
	// Fail fast, per account, before reading the body.
	first := -1
	for i, u := range users {
		if _, err := s.GetAccount(u); err != nil {
			errs[i] = err
			continue
		}
		if _, err := s.Mailbox(u, mailbox); err != nil {
			errs[i] = err
			continue
		}
		if first < 0 {
			first = i
		}
	}
	if first < 0 {
		return res, errs, nil
	}
	r := req
	r.User = users[first]
	p, err := s.prepareDeposit(r)
	if err != nil {
		return nil, nil, err
	}
	defer p.release()
	defer p.sink.recycle() // last: after the commit, or after it was dropped

	// One transaction per distinct account, built under the account locks
	// taken in name order.
	var names []string
	for i, u := range users {
		if errs[i] == nil && !slices.Contains(names, u) {
			names = append(names, u)
		}
	}
	slices.Sort(names)
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	var unlocks []func()
	unlock := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
		unlocks = nil
	}
	defer unlock()
	var ends []uint64
	defer func() {
		for _, ts := range ends {
			s.endRead(ts)
		}
	}()
	byUser := map[string]*wtx{}
	var ws []*wtx
	for _, u := range names {
		unlocks = append(unlocks, s.lockAccount(u))
		txn, ts := s.writeTxn(u)
		ends = append(ends, ts)
		defer txn.Discard()
		w := &wtx{s: s, txn: txn, now: s.now(), user: u}
		byUser[u] = w
		ws = append(ws, w)
	}
	for i, u := range users {
		if errs[i] != nil {
			continue
		}
		p.req.User = u
		p.req.Mailbox = mailbox
		out, over, err := byUser[u].applyDeposit(p)
		if err != nil {
			// The copies share one blob and one commit: a failure
			// here is the store's, and fails them all.
			p.sink.discard()
			metricDepositRefused.WithLabelValues("error").Inc()
			return nil, nil, err
		}
		if over {
			errs[i] = fmt.Errorf("%w: account %q", ErrOverQuota, u)
			continue
		}
		res[i] = out
		if p.boundTo == 0 {
			p.boundTo = out.Message.Blob
		}
	}
	// An account refused by its quota still commits its QuotaExceed
	// event.
	var commit []*wtx
	for _, w := range ws {
		if len(w.writes) > 0 || len(w.events) > 0 {
			commit = append(commit, w)
		}
	}
	if p.boundTo != p.sink.blob {
		// Nothing refers to our chunks (all refused, or the content
		// was stored before): the ones flushed early are dropped.
		defer p.sink.discard()
	}
	if len(commit) > 0 {
		wait, err := s.commitAll(commit)
		unlock()
		if err == nil {
			err = wait()
		}
		if err != nil {
			if p.boundTo == p.sink.blob {
				p.sink.discard()
			}
			metricDepositRefused.WithLabelValues("error").Inc()
			return nil, nil, err
		}
	}
	svc := req.Service
	if svc == "" {
		svc = "other"
	}
	for i := range users {
		if errs[i] == nil {
			metricDeposits.WithLabelValues(svc).Inc()
			metricDepositBytes.Add(float64(p.m.Size))
			metricDepositSeconds.Observe(time.Since(p.started).Seconds())
		} else if errors.Is(errs[i], ErrOverQuota) {
			metricDepositRefused.WithLabelValues("quota").Inc()
		}
	}
	return res, errs, nil
}
