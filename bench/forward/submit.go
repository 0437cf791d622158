package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/smtp"
	"github.com/lemonvox/lemonvox/vmstore"
)

// startSubmission starts the appliance's submission server (smtp.Submission)
// with BURL of this appliance's URLs in process, through the resolver the
// IMAP server uses: both paths submit to it.
func startSubmission(st *vmstore.Store, res *channel.Resolver, logger *slog.Logger) (string, string, func(), error) {
	dir, err := os.MkdirTemp("", "lemonvox-bench-forward-spool-")
	if err != nil {
		return "", "", nil, err
	}
	// The client keeps its own Sent copy (APPEND, CATENATE): none here.
	sub := &smtp.Submission{Store: st, Hostname: domain, AllowInsecureAuth: true, SpoolDir: dir, SentMailbox: "-",
		Fetcher: smtp.Fetchers{Local: smtp.ResolverFetcher{R: res}},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil))}
	if logger.Enabled(context.Background(), slog.LevelDebug) {
		sub.Logger = logger
	}
	sub.Start()
	ln, err := sub.ListenAndServe("127.0.0.1:0")
	if err != nil {
		sub.Close()
		os.RemoveAll(dir)
		return "", "", nil, err
	}
	return ln.Addr().String(), "smtp.Submission with BURL (in-process resolver)", func() { sub.Close(); os.RemoveAll(dir) }, nil
}
