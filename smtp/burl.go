package smtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"

	"github.com/lemonvox/lemonvox/channel"
)

// URLFetcher fetches what a BURL URL names for the submission entity
// acting for user (RFC 4468 s3.4: the access identifier submit+<user>).
type URLFetcher interface {
	FetchURL(ctx context.Context, u *channel.URL, user string) (io.ReadCloser, error)
}

// Errors a URLFetcher returns (errors.Is), mapped to the replies of RFC
// 4468 s6.
var (
	// ErrURLNotOurs: the URL names another server (the router then tries
	// the remote fetcher).
	ErrURLNotOurs = errors.New("smtp: URL names another server")
	// ErrURLRefused: the URL does not resolve for this user (token,
	// expiry, access identifier, message gone): 554 5.6.6.
	ErrURLRefused = errors.New("smtp: IMAP URL resolution failed")
	// ErrURLUnavailable: the IMAP server cannot be reached now: 451 4.4.1.
	ErrURLUnavailable = errors.New("smtp: IMAP server unavailable")
)

// Fetchers routes a URL to the in-process resolver when it names this
// appliance and to the IMAP client (URLFETCH) otherwise.
type Fetchers struct {
	Local  URLFetcher // nil: no local URLs
	Remote URLFetcher // nil: other servers' URLs are refused
}

// FetchURL implements URLFetcher.
func (f Fetchers) FetchURL(ctx context.Context, u *channel.URL, user string) (io.ReadCloser, error) {
	if f.Local != nil {
		rc, err := f.Local.FetchURL(ctx, u, user)
		if err == nil || !errors.Is(err, ErrURLNotOurs) {
			return rc, err
		}
	}
	if f.Remote == nil {
		return nil, ErrURLNotOurs
	}
	return f.Remote.FetchURL(ctx, u, user)
}

// fetchInto appends what url names to the spool, or returns the refusal.
func (s *Submission) fetchInto(ctx context.Context, sp *spool, raw, user, body string, src netip.Addr, log *slog.Logger) *reply {
	u, err := channel.Parse(raw)
	if err != nil {
		metricBURL.WithLabelValues("local", "error").Inc()
		r := rep(554, 5, 7, 0, "Invalid URL")
		return &r
	}
	if !u.IsMessagePart() {
		r := rep(554, 5, 7, 0, "Invalid URL: BURL needs a message or part URL")
		return &r
	}
	if u.Access.Kind == channel.AccessNone {
		// Only URLAUTH-authorized URLs: no trust relationship is
		// configured with any IMAP server (RFC 4468 s3.5).
		r := rep(554, 5, 7, 14, "URL resolution requires trust relationship")
		return &r
	}
	switch {
	case u.Access.Kind == channel.AccessSubmit && u.Access.User == user, u.Access.Kind == channel.AccessAnonymous:
	default:
		// The submission server redeems URLs as the submission entity
		// acting for its client (RFC 4468 s3.4): submit+<that user>
		// (or anonymous ones), never another identity's.
		metricBURL.WithLabelValues("any", "error").Inc()
		r := rep(554, 5, 6, 6, "IMAP URL resolution failed: the URL is not authorized for submit+"+user)
		return &r
	}
	// The token is a credential: a wrong one counts in the shared
	// authentication limiter against the client's address and (account,
	// address), as a failed AUTH does (RFC 4467 s10, RFC 4468 s8 "rate
	// limits"); an address with too many queued is refused unchecked.
	att, lerr := s.AuthLimiter.Begin(ctx, "burl", src, user)
	if lerr != nil {
		metricBURL.WithLabelValues("any", "throttled").Inc()
		log.Info("BURL throttled", "user", user, "err", lerr)
		r := rep(451, 4, 7, 0, "Too many failed URL authorizations from your address, try again later")
		return &r
	}
	rc, err := s.Fetcher.FetchURL(ctx, u, user)
	if errors.Is(err, channel.ErrBadToken) || errors.Is(err, errRemoteNIL) {
		metricBURL.WithLabelValues("any", "badtoken").Inc()
		log.Info("BURL URL authorization failed: token does not verify", "user", user)
		att.Failed()
	} else {
		att.Abandon()
	}
	if err != nil {
		metricBURL.WithLabelValues("any", "error").Inc()
		log.Info("BURL refused", "user", user, "err", err)
		var r reply
		switch {
		case errors.Is(err, ErrURLUnavailable), errors.Is(err, context.DeadlineExceeded):
			r = rep(451, 4, 4, 1, "IMAP server unavailable")
		case errors.Is(err, ErrURLNotOurs):
			r = rep(554, 5, 7, 14, "URL resolution requires trust relationship")
		default:
			r = rep(554, 5, 6, 6, "IMAP URL resolution failed")
		}
		return &r
	}
	defer rc.Close()
	before := sp.size
	nr := &nulReader{r: rc}
	if _, err := io.Copy(sp, nr); err != nil {
		log.Info("BURL read", "user", user, "err", err)
		r := rep(451, 4, 4, 1, "IMAP server unavailable")
		return &r
	}
	if nr.nul && body != "BINARYMIME" {
		// Binary content in a message not declared BINARYMIME: it
		// could not be sent on unaltered (RFC 4468 s6).
		r := rep(554, 5, 6, 3, "Conversion required but not supported: the content of the URL is binary, use BODY=BINARYMIME")
		return &r
	}
	metricBURL.WithLabelValues("any", "ok").Inc()
	metricBURLBytes.Add(float64(sp.size - before))
	return nil
}

// ResolverFetcher fetches this appliance's own URLs in process through
// the channel resolver, as the submission entity acting for the user
// (submit+<user>, RFC 4468 s3.4): no IMAP connection, the part streams
// from the store.
type ResolverFetcher struct {
	R *channel.Resolver
}

// FetchURL implements URLFetcher.
func (f ResolverFetcher) FetchURL(ctx context.Context, u *channel.URL, user string) (io.ReadCloser, error) {
	res, err := f.R.Resolve(ctx, u, channel.Requester{User: user, Authenticated: true, Submit: true})
	if err != nil {
		switch {
		case errors.Is(err, channel.ErrNotOurs):
			return nil, ErrURLNotOurs
		case errors.Is(err, channel.ErrBadURL), errors.Is(err, channel.ErrNotPart), errors.Is(err, channel.ErrBadToken),
			errors.Is(err, channel.ErrExpired), errors.Is(err, channel.ErrNotPermitted), errors.Is(err, channel.ErrGone),
			errors.Is(err, channel.ErrMechanism):
			return nil, fmt.Errorf("%w: %w", ErrURLRefused, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrURLUnavailable, err)
	}
	rd, _, err := res.Content(res.Part)
	if err != nil {
		res.Close()
		return nil, fmt.Errorf("%w: %w", ErrURLUnavailable, err)
	}
	return &resolvedReader{Reader: rd, res: res}, nil
}

type resolvedReader struct {
	io.Reader
	res *channel.Resolved
}

func (r *resolvedReader) Close() error { return r.res.Close() }

// nulReader notes whether the content holds a NUL octet.
type nulReader struct {
	r   io.Reader
	nul bool
}

func (n *nulReader) Read(b []byte) (int, error) {
	k, err := n.r.Read(b)
	if !n.nul && bytes.IndexByte(b[:k], 0) >= 0 {
		n.nul = true
	}
	return k, err
}
