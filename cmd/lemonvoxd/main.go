// Command lemonvoxd is the Lemonvox appliance daemon: it opens the store and
// starts every configured service, on loopback defaults that run at once.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lemonvox/lemonvox/admin"
	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/imap"
	"github.com/lemonvox/lemonvox/netlimit"
	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("lemonvoxd", flag.ContinueOnError)
	configPath := fs.String("config", "", "TOML configuration `file` (keys override the embedded defaults)")
	dataDir := fs.String("data", "", "data `directory` (overrides data_dir)")
	printDefaults := fs.Bool("print-config", false, "print the default configuration and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *printDefaults {
		fmt.Print(defaultConfig)
		return 0
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lemonvoxd: config:", err)
		return 2
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	log := newLogger(cfg.Log.Level, cfg.Log.Format)
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("lemonvoxd stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// closer is a started service; they are closed in reverse order.
type closer struct {
	name string
	fn   func() error
}

func serve(ctx context.Context, cfg *Config, log *slog.Logger) (err error) {
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	// Nothing is created before the data directory is known to be free and
	// every listener's address to be available.
	lock, err := lockExisting(dir)
	if err != nil {
		return err
	}
	if err := checkListeners(cfg); err != nil {
		lock.Release()
		return err
	}
	if lock == nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if lock, err = lockExisting(dir); err != nil {
			return err
		}
	}
	defer lock.Release()
	// A run file left by a daemon that died is stale: this process holds
	// the lock now.
	admin.RemoveRunInfo(dir)
	var closers []closer
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i].fn(); err != nil {
				log.Warn("stopping "+closers[i].name, "err", err)
			}
		}
		if err == nil {
			log.Info("lemonvoxd stopped cleanly")
		}
	}()

	cert, err := loadOrCreateCert(cfg.TLS.Cert, cfg.TLS.Key, dir, cfg.TLS.Hosts)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}

	st, err := vmstore.Open(vmstore.Options{
		Dir:            filepath.Join(dir, "store"),
		Logger:         log,
		MaxMessageSize: cfg.Store.MaxMessageSize,
		Prober:         transcode.PartDuration,
		GCInterval:     cfg.Store.GCInterval.Duration,
		IndexMessages:  cfg.Store.IndexMessages,
	})
	if err != nil {
		return err
	}
	closers = append(closers, closer{"store", st.Close})
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	sweepDone := make(chan struct{})
	go func() { defer close(sweepDone); st.RunSweeper(sweepCtx, cfg.Store.SweepInterval.Duration) }()
	closers = append(closers, closer{"retention sweeper", func() error { stopSweep(); <-sweepDone; return nil }})

	if err := firstStart(dir, cfg, st, log); err != nil {
		return err
	}

	authLim, err := newAuthLimiter(cfg.Auth)
	if err != nil {
		return err
	}
	listeners, exempt, err := connLimits(cfg, log)
	if err != nil {
		return err
	}
	sipEP, err := newSIPEndpoint(cfg, tlsConfig, authLim, listeners, log)
	if err != nil {
		return err
	}
	closers = append(closers, sipCloser(sipEP))
	nc, disp, err := startNotify(cfg, dir, st, sipEP, log)
	closers = append(closers, nc...)
	if err != nil {
		return err
	}
	token, err := adminToken(dir, cfg.Admin.Token)
	if err != nil {
		return err
	}
	reg := prometheus.DefaultRegisterer
	admin.RegisterStoreMetrics(reg, st)
	adm := &admin.Server{Store: st, Listen: cfg.Admin.Listen, Token: token, Logger: log, Probe: transcode.SniffAudio,
		AuthLimiter: authLim, Listeners: listeners}
	if disp != nil {
		adm.Notify = disp
	}
	if cfg.Admin.TLS {
		adm.TLS = tlsConfig
	}
	pc, pb, err := startPlayback(cfg, st, tlsConfig, authLim, listeners, log)
	if closers = append(closers, pc...); err != nil {
		return err
	}
	if err := startWHEP(cfg, st, pb, adm, &closers, log); err != nil {
		return err
	}
	if cfg.Admin.Listen != "" {
		if err := adm.Initialize(); err != nil {
			return err
		}
		closers = append(closers, closer{"admin", adm.Close})
		ri := admin.RunInfo{URL: adm.URL(), Token: token, PID: os.Getpid(), Started: time.Now().UTC()}
		if cfg.Admin.TLS {
			ri.CAFile = filepath.Join(dir, "tls", "cert.pem")
		}
		if err := admin.WriteRunInfo(dir, ri); err != nil {
			return err
		}
		closers = append(closers, closer{"run info", func() error { admin.RemoveRunInfo(dir); return nil }})
	}
	urlRes, err := newURLResolver(cfg, st)
	if err != nil {
		return err
	}
	mc, err := startMediaServer(cfg, st, sipEP, pb, urlRes, log)
	closers = append(closers, mc...)
	if err != nil {
		return err
	}
	if err := startSIPEndpoint(sipEP); err != nil {
		return err
	}
	if cfg.IMAP.Listen != "" || cfg.IMAP.ListenTLS != "" {
		srv := &imap.Server{Channel: pb.channelService(), Store: st, URLResolver: urlRes, AllowAnonymous: cfg.IMAP.AllowAnonymous, Addr: cfg.IMAP.Listen, TLSAddr: cfg.IMAP.ListenTLS, TLSConfig: tlsConfig,
			Logger: log.With("service", "imap"), Hostname: cfg.Hostname, AllowInsecureAuth: cfg.IMAP.AllowInsecureAuth,
			AppendLimit: cfg.IMAP.AppendLimit, IdleTimeout: cfg.IMAP.IdleTimeout.Duration, LiteralMinus: cfg.IMAP.LiteralMinus,
			AuthLimiter: authLim, Listeners: listeners, MaxConns: cfg.IMAP.MaxConnections, MaxConnsPerSource: cfg.IMAP.MaxPerSource,
			LimitExempt: exempt, PreAuthTimeout: cfg.IMAP.PreAuthTimeout.Duration, HandshakeTimeout: cfg.IMAP.HandshakeTimeout.Duration,
			SpoolDir: filepath.Join(dir, "spool")} // cleared at start
		if err := srv.Initialize(); err != nil {
			return fmt.Errorf("imap: %w", err)
		}
		closers = append(closers, closer{"imap", func() error { srv.Close(); return nil }})
	}
	lc, err := startLMTP(cfg, dir, st, listeners, log)
	closers = append(closers, lc...)
	if err != nil {
		return err
	}
	if cfg.Submission.Listen != "" || cfg.Submission.ListenTLS != "" {
		sc, err := startSubmission(cfg, dir, st, tlsConfig, authLim, urlRes, listeners, log)
		if err != nil {
			return err
		}
		closers = append(closers, sc)
	}
	log.Info("lemonvoxd running", "data", dir, "admin", adm.URL())
	<-ctx.Done()
	log.Info("lemonvoxd stopping")
	return nil
}

