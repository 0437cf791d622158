package smtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/deposit"
)

// envelope is a message's SMTP envelope.
type envelope struct {
	user    string // the submitting account
	from    string
	rcpts   []rcpt
	body    string
	release time.Time  // zero: now
	dsn     *dsnParams // RFC 3461 parameters; nil: none
}

// failure is a recipient that will not get the message.
type failure struct {
	addr string
	r    reply
}

// outcome is what one delivery attempt did.
type outcome struct {
	delivered int
	failed    []failure
	deferred  []rcpt
	deferErr  reply
}

// submit delivers or holds a received message and returns the reply to
// the end of its content.
func (s *Submission) submit(env envelope, sp *spool) reply {
	if !env.release.IsZero() && env.release.After(time.Now()) {
		e, err := s.Store.Enqueue(vmstore.DepositReq{User: env.user, Mailbox: vmstore.OutboxMailbox, Body: sp.reader(),
			Service: listenerName, Flags: []string{"\\Seen"}},
			vmstore.QueueEntry{From: env.from, Rcpts: rcptStrings(env.rcpts), Release: env.release, Body: env.body,
				Hold: true, SentCopy: true, DSN: env.dsn.marshal()})
		if err != nil {
			metricSubmissions.WithLabelValues("refused").Inc()
			s.Logger.Warn("submission hold", "user", env.user, "err", err)
			return storeReply(err)
		}
		metricSubmissions.WithLabelValues("held").Inc()
		metricQueue.WithLabelValues("held").Inc()
		s.queue.poke()
		s.Logger.Info("submission held", "user", env.user, "id", e.ID, "release", e.Release, "rcpts", len(env.rcpts))
		return rep(250, 2, 0, 0, fmt.Sprintf("Message held until %s as %s", e.Release.Format(time.RFC3339), e.ID))
	}
	out := s.deliverNow(env, sp, sp.size)
	if out.delivered == 0 && len(out.deferred) == 0 && len(out.failed) > 0 {
		metricSubmissions.WithLabelValues("refused").Inc()
		return out.failed[0].r
	}
	if out.delivered == 0 && len(out.failed) == 0 && len(out.deferred) > 0 {
		metricSubmissions.WithLabelValues("refused").Inc()
		return out.deferErr
	}
	// Something went out (or some recipients wait and others failed):
	// the client is done; what is left is the server's to finish.
	metricSubmissions.WithLabelValues("delivered").Inc()
	if len(out.deferred) > 0 {
		s.retryLater(env, out.deferred, out.deferErr, sp, 1, time.Now())
	}
	if len(out.failed) > 0 {
		s.bounce(env, out.failed, sp)
	}
	s.sentCopy(env.user, sp)
	return rep(250, 2, 0, 0, "Message accepted for delivery")
}

func rcptStrings(rs []rcpt) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.addr
	}
	return out
}

// storeReply maps a store error to the reply for the whole message.
func storeReply(err error) reply {
	switch {
	case errors.Is(err, vmstore.ErrOverQuota):
		return rep(552, 5, 2, 2, "Mailbox full")
	case errors.Is(err, vmstore.ErrTooBig):
		return rep(552, 5, 3, 4, "Message too big for system")
	case errors.Is(err, vmstore.ErrNotFound):
		return rep(550, 5, 1, 1, "No such user here")
	case errors.Is(err, vmstore.ErrInvalid):
		return rep(554, 5, 6, 0, "Message content refused: "+err.Error())
	case errors.Is(err, vmstore.ErrClosed):
		return rep(421, 4, 3, 2, "Service shutting down")
	}
	return rep(451, 4, 3, 0, "Temporary failure storing the message, try again later")
}

// deliverLocal stores the message for each user through the deposit
// path, every copy in one durable commit; a result per user.
func (s *Submission) deliverLocal(users []string, body io.ReaderAt, size int64) ([]error, error) {
	if s.Deliver != nil {
		return s.Deliver(users, body, size)
	}
	res, err := deposit.DepositEach(s.Store, users, io.NewSectionReader(body, 0, size),
		deposit.Options{AsMessage: true, Service: listenerName, Size: size})
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(users))
	for i := range res {
		errs[i] = res[i].Err
	}
	return errs, nil
}

