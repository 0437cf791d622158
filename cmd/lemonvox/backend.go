package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lemonvox/lemonvox/admin"
	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore"
)

// backend is what the verbs need; it is the running daemon's API or, when
// none runs, the store opened directly.
type backend interface {
	AddUser(req admin.AccountRequest) error
	UpdateUser(name string, req admin.AccountRequest) error
	DelUser(name string) error
	Users() ([]admin.AccountView, error)
	Deposit(r io.Reader, o admin.DepositOptions) (*admin.DepositView, error)
	List(user, mailbox string) (*admin.MessageList, error)
	MWI(user string) (*admin.MWIView, error)
	Backup(w io.Writer, progress func(done, total int64)) (int64, error)
	Close() error
}

func (c *cli) backend() (backend, error) {
	ri, err := admin.ReadRunInfo(c.data)
	if err == nil {
		cl, err := admin.NewClient(ri)
		if err != nil {
			return nil, err
		}
		return &httpBackend{cl}, nil
	}
	if !errors.Is(err, admin.ErrNotRunning) {
		return nil, err
	}
	st, lock, err := openStore(c.data, false)
	if err != nil {
		return nil, err
	}
	return &storeBackend{st, lock}, nil
}

// openStore opens the data directory's store (no daemon runs on it),
// holding the data directory's lock so that no daemon starts on it
// meanwhile.
func openStore(data string, create bool) (*vmstore.Store, *admin.DataLock, error) {
	dir := filepath.Join(data, "store")
	if _, err := os.Stat(dir); err != nil && !create {
		return nil, nil, fmt.Errorf("no store in %s (start the appliance once, or pass -data): %w", data, os.ErrNotExist)
	}
	lock, err := admin.LockDataDir(data)
	if errors.Is(err, admin.ErrLocked) {
		return nil, nil, fmt.Errorf("%s is in use by another process (a daemon starting, or another lemonvox command)", data)
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := vmstore.Open(vmstore.Options{Dir: dir, GCInterval: -1, Prober: transcode.PartDuration})
	if err != nil {
		lock.Release()
		return nil, nil, err
	}
	return st, lock, nil
}

type httpBackend struct{ c *admin.Client }

func (h *httpBackend) AddUser(req admin.AccountRequest) error {
	_, err := h.c.CreateAccount(req)
	return err
}
func (h *httpBackend) UpdateUser(name string, req admin.AccountRequest) error {
	_, err := h.c.UpdateAccount(name, req)
	return err
}
func (h *httpBackend) DelUser(name string) error                     { return h.c.DeleteAccount(name) }
func (h *httpBackend) Users() ([]admin.AccountView, error)           { return h.c.Accounts() }
func (h *httpBackend) MWI(user string) (*admin.MWIView, error)       { return h.c.MWI(user) }
func (h *httpBackend) Close() error                                  { return nil }
func (h *httpBackend) List(u, mb string) (*admin.MessageList, error) { return h.c.Messages(u, mb) }
func (h *httpBackend) Deposit(r io.Reader, o admin.DepositOptions) (*admin.DepositView, error) {
	return h.c.Deposit(r, o)
}
func (h *httpBackend) Backup(w io.Writer, p func(done, total int64)) (int64, error) {
	return h.c.Backup(w, p)
}

type storeBackend struct {
	st   *vmstore.Store
	lock *admin.DataLock
}

func (s *storeBackend) AddUser(req admin.AccountRequest) error {
	spec := vmstore.AccountSpec{Name: req.Name, Password: deref(req.Password), PIN: deref(req.PIN)}
	if req.Quota != nil {
		spec.Quota = *req.Quota
	}
	_, err := s.st.CreateAccount(spec)
	return err
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *storeBackend) UpdateUser(name string, req admin.AccountRequest) error {
	if _, err := s.st.GetAccount(name); err != nil {
		return err
	}
	if req.Password != nil {
		if err := s.st.SetPassword(name, *req.Password); err != nil {
			return err
		}
	}
	if req.PIN != nil {
		return s.st.SetPIN(name, *req.PIN)
	}
	return nil
}

func (s *storeBackend) DelUser(name string) error { return s.st.DeleteAccount(name) }

func (s *storeBackend) Users() ([]admin.AccountView, error) {
	accts, err := s.st.ListAccounts()
	if err != nil {
		return nil, err
	}
	out := make([]admin.AccountView, 0, len(accts))
	for i := range accts {
		out = append(out, admin.AccountViewOf(s.st, &accts[i]))
	}
	return out, nil
}

func (s *storeBackend) Deposit(r io.Reader, o admin.DepositOptions) (*admin.DepositView, error) {
	res, err := admin.Deposit(s.st, transcode.SniffAudio, r, o)
	if err != nil {
		return nil, err
	}
	return admin.DepositViewOf(res), nil
}

func (s *storeBackend) List(user, mailbox string) (*admin.MessageList, error) {
	return admin.MessagesOf(s.st, user, mailbox)
}

func (s *storeBackend) MWI(user string) (*admin.MWIView, error) { return admin.MWIOf(s.st, user) }

func (s *storeBackend) Backup(w io.Writer, p func(done, total int64)) (int64, error) {
	return s.st.Backup(w, vmstore.Progress(p))
}

func (s *storeBackend) Close() error {
	err := s.st.Close()
	s.lock.Release()
	return err
}