// adminToken returns the configured token or the one kept in the data
// directory, generated on first start.
func adminToken(dir, configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	p := filepath.Join(dir, "admin.token")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var rb [32]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(rb[:])
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}

// firstStart creates the demo subscriber on the first start of an empty
// store. The mark that the first start happened lives in the store (and so
// in its backups): a restored store, or any store that holds accounts, never
// gets the demo subscriber and its well-known password.
func firstStart(dir string, cfg *Config, st *vmstore.Store, log *slog.Logger) error {
	done, err := st.Initialized()
	if err != nil || done {
		return err
	}
	// Data directories of earlier releases kept the mark in a file.
	if _, err := os.Stat(filepath.Join(dir, "initialized")); err == nil {
		return st.MarkInitialized()
	}
	has, err := st.HasAccounts()
	if err != nil {
		return err
	}
	switch {
	case has:
		log.Info("the store holds accounts: no demo subscriber created")
	case cfg.Demo.Enabled:
		if err := createDemo(st); err != nil {
			return fmt.Errorf("demo subscriber: %w", err)
		}
		log.Info("created demo subscriber", "user", "demo", "password", "demo", "pin", "1234")
	}
	return st.MarkInitialized()
}

// newAuthLimiter builds the one authentication limiter of the daemon.
func newAuthLimiter(c AuthConfig) (*authlimit.Limiter, error) {
	trusted, err := parsePrefixes("auth.trusted_networks", c.TrustedNetworks)
	if err != nil {
		return nil, err
	}
	free := c.FreeFailures
	if free == 0 {
		free = -1 // zero in the file means no free failures
	}
	return authlimit.New(authlimit.Config{FreeFailures: free, BaseDelay: c.BaseDelay.Duration, MaxDelay: c.MaxDelay.Duration,
		MaxQueue: c.MaxQueue, Forget: c.Forget.Duration, MaxEntries: c.MaxEntries, Trusted: trusted}), nil
}

func parsePrefixes(key string, l []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, n := range l {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// connLimits raises the descriptor limit and sizes the listeners' shared
// budget from it, keeping [limits] fd_reserve (0: a tenth, at least 256)
// for the store, /healthz, the admin API and outgoing connections.
func connLimits(cfg *Config, log *slog.Logger) (*netlimit.Registry, []netip.Prefix, error) {
	exempt, err := parsePrefixes("limits.exempt_networks", cfg.Limits.ExemptNetworks)
	if err != nil {
		return nil, nil, err
	}
	reg := &netlimit.Registry{}
	nofile, err := raiseNoFile()
	if err != nil || nofile == 0 {
		log.Warn("descriptor limit unknown; listeners have no shared budget", "err", err)
		return reg, exempt, nil
	}
	reserve := uint64(cfg.Limits.FDReserve)
	if reserve == 0 {
		reserve = max(256, nofile/10)
	}
	if nofile <= reserve+64 {
		return nil, nil, fmt.Errorf("descriptor limit %d leaves nothing beyond limits.fd_reserve %d; raise RLIMIT_NOFILE (ulimit -n)", nofile, reserve)
	}
	if nofile < 1<<31 {
		reg.MaxOpen = int(nofile - reserve)
	}
	log.Info("connection budget", "nofile", nofile, "reserve", reserve, "connections", reg.MaxOpen)
	return reg, exempt, nil
}