// deliverNow makes one delivery attempt: local recipients first (one
// durable commit), then the smarthost.
func (s *Submission) deliverNow(env envelope, body io.ReaderAt, size int64) outcome {
	var out outcome
	var users []string
	var local, remote []rcpt
	for _, r := range env.rcpts {
		if r.user != "" {
			local = append(local, r)
			users = append(users, r.user)
		} else {
			remote = append(remote, r)
		}
	}
	if len(local) > 0 {
		errs, err := s.deliverLocal(users, body, size)
		for i, r := range local {
			e := err
			if e == nil && i < len(errs) {
				e = errs[i]
			}
			if e == nil {
				out.delivered++
				continue
			}
			rp := storeReply(e)
			s.Logger.Info("submission local delivery", "user", env.user, "rcpt", r.addr, "err", e)
			if rp.code >= 500 {
				out.failed = append(out.failed, failure{r.addr, rp})
			} else {
				out.deferred = append(out.deferred, r)
				out.deferErr = rp
			}
		}
	}
	if len(remote) > 0 {
		if s.Relay == nil {
			for _, r := range remote {
				out.failed = append(out.failed, failure{r.addr, rep(550, 5, 7, 1, "No smarthost is configured")})
			}
			return out
		}
		addrs := rcptStrings(remote)
		refused, err := s.Relay.SendDSN(s.Hostname, env.from, addrs, env.body, io.NewSectionReader(body, 0, size), size, env.dsn)
		var whole *RelayError
		if err != nil {
			errors.As(err, &whole)
		}
		bad := map[string]*RelayError{}
		for _, re := range refused {
			bad[re.Rcpt] = re
		}
		for _, r := range remote {
			re := bad[r.addr]
			if whole != nil {
				re = whole
			}
			if re == nil {
				out.delivered++
				continue
			}
			rp := reply{re.Code, re.Enhanced, re.Message}
			s.Logger.Info("submission relay", "user", env.user, "rcpt", r.addr, "err", re)
			if re.Temporary {
				out.deferred = append(out.deferred, r)
				out.deferErr = rp
			} else {
				out.failed = append(out.failed, failure{r.addr, rp})
			}
		}
	}
	return out
}

// retryLater queues the recipients that wait for another attempt.
func (s *Submission) retryLater(env envelope, rs []rcpt, why reply, sp *spool, attempts int, created time.Time) {
	_, err := s.Store.Enqueue(vmstore.DepositReq{User: env.user, Mailbox: vmstore.OutboxMailbox, Body: sp.reader(),
		Service: listenerName, Flags: []string{"\\Seen"}},
		vmstore.QueueEntry{From: env.from, Rcpts: rcptStrings(rs), Release: time.Now().Add(orDur(s.RetryInterval, 5*time.Minute)),
			Body: env.body, Attempts: attempts, LastError: why.String(), DSN: env.dsn.marshal()})
	if err != nil {
		// Nothing is left to try again with: tell the sender.
		s.Logger.Warn("submission queue for retry", "user", env.user, "err", err)
		var fs []failure
		for _, r := range rs {
			fs = append(fs, failure{r.addr, why})
		}
		s.bounce(env, fs, sp)
		return
	}
	metricQueue.WithLabelValues("retried").Inc()
	s.queue.poke()
}

// sentCopy stores the sender's copy in its Sent mailbox (created with
// \Sent on first use).
func (s *Submission) sentCopy(user string, body interface {
	io.ReaderAt
}) {
	mb := s.sentMailbox()
	if mb == "-" {
		return
	}
	size := int64(-1)
	if sp, ok := body.(*spool); ok {
		size = sp.size
	}
	if size < 0 {
		return
	}
	if _, err := s.Store.Mailbox(user, mb); errors.Is(err, vmstore.ErrNotFound) {
		if _, err := s.Store.CreateMailbox(user, mb, "\\Sent"); err != nil && !errors.Is(err, vmstore.ErrExists) {
			s.Logger.Warn("submission Sent mailbox", "user", user, "err", err)
			return
		}
	}
	if _, err := s.Store.Deposit(vmstore.DepositReq{User: user, Mailbox: mb, Body: io.NewSectionReader(body, 0, size),
		Flags: []string{"\\Seen"}, Service: listenerName, Event: vmstore.EventMessageAppend}); err != nil {
		s.Logger.Warn("submission Sent copy", "user", user, "err", err)
	}
}

