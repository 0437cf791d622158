package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// WebhookSink posts RFC 5423 events as signed Standard Webhooks to one URL.
// Plug it into a Dispatcher.
type WebhookSink struct {
	// ID names the subscription (the dispatcher's sink name). Required.
	ID string
	// URL receives POSTs. https is expected; http only with AllowInsecure.
	URL string
	// Secrets are "whsec_<base64>" keys; every one signs (rotation). Required.
	Secrets []string
	// Events filters by RFC 5423 event type; empty means all.
	Events []vmstore.EventType
	// Accounts filters by account; empty means all.
	Accounts []string
	// Payload builds the JSON; its ServerName is required.
	Payload PayloadBuilder
	// TLSConfig for HTTPS (RootCAs for a private CA). nil means system roots.
	// Certificates are always verified.
	TLSConfig *tls.Config
	// AllowInsecure permits http:// URLs.
	AllowInsecure bool
	// AllowPrivate permits loopback, link-local and unspecified destination
	// addresses (off by default: SSRF guard).
	AllowPrivate bool
	// Timeout bounds one request; 0 means 15 s.
	Timeout time.Duration
	// Logger; nil means slog.Default.
	Logger *slog.Logger

	keys    [][]byte
	client  *http.Client
	events  map[vmstore.EventType]bool
	account map[string]bool
	idTag   string
}

// Initialize validates the configuration and builds the HTTP client.
func (w *WebhookSink) Initialize() error {
	if !sinkNameRE.MatchString(w.ID) {
		return fmt.Errorf("%w: webhook id %q", ErrConfig, w.ID)
	}
	u, err := url.Parse(w.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: webhook %s: url %q", ErrConfig, w.ID, w.URL)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && w.AllowInsecure) {
		return fmt.Errorf("%w: webhook %s: url must be https", ErrConfig, w.ID)
	}
	if w.Payload.ServerName == "" {
		return fmt.Errorf("%w: webhook %s: Payload.ServerName is empty", ErrConfig, w.ID)
	}
	if len(w.Secrets) == 0 {
		return fmt.Errorf("%w: webhook %s: no secret", ErrConfig, w.ID)
	}
	w.keys = nil
	for _, s := range w.Secrets {
		k, err := DecodeSecret(s)
		if err != nil {
			return err
		}
		w.keys = append(w.keys, k)
	}
	if w.Timeout <= 0 {
		w.Timeout = 15 * time.Second
	}
	w.client = newHTTPClient(w.TLSConfig, w.AllowPrivate, w.Timeout)
	w.events = map[vmstore.EventType]bool{}
	for _, e := range w.Events {
		w.events[e] = true
	}
	w.account = map[string]bool{}
	for _, a := range w.Accounts {
		w.account[a] = true
	}
	h := fnv.New32a()
	h.Write([]byte(w.ID))
	w.idTag = strconv.FormatUint(uint64(h.Sum32()), 36)
	return nil
}

// Name implements Sink.
func (w *WebhookSink) Name() string { return w.ID }

// Accept implements Sink: event-type and account filters.
func (w *WebhookSink) Accept(ev *vmstore.Event) bool {
	if len(w.events) > 0 && !w.events[ev.Type] {
		return false
	}
	if len(w.account) > 0 && !w.account[ev.User] {
		return false
	}
	return true
}

// MessageID is the webhook-id of an event for this sink: stable across
// retries and restarts, and carrying the journal seq so that receivers can
// dedupe and operators can match dead letters.
func (w *WebhookSink) MessageID(ev *vmstore.Event) string {
	return "evt_" + strconv.FormatUint(ev.Seq, 10) + "_" + w.idTag
}

// Deliver implements Sink.
func (w *WebhookSink) Deliver(ctx context.Context, ev *vmstore.Event, attempt int) error {
	body, err := w.Payload.Build(ev)
	if err != nil {
		return Permanent(fmt.Errorf("notify: building payload: %w", err))
	}
	return postSigned(ctx, w.client, w.URL, w.keys, w.MessageID(ev), body)
}

// newHTTPClient is an HTTP client that verifies certificates, never follows
// redirects (3xx is a failure, Standard Webhooks) and, unless allowPrivate,
// refuses to connect to loopback/link-local/unspecified addresses (checked
// on the resolved address, so DNS cannot smuggle them in).
func newHTTPClient(tlsConf *tls.Config, allowPrivate bool, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			a := ap.Addr().Unmap()
			if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() || a.IsMulticast() {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			return nil
		}
	}
	var tc *tls.Config
	if tlsConf != nil {
		tc = tlsConf.Clone()
		tc.InsecureSkipVerify = false
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// postSigned POSTs body with Standard Webhooks headers; the timestamp is
// that of this attempt, so each retry is signed afresh (notes s6.4).
func postSigned(ctx context.Context, c *http.Client, u string, keys [][]byte, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return Permanent(err)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lemonvox-notify")
	req.Header.Set(HeaderWebhookID, id)
	req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderWebhookSignature, SignatureHeader(keys, id, ts, body))
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, ErrForbiddenAddress) {
			return Permanent(err)
		}
		return fmt.Errorf("%w: %v", ErrDelivery, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusGone:
		return fmt.Errorf("%w: HTTP 410 from %s", ErrSinkDisabled, u)
	case slices.Contains([]int{429, 502, 503, 504}, code):
		err := fmt.Errorf("%w: HTTP %d", ErrDelivery, code)
		if ra := parseRetryAfter(resp.Header.Get("Retry-After")); ra > 0 {
			return &RetryAfterError{Err: err, After: ra}
		}
		return err
	default:
		return fmt.Errorf("%w: HTTP %d", ErrDelivery, code)
	}
}

func parseRetryAfter(s string) time.Duration {
	if s == "" {
		return 0
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(s); err == nil {
		return time.Until(t)
	}
	return 0
}
