package main

import (
	_ "embed"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/BurntSushi/toml"
)

//go:embed defaults.toml
var defaultConfig string

// Config is the appliance configuration (see defaults.toml for every key).
type Config struct {
	DataDir  string `toml:"data_dir"`
	Hostname string `toml:"hostname"`
	Log      struct {
		Level  string `toml:"level"`
		Format string `toml:"format"`
	} `toml:"log"`
	Store struct {
		MaxMessageSize int64    `toml:"max_message_size"`
		SweepInterval  duration `toml:"sweep_interval"`
		GCInterval     duration `toml:"gc_interval"`
		IndexMessages  int      `toml:"index_messages"`
	} `toml:"store"`
	TLS struct {
		Cert  string   `toml:"cert"`
		Key   string   `toml:"key"`
		Hosts []string `toml:"hosts"`
	} `toml:"tls"`
	IMAP struct {
		Listener
		AllowInsecureAuth bool     `toml:"allow_insecure_auth"`
		AppendLimit       int64    `toml:"append_limit"`
		IdleTimeout       duration `toml:"idle_timeout"`
		LiteralMinus      bool     `toml:"literal_minus"`
		MaxConnections    int      `toml:"max_connections"`
		MaxPerSource      int      `toml:"max_connections_per_source"`
		PreAuthTimeout    duration `toml:"preauth_timeout"`
		HandshakeTimeout  duration `toml:"tls_handshake_timeout"`
		// URLAUTH (urlauth.go).
		URLHost                 string              `toml:"url_host"`
		URLAliases              []string            `toml:"url_aliases"`
		URLRoles                map[string][]string `toml:"url_roles"`
		URLAnonymousMaxLifetime duration            `toml:"url_anonymous_max_lifetime"`
		AllowAnonymous          bool                `toml:"allow_anonymous"`
	} `toml:"imap"`
	LMTP       LMTPConfig       `toml:"lmtp"`
	Submission SubmissionConfig `toml:"submission"`
	RTSP       RTSPConfig       `toml:"rtsp"`
	Streaming  StreamingConfig  `toml:"streaming"`
	SIP        struct {
		Listen          string   `toml:"listen"`
		ListenTLS       string   `toml:"listen_tls"`
		Domain          string   `toml:"domain"`
		TrustedNetworks []string `toml:"trusted_networks"`
		MaxConnections  int      `toml:"max_connections"`
		MaxPerSource    int      `toml:"max_connections_per_source"`
		FirstMessage    duration `toml:"first_message_timeout"`
		IdleTimeout     duration `toml:"idle_timeout"`
		MaxSubs         int      `toml:"max_subscriptions"`
		MaxSubsAccount  int      `toml:"max_subscriptions_per_account"`
		MaxSubsSource   int      `toml:"max_subscriptions_per_source"`
		MaxRequestRate  float64  `toml:"max_requests_per_second_per_source"`
		MinExpires      duration `toml:"min_expires"`
		MaxExpires      duration `toml:"max_expires"`
		NonceLifetime   duration `toml:"nonce_lifetime"`
		MediaServer     bool     `toml:"media_server"`
		RequireSRTP     bool     `toml:"require_srtp"`
		SDESOverPlain   bool     `toml:"sdes_over_plain"`
		MaxCalls        int      `toml:"max_calls"`
		MaxCallsSource  int      `toml:"max_calls_per_source"`
		MediaAddress    string   `toml:"media_address"`
	} `toml:"sip"`
	Notify NotifyConfig `toml:"notify"`
	Auth   AuthConfig   `toml:"auth"`
	Limits struct {
		// FDReserve descriptors are kept out of the listeners' budget.
		FDReserve int `toml:"fd_reserve"`
		// ExemptNetworks are not limited per source address.
		ExemptNetworks []string `toml:"exempt_networks"`
	} `toml:"limits"`
	Admin struct {
		Listen string `toml:"listen"`
		TLS    bool   `toml:"tls"`
		Token  string `toml:"token"`
		// AllowPlaintext lets the admin API listen without TLS on an
		// address other than loopback (the bearer token then crosses
		// the network in clear).
		AllowPlaintext bool `toml:"allow_plaintext"`
	} `toml:"admin"`
	Demo struct {
		Enabled bool `toml:"enabled"`
	} `toml:"demo"`
	WHEP WHEPConfig `toml:"whep"`
}

// Listener is a service's addresses; empty disables it.
type Listener struct {
	Listen    string `toml:"listen"`
	ListenTLS string `toml:"listen_tls"`
}

type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v <= 0 {
		return fmt.Errorf("duration must be positive: %s", b)
	}
	d.Duration = v
	return nil
}

// loadConfig reads the embedded defaults, then path (if any) on top.
// Unknown keys in path are an error, so typos do not pass silently.
func loadConfig(path string) (*Config, error) {
	var c Config
	if _, err := toml.Decode(defaultConfig, &c); err != nil {
		return nil, fmt.Errorf("embedded defaults: %w", err)
	}
	if path == "" {
		return &c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown keys %v", path, und)
	}
	if err := c.checkSecrets(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// checkSecrets refuses a configuration that would carry a secret in clear
// over a network other than loopback without saying so.
func (c *Config) checkSecrets() error {
	if c.Admin.Listen != "" && !c.Admin.TLS && !c.Admin.AllowPlaintext && !loopbackListen(c.Admin.Listen) {
		return fmt.Errorf("admin.listen %q is not a loopback address and admin.tls is false: the admin token would cross the network in clear (set admin.tls = true, or admin.allow_plaintext = true to accept that)", c.Admin.Listen)
	}
	return nil
}

// loopbackListen reports whether a listen address binds only loopback
// ("localhost:N", "127.0.0.1:N", "[::1]:N"); an empty host binds every
// address.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// AuthConfig is the authentication limiter shared by IMAP, SIP digest and
// the admin API ([auth]).
type AuthConfig struct {
	TrustedNetworks []string `toml:"trusted_networks"`
	FreeFailures    int      `toml:"free_failures"`
	BaseDelay       duration `toml:"base_delay"`
	MaxDelay        duration `toml:"max_delay"`
	MaxQueue        int      `toml:"max_queue"`
	Forget          duration `toml:"forget"`
	MaxEntries      int      `toml:"max_entries"`
}