// bounce tells the sender, in its INBOX, which recipients will not get
// the message: a delivery status notification (RFC 3464) with the
// original header.
func (s *Submission) bounce(env envelope, fs []failure, body io.ReaderAt) {
	// RFC 3461 s4.1: a recipient with NOTIFY=NEVER, or a NOTIFY without
	// FAILURE, gets no failure report.
	var keep []failure
	for _, f := range fs {
		if env.dsn.rcpt(f.addr).wantsFailure() {
			keep = append(keep, f)
		} else {
			s.Logger.Info("submission failure not reported (NOTIFY)", "user", env.user, "rcpt", f.addr)
		}
	}
	fs = keep
	if len(fs) == 0 || env.from == "" {
		return
	}
	metricQueue.WithLabelValues("bounced").Inc()
	hdr := originalHeader(body)
	boundary := "=_dsn_" + newID()[:20]
	var b bytes.Buffer
	now := time.Now()
	fmt.Fprintf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", s.Hostname)
	fmt.Fprintf(&b, "To: <%s>\r\n", sanitizeHeader(env.from))
	fmt.Fprintf(&b, "Subject: Undelivered Mail Returned to Sender\r\n")
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", newID(), s.Hostname)
	fmt.Fprintf(&b, "Auto-Submitted: auto-replied\r\n")
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=delivery-status; boundary=\"%s\"\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", boundary)
	fmt.Fprintf(&b, "Your message could not be delivered to these recipients:\r\n\r\n")
	for _, f := range fs {
		fmt.Fprintf(&b, "  <%s>: %s\r\n", sanitizeHeader(f.addr), sanitizeHeader(f.r.String()))
	}
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary)
	if env.dsn != nil && env.dsn.EnvID != "" {
		fmt.Fprintf(&b, "Original-Envelope-Id: %s\r\n", encodeXtext(env.dsn.EnvID))
	}
	fmt.Fprintf(&b, "Reporting-MTA: dns; %s\r\nArrival-Date: %s\r\n", s.Hostname, now.Format(time.RFC1123Z))
	for _, f := range fs {
		b.WriteString("\r\n")
		if r := env.dsn.rcpt(f.addr); r.ORcpt != "" {
			fmt.Fprintf(&b, "Original-Recipient: %s;%s\r\n", r.ORcptType, encodeXtext(r.ORcpt))
		}
		fmt.Fprintf(&b, "Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: %d.%d.%d\r\n", sanitizeHeader(f.addr),
			max(f.r.enhanced[0], 5), f.r.enhanced[1], f.r.enhanced[2])
		fmt.Fprintf(&b, "Diagnostic-Code: smtp; %s\r\n", sanitizeHeader(f.r.String()))
	}
	if env.dsn != nil && env.dsn.Ret == "FULL" {
		// RET=FULL (RFC 3461 s4.3): the whole message comes back.
		fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: message/rfc822\r\n\r\n", boundary)
		if sp, ok := body.(*spool); ok {
			io.Copy(&b, io.NewSectionReader(sp, 0, sp.size))
		} else {
			b.Write(hdr)
		}
	} else {
		fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary)
		b.Write(hdr)
	}
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	if _, err := s.Store.Deposit(vmstore.DepositReq{User: env.user, Body: &b, Service: listenerName}); err != nil {
		s.Logger.Warn("submission bounce", "user", env.user, "err", err)
	}
}

// originalHeader returns the header section of the message (at most 64 KiB).
func originalHeader(body io.ReaderAt) []byte {
	br := bufio.NewReader(io.NewSectionReader(body, 0, 64<<10))
	tr := textproto.NewReader(br)
	var out bytes.Buffer
	for {
		line, err := tr.ReadLineBytes()
		if err != nil || len(line) == 0 {
			break
		}
		out.Write(line)
		out.WriteString("\r\n")
	}
	return out.Bytes()
}

// scheduler releases queued messages at their time.
type scheduler struct {
	s    *Submission
	wake chan struct{}
	done chan struct{}
	once sync.Once
	ran  bool
	mu   sync.Mutex
}

func (q *scheduler) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *scheduler) wait() {
	q.mu.Lock()
	ran := q.ran
	q.mu.Unlock()
	if ran {
		<-q.done
	}
}

