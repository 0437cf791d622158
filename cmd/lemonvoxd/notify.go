package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/lemonvox/lemonvox/notify"
	"github.com/lemonvox/lemonvox/sipep"
	"github.com/lemonvox/lemonvox/vmstore"
)

// NotifyConfig configures the notification sinks ([notify] and
// [[notify.webhook]]).
type NotifyConfig struct {
	// DeadLetterDir holds undeliverable events; empty means <data>/notify.
	DeadLetterDir string `toml:"dead_letter_dir"`
	// MaxAttempts before an event is dead-lettered.
	MaxAttempts int `toml:"max_attempts"`
	// OmitSenderSubject keeps callers and subjects out of payloads.
	OmitSenderSubject bool            `toml:"omit_sender_subject"`
	Webhooks          []WebhookConfig `toml:"webhook"`
	VVM               struct {
		URL           string   `toml:"url"`
		Secrets       []string `toml:"secrets"`
		AppPort       int      `toml:"app_port"`
		AllowInsecure bool     `toml:"allow_insecure"`
		AllowPrivate  bool     `toml:"allow_private"`
	} `toml:"vvm"`
	NATS struct {
		URL    string `toml:"url"`
		Stream string `toml:"stream"`
		Prefix string `toml:"prefix"`
	} `toml:"nats"`
	Email struct {
		Smarthost       string `toml:"smarthost"`
		From            string `toml:"from"`
		Username        string `toml:"username"`
		Password        string `toml:"password"`
		StartTLS        bool   `toml:"starttls"`
		Attach          bool   `toml:"attach"`
		DeleteAfterSend bool   `toml:"delete_after_send"`
	} `toml:"email"`
	// URLAccess and URLLifetime make the webhooks' vnd.lemonvox.url
	// (urlauth.go); empty access leaves it out.
	URLAccess   string   `toml:"url_access"`
	URLLifetime duration `toml:"url_lifetime"`
}

// WebhookConfig is one webhook subscription.
type WebhookConfig struct {
	ID              string   `toml:"id"`
	URL             string   `toml:"url"`
	Secrets         []string `toml:"secrets"`
	Events          []string `toml:"events"`
	Accounts        []string `toml:"accounts"`
	HoldWhileOnline bool     `toml:"hold_while_online"`
	AllowInsecure   bool     `toml:"allow_insecure"`
	AllowPrivate    bool     `toml:"allow_private"`
	CAFile          string   `toml:"ca_file"`
}

// startNotify registers the SIP MWI notifier on the SIP endpoint (nil: no
// SIP) and starts the journal dispatcher with every configured sink; it
// returns the closers in start order and the dispatcher (nil without
// sinks).
func startNotify(cfg *Config, dir string, st *vmstore.Store, ep *sipep.Endpoint, log *slog.Logger) (closers []closer, _ *notify.Dispatcher, err error) {
	var sinks []notify.Sink
	payload := notify.PayloadBuilder{ServerName: cfg.Hostname, OmitSenderSubject: cfg.Notify.OmitSenderSubject}
	if payload.URLFor, err = notifyURLFor(cfg, st, log); err != nil {
		return closers, nil, err
	}
	if ep != nil {
		m := &notify.MWIServer{Store: st, Endpoint: ep, Logger: log.With("service", "sip"),
			MaxSubscriptions: cfg.SIP.MaxSubs, MaxSubsPerAccount: cfg.SIP.MaxSubsAccount, MaxSubsPerSource: cfg.SIP.MaxSubsSource,
			MinExpires: cfg.SIP.MinExpires.Duration, MaxExpires: cfg.SIP.MaxExpires.Duration}
		if err := m.Initialize(); err != nil {
			return closers, nil, fmt.Errorf("sip: %w", err)
		}
		closers = append(closers, closer{"sip mwi", func() error { m.Close(); return nil }})
		sinks = append(sinks, m)
	}
	pres := &notify.Presence{Store: st, Logger: log}
	if err := pres.Initialize(); err != nil {
		return closers, nil, err
	}
	closers = append(closers, closer{"presence", func() error { pres.Close(); return nil }})
	// Outband sinks honour the user's own filter (IMAP METADATA) and the
	// presence rule.
	hold := func(s notify.Sink) notify.Sink {
		return &notify.HoldWhileOnline{Sink: &notify.UserFilter{Sink: s, Store: st}, Presence: pres, Store: st}
	}
	for _, w := range cfg.Notify.Webhooks {
		ws := &notify.WebhookSink{ID: w.ID, URL: w.URL, Secrets: w.Secrets, Accounts: w.Accounts, Payload: payload,
			AllowInsecure: w.AllowInsecure, AllowPrivate: w.AllowPrivate, Logger: log}
		for _, e := range w.Events {
			ws.Events = append(ws.Events, vmstore.EventType(e))
		}
		if w.CAFile != "" {
			pem, err := os.ReadFile(w.CAFile)
			if err != nil {
				return closers, nil, err
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			ws.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		if err := ws.Initialize(); err != nil {
			return closers, nil, err
		}
		var s notify.Sink = &notify.UserFilter{Sink: ws, Store: st}
		if w.HoldWhileOnline {
			s = hold(ws)
		}
		sinks = append(sinks, s)
	}
	if v := cfg.Notify.VVM; v.URL != "" {
		vs := &notify.VVMSink{URL: v.URL, Secrets: v.Secrets, Store: st, AppPort: v.AppPort,
			AllowInsecure: v.AllowInsecure, AllowPrivate: v.AllowPrivate}
		if err := vs.Initialize(); err != nil {
			return closers, nil, err
		}
		sinks = append(sinks, hold(vs))
	}
	if e := cfg.Notify.Email; e.Smarthost != "" {
		es := &notify.EmailSink{Store: st, Smarthost: e.Smarthost, From: e.From, Username: e.Username, Password: e.Password,
			Attach: e.Attach, DeleteAfterSend: e.DeleteAfterSend, HostName: cfg.Hostname, Logger: log}
		if e.StartTLS {
			es.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if err := es.Initialize(); err != nil {
			return closers, nil, fmt.Errorf("email: %w", err)
		}
		sinks = append(sinks, hold(es))
	}
	if n := cfg.Notify.NATS; n.URL != "" {
		ns := &notify.NATSSink{ID: "nats", URL: n.URL, Stream: n.Stream, Prefix: n.Prefix, Payload: payload, Logger: log}
		if err := ns.Initialize(); err != nil {
			return closers, nil, fmt.Errorf("nats: %w", err)
		}
		closers = append(closers, closer{"nats", func() error { ns.Close(); return nil }})
		sinks = append(sinks, ns)
	}
	if len(sinks) == 0 {
		return closers, nil, nil
	}
	dl := cfg.Notify.DeadLetterDir
	if dl == "" {
		dl = filepath.Join(dir, "notify")
	}
	d := &notify.Dispatcher{Store: st, Sinks: sinks, DeadLetterDir: dl, MaxAttempts: cfg.Notify.MaxAttempts, Logger: log.With("service", "notify")}
	if err := d.Initialize(); err != nil {
		return closers, nil, err
	}
	closers = append(closers, closer{"notify", func() error { d.Close(); return nil }})
	log.Info("notifications running", "sinks", len(sinks))
	return closers, d, nil
}
