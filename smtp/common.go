package smtp

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/lemonvox/lemonvox/netlimit"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/deposit"
)

// Reply is an SMTP reply with its RFC 3463 enhanced status code.
func Reply(code int, class, subject, detail int, msg string) *gosmtp.SMTPError {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: gosmtp.EnhancedCode{class, subject, detail}, Message: msg}
}

// Replies shared by the listeners (RFC 5321 s4.2, RFC 3463 codes).
var (
	// ErrUnknownUser: 550 5.1.1, no such mailbox.
	ErrUnknownUser = Reply(550, 5, 1, 1, "No such user here")
	// ErrBadMailbox: 501 5.1.3, a recipient address this server cannot
	// take apart.
	ErrBadMailbox = Reply(501, 5, 1, 3, "Bad recipient address syntax")
	// ErrMailboxFull: 452 4.2.2, the mailbox is full now; try later.
	ErrMailboxFull = Reply(452, 4, 2, 2, "Mailbox full")
	// ErrOverQuota: 552 5.2.2, the message does not fit in the quota.
	ErrOverQuota = Reply(552, 5, 2, 2, "Message exceeds the mailbox quota")
	// ErrTooBig: 552 5.3.4, the message exceeds the size limit.
	ErrTooBig = Reply(552, 5, 3, 4, "Message too big")
	// ErrContent: 554 5.6.0, the content cannot be stored as it is.
	ErrContent = Reply(554, 5, 6, 0, "Message content refused")
	// ErrTempFailure: 451 4.3.0, the store is not available; try later.
	ErrTempFailure = Reply(451, 4, 3, 0, "Temporary failure storing the message, try again later")
	// ErrTooManyRecipients: 452 4.5.3.
	ErrTooManyRecipients = Reply(452, 4, 5, 3, "Too many recipients")
	// ErrShuttingDown: 421 4.3.2.
	ErrShuttingDown = Reply(421, 4, 3, 2, "Service shutting down")
)

// StoreReply maps an error of the store or of vmstore/deposit to the
// reply a client gets for it (nil for nil).
func StoreReply(err error) *gosmtp.SMTPError {
	var se *gosmtp.SMTPError
	var qe *deposit.QuotaError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return se
	case errors.As(err, &qe):
		if qe.Full() {
			return ErrMailboxFull
		}
		return ErrOverQuota
	case errors.Is(err, vmstore.ErrOverQuota):
		return ErrMailboxFull
	case errors.Is(err, vmstore.ErrNotFound):
		return ErrUnknownUser
	case errors.Is(err, vmstore.ErrTooBig), errors.Is(err, gosmtp.ErrDataTooLarge):
		return ErrTooBig
	case errors.Is(err, vmstore.ErrInvalid), errors.Is(err, vmstore.ErrInvalidName),
		errors.Is(err, deposit.ErrUnsupportedMedia):
		return Reply(ErrContent.Code, 5, 6, 0, ErrContent.Message+": "+err.Error())
	case errors.Is(err, vmstore.ErrClosed):
		return ErrShuttingDown
	}
	return ErrTempFailure
}

// ListenConfig says where and how a listener listens.
type ListenConfig struct {
	// Name identifies the listener in metrics, /healthz and logs.
	Name string
	// Network is "tcp" (the default) or "unix"; Addr is host:port or a
	// socket path. A stale socket file is removed; a new socket gets
	// SocketMode (default 0660).
	Network, Addr string
	SocketMode    fs.FileMode
	// Connection limits (netlimit.Config).
	MaxConns, MaxPerSource     int
	FirstDeadline, IdleTimeout time.Duration
	Registry                   *netlimit.Registry
	Logger                     *slog.Logger
	// Reject writes the refusal to a connection beyond a limit (default:
	// 421 4.4.5).
	Reject func(net.Conn)
}

// Listen opens a listener with its limits.
func Listen(cfg ListenConfig) (*netlimit.Listener, error) {
	network := cfg.Network
	if network == "" {
		network = "tcp"
	}
	if network == "unix" {
		if fi, err := os.Lstat(cfg.Addr); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			// A socket left by a previous run: nobody answers on it.
			if c, err := net.Dial("unix", cfg.Addr); err == nil {
				c.Close()
				return nil, fmt.Errorf("smtp: %s: %s is in use", cfg.Name, cfg.Addr)
			}
			os.Remove(cfg.Addr)
		}
	}
	ln, err := net.Listen(network, cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp: %s: %w", cfg.Name, err)
	}
	if network == "unix" {
		mode := cfg.SocketMode
		if mode == 0 {
			mode = 0o660
		}
		if err := os.Chmod(cfg.Addr, mode); err != nil {
			ln.Close()
			return nil, fmt.Errorf("smtp: %s: %w", cfg.Name, err)
		}
	}
	reject := cfg.Reject
	if reject == nil {
		reject = func(c net.Conn) {
			fmt.Fprintf(c, "421 4.4.5 Too many connections, try again later\r\n")
		}
	}
	return netlimit.Wrap(ln, netlimit.Config{Name: cfg.Name, MaxConns: cfg.MaxConns, MaxPerSource: cfg.MaxPerSource,
		FirstDeadline: cfg.FirstDeadline, IdleTimeout: cfg.IdleTimeout, Reject: reject,
		Registry: cfg.Registry, Logger: cfg.Logger}), nil
}

// Activate marks a connection as past its first exchange (netlimit's first
// deadline no longer applies; its idle timeout does).
func Activate(c net.Conn) {
	if a, ok := c.(interface{ Activate() }); ok {
		a.Activate()
	}
}

var (
	metricDeliveries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_smtp_deliveries_total",
		Help: "Messages accepted for one recipient, by listener (lmtp, submission).",
	}, []string{"listener"})
	metricRefusals = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_smtp_refusals_total",
		Help: "Recipients or messages refused, by listener and reply code.",
	}, []string{"listener", "code"})
	metricBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "lemonvox_smtp_bytes_total",
		Help: "Message bytes received, by listener.",
	}, []string{"listener"})
)

// CountDelivery counts a message accepted for one recipient.
func CountDelivery(listener string) { metricDeliveries.WithLabelValues(listener).Inc() }

// CountRefusal counts a refusal with its reply code.
func CountRefusal(listener string, code int) {
	metricRefusals.WithLabelValues(listener, strconv.Itoa(code)).Inc()
}

// CountBytes counts message bytes received.
func CountBytes(listener string, n int64) { metricBytes.WithLabelValues(listener).Add(float64(n)) }

func fsMode(m uint32) fs.FileMode { return fs.FileMode(m) & fs.ModePerm }

// removeSocket removes a unix socket file (and nothing else).
func removeSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSocket == 0 {
		return err
	}
	return os.Remove(path)
}
