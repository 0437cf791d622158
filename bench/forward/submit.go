package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/deposit"
)

// startSubmission starts the submission server both paths submit to. This
// build has no BURL submission server: a DATA-only one delivers through
// the store's deposit path, and the CATENATE path is measured up to the
// authorized URL.
func startSubmission(st *vmstore.Store, _ *channel.Resolver, _ *slog.Logger) (string, string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &dataSession{st: st}, nil }))
	s.Domain = domain
	s.AllowInsecureAuth = true
	go s.Serve(ln)
	return ln.Addr().String(), "DATA-only submission (no BURL in this build)", func() { s.Close() }, nil
}

type dataSession struct {
	st    *vmstore.Store
	user  string
	rcpts []string
}

func (d *dataSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (d *dataSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if _, err := d.st.CheckPassword(user, pass); err != nil {
			return err
		}
		d.user = user
		return nil
	}), nil
}

func (d *dataSession) Mail(string, *smtp.MailOptions) error {
	if d.user == "" {
		return smtp.ErrAuthRequired
	}
	return nil
}

func (d *dataSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	u, _, _ := strings.Cut(to, "@")
	d.rcpts = append(d.rcpts, u)
	return nil
}

func (d *dataSession) Data(r io.Reader) error {
	res, err := deposit.DepositEach(d.st, d.rcpts, r, deposit.Options{AsMessage: true, Service: "smtp"})
	if err != nil {
		return err
	}
	for _, x := range res {
		if x.Err != nil {
			return errors.Join(err, x.Err)
		}
	}
	return nil
}

func (d *dataSession) Reset()        { d.rcpts = nil }
func (d *dataSession) Logout() error { return nil }