func (q *scheduler) run(ctx context.Context) {
	q.mu.Lock()
	if q.ran {
		q.mu.Unlock()
		return
	}
	q.ran = true
	q.mu.Unlock()
	defer close(q.done)
	for {
		next := q.releaseDue(ctx)
		wait := time.Minute
		if !next.IsZero() {
			wait = min(max(time.Until(next), 0), time.Minute)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-q.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// releaseDue releases every entry whose time has come and returns the
// time of the next one (zero: none).
func (q *scheduler) releaseDue(ctx context.Context) time.Time {
	es, err := q.s.Store.QueueEntries("")
	if err != nil {
		if !errors.Is(err, vmstore.ErrClosed) {
			q.s.Logger.Warn("submission queue", "err", err)
		}
		return time.Now().Add(10 * time.Second)
	}
	now := time.Now()
	for _, e := range es {
		if ctx.Err() != nil {
			return time.Time{}
		}
		if e.Release.After(now) {
			return e.Release
		}
		q.release(e)
	}
	return time.Time{}
}

// release delivers one due entry. A message no longer in the Outbox was
// cancelled by its sender (EXPUNGE): the entry goes.
func (q *scheduler) release(e vmstore.QueueEntry) {
	s := q.s
	m, err := s.Store.Message(e.MailboxID, e.UID)
	if err != nil {
		if errors.Is(err, vmstore.ErrNotFound) {
			metricQueue.WithLabelValues("cancelled").Inc()
			s.Logger.Info("submission queue: cancelled by the sender", "id", e.ID, "user", e.User)
			s.Store.Dequeue(e.ID)
			return
		}
		s.Logger.Warn("submission queue: reading entry", "id", e.ID, "err", err)
		return
	}
	sp, err := s.newSpool()
	if err != nil {
		s.Logger.Warn("submission queue: spool", "err", err)
		return
	}
	defer sp.close()
	sp.max = m.Size + 1
	if _, err := io.Copy(sp, s.Store.OpenMessage(m).Reader()); err != nil {
		s.Logger.Warn("submission queue: reading message", "id", e.ID, "err", err)
		return
	}
	env := envelope{user: e.User, from: e.From, body: e.Body, dsn: unmarshalDSN(e.DSN)}
	for _, a := range e.Rcpts {
		r := rcpt{addr: a}
		local, dom := splitAddress(a)
		if s.isLocalDomain(dom) {
			r.user = vmstore.FoldUserName(local)
		}
		env.rcpts = append(env.rcpts, r)
	}
	out := s.deliverInSteps(e, env, sp)
	if len(out.failed) > 0 {
		s.bounce(env, out.failed, sp)
	}
	if len(out.deferred) > 0 && time.Since(e.Created) < orDur(s.MaxRetryAge, 48*time.Hour) {
		e.Rcpts = rcptStrings(out.deferred)
		e.Release = time.Now().Add(orDur(s.RetryInterval, 5*time.Minute))
		e.Attempts++
		e.LastError = out.deferErr.String()
		if e.SentCopy && out.delivered > 0 {
			s.sentCopy(e.User, sp)
			e.SentCopy = false
		}
		e.Hold = false
		if err := s.Store.UpdateQueueEntry(e); err != nil {
			s.Logger.Warn("submission queue: update", "id", e.ID, "err", err)
		}
		metricQueue.WithLabelValues("retried").Inc()
		return
	}
	if len(out.deferred) > 0 {
		var fs []failure
		for _, r := range out.deferred {
			fs = append(fs, failure{r.addr, reply{out.deferErr.code + 100, [3]int{5, out.deferErr.enhanced[1], out.deferErr.enhanced[2]},
				"gave up: " + strings.TrimSpace(out.deferErr.msg)}})
		}
		s.bounce(env, fs, sp)
	}
	if e.SentCopy {
		s.sentCopy(e.User, sp)
	}
	if err := s.Store.Dequeue(e.ID); err != nil && !errors.Is(err, vmstore.ErrNotFound) {
		s.Logger.Warn("submission queue: dequeue", "id", e.ID, "err", err)
	}
	metricQueue.WithLabelValues("released").Inc()
	s.Logger.Info("submission queue: released", "id", e.ID, "user", e.User, "delivered", out.delivered)
}

// deliverInSteps delivers a queued message to its local recipients, then
// records that only the remote ones are left before it calls the
// smarthost: a crash in between sends nobody the message twice, except
// for the moment between a step and its record.
func (s *Submission) deliverInSteps(e vmstore.QueueEntry, env envelope, sp *spool) outcome {
	var local, remote []rcpt
	for _, r := range env.rcpts {
		if r.user != "" {
			local = append(local, r)
		} else {
			remote = append(remote, r)
		}
	}
	if len(local) == 0 || len(remote) == 0 {
		return s.deliverNow(env, sp, sp.size)
	}
	le := env
	le.rcpts = local
	out := s.deliverNow(le, sp, sp.size)
	left := append(rcptStrings(out.deferred), rcptStrings(remote)...)
	e.Rcpts = left
	if err := s.Store.UpdateQueueEntry(e); err != nil {
		s.Logger.Warn("submission queue: update", "id", e.ID, "err", err)
	}
	re := env
	re.rcpts = remote
	ro := s.deliverNow(re, sp, sp.size)
	out.delivered += ro.delivered
	out.failed = append(out.failed, ro.failed...)
	out.deferred = append(out.deferred, ro.deferred...)
	if len(ro.deferred) > 0 {
		out.deferErr = ro.deferErr
	}
	return out
}
