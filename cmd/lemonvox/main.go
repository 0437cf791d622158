// Command lemonvox administers a Lemonvox appliance. It talks to the running
// daemon through <data>/run/admin.json, or opens the store itself when no
// daemon runs on that data directory.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/lemonvox/lemonvox/admin"
	"github.com/lemonvox/lemonvox/vmstore"
)

const usage = `usage: lemonvox [-data DIR] <verb> [arguments]

Verbs:
  user add NAME --password P [--pin N] [--quota SIZE] [--max-messages N]
  user del NAME
  user list
  user passwd NAME [--password P] [--pin N]
  deposit USER FILE [--from ADDR] [--subject S] [--urgent] [--context voice|fax|video|multimedia|text] [--mailbox M] [--message]
  ls USER [MAILBOX]
  mwi USER
  queue list [USER]         submissions held for later (FUTURERELEASE) or waiting for the smarthost
  queue cancel ID
  backup FILE
  restore FILE              (daemon stopped, empty data directory)
  convert IN OUT [--codec pcmu|pcma|g722|g726|gsm|l16] [--rate HZ] [--container wav|au|raw]
                 [--in-codec C] [--in-rate HZ]   (headerless input; default by extension)
  probe FILE [--in-codec C] [--in-rate HZ]
  formats                   codecs, containers and rates convert reads and writes
  sample FILE [--seconds N] write a synthesized voice message (WAV) to try deposit with

Flags may come before or after the arguments. -data defaults to ./lemonvox-data.
SIZE takes a unit: 500K, 20M, 1G (bytes without one).
`

// exit codes
const (
	exitOK      = 0
	exitFail    = 1 // the operation failed
	exitUsage   = 2 // wrong invocation
	exitMissing = 3 // unknown user, mailbox, file
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type cli struct {
	stdout, stderr io.Writer
	data           string
}

// usageError is a wrong invocation.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, data: "./lemonvox-data"}
	if v := os.Getenv("LEMONVOX_DATA"); v != "" {
		c.data = v
	}
	// Global flags before the verb.
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := args[0]
		switch {
		case a == "-h" || a == "--help" || a == "-help":
			fmt.Fprint(stdout, usage)
			return exitOK
		case a == "-data" || a == "--data":
			if len(args) < 2 {
				fmt.Fprint(stderr, "lemonvox: -data needs a directory\n")
				return exitUsage
			}
			c.data, args = args[1], args[2:]
		case strings.HasPrefix(a, "-data=") || strings.HasPrefix(a, "--data="):
			c.data, args = a[strings.Index(a, "=")+1:], args[1:]
		default:
			fmt.Fprintf(stderr, "lemonvox: unknown flag %s\n%s", a, usage)
			return exitUsage
		}
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	err := c.dispatch(args[0], args[1:])
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "lemonvox:", err)
	var ue usageError
	var ae *admin.APIError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, vmstore.ErrNotFound), errors.Is(err, os.ErrNotExist):
		return exitMissing
	case errors.As(err, &ae) && ae.Status == 404:
		return exitMissing
	}
	return exitFail
}

// flags is a verb's flag set that also accepts -data and lets flags come
// after positional arguments.
type flags struct {
	fs *flag.FlagSet
	c  *cli
}

func (c *cli) newFlags(name string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.data, "data", c.data, "data directory")
	return &flags{fs: fs, c: c}
}

// parse returns the positional arguments, accepting flags anywhere.
func (f *flags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, usageError{fmt.Sprintf("%s: %v", f.fs.Name(), err)}
		}
		args = f.fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func want(pos []string, n int, what string) error {
	if len(pos) != n {
		return usageError{"usage: lemonvox " + what}
	}
	return nil
}

// withBackend parses args, checks the number of positional arguments
// (n < 0: any), opens the backend and runs fn.
func (f *flags) withBackend(args []string, n int, use string, fn func(pos []string, b backend) error) error {
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if n >= 0 {
		if err := want(pos, n, use); err != nil {
			return err
		}
	}
	b, err := f.c.backend()
	if err != nil {
		return err
	}
	defer b.Close()
	return fn(pos, b)
}

func (c *cli) dispatch(verb string, args []string) error {
	switch verb {
	case "user":
		if len(args) == 0 {
			return usageError{"usage: lemonvox user add|del|list|passwd ..."}
		}
		switch args[0] {
		case "add":
			return c.userAdd(args[1:])
		case "del", "delete", "rm":
			return c.userDel(args[1:])
		case "list", "ls":
			return c.userList(args[1:])
		case "passwd":
			return c.userPasswd(args[1:])
		}
		return usageError{"unknown user verb " + strconv.Quote(args[0])}
	case "deposit":
		return c.deposit(args)
	case "ls":
		return c.ls(args)
	case "mwi":
		return c.mwi(args)
	case "queue":
		return c.queue(args)
	case "backup":
		return c.backup(args)
	case "restore":
		return c.restore(args)
	case "convert":
		return c.convert(args)
	case "probe":
		return c.probe(args)
	case "formats":
		return c.formats(args)
	case "sample":
		return c.sample(args)
	case "help":
		fmt.Fprint(c.stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown verb %q (lemonvox help lists them)", verb)}
}

// parseSize reads 500K, 20M, 1G, 123 (bytes).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for suf, m := range map[string]int64{"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40} {
		for _, x := range []string{suf + "IB", suf + "B", suf} {
			if strings.HasSuffix(s, x) {
				s, mult = strings.TrimSuffix(s, x), m
				break
			}
		}
		if mult != 1 {
			break
		}
	}
	s = strings.TrimSuffix(s, "B")
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || n < 0 {
		return 0, usageError{fmt.Sprintf("bad size %q (use e.g. 500K, 20M, 1G)", s)}
	}
	return int64(n * float64(mult)), nil
}

func (c *cli) userAdd(args []string) error {
	f := c.newFlags("user add")
	pw := f.fs.String("password", "", "password")
	pin := f.fs.String("pin", "", "telephone PIN")
	quota := f.fs.String("quota", "", "storage quota")
	maxMsgs := f.fs.Int64("max-messages", 0, "message quota")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := want(pos, 1, "user add NAME --password P [--pin N] [--quota SIZE]"); err != nil {
		return err
	}
	if *pw == "" {
		return usageError{"user add: --password is required"}
	}
	name := vmstore.FoldUserName(pos[0])
	var ne *vmstore.NameError
	if err := vmstore.CheckUserName(name); errors.As(err, &ne) {
		return usageError{fmt.Sprintf("user add: bad account name %q: %s (see README, Accounts)", pos[0], ne.Reason)}
	}
	req := admin.AccountRequest{Name: name, Password: pw}
	if *pin != "" {
		req.PIN = pin
	}
	q := vmstore.Quota{Messages: *maxMsgs}
	if *quota != "" {
		if q.Bytes, err = parseSize(*quota); err != nil {
			return err
		}
	}
	req.Quota = &q
	b, err := c.backend()
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.AddUser(req); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "user %s created\n", name)
	return nil
}

func (c *cli) userDel(args []string) error {
	return c.newFlags("user del").withBackend(args, 1, "user del NAME", func(pos []string, b backend) error {
		if err := b.DelUser(pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "user %s deleted\n", pos[0])
		return nil
	})
}

func (c *cli) userList(args []string) error {
	return c.newFlags("user list").withBackend(args, 0, "user list", func(_ []string, b backend) error {
		accts, err := b.Users()
		if err != nil {
			return err
		}
		sort.Slice(accts, func(i, j int) bool { return accts[i].Name < accts[j].Name })
		fmt.Fprintf(c.stdout, "%-24s %8s %12s %12s\n", "NAME", "MESSAGES", "USED", "QUOTA")
		for _, a := range accts {
			q := "-"
			if a.Quota.Bytes > 0 {
				q = humanBytes(a.Quota.Bytes)
			}
			fmt.Fprintf(c.stdout, "%-24s %8d %12s %12s\n", a.Name, a.Usage.Messages, humanBytes(a.Usage.Bytes), q)
		}
		return nil
	})
}

func (c *cli) userPasswd(args []string) error {
	f := c.newFlags("user passwd")
	pw := f.fs.String("password", "", "new password")
	pin := f.fs.String("pin", "", "new telephone PIN")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := want(pos, 1, "user passwd NAME [--password P] [--pin N]"); err != nil {
		return err
	}
	if *pw == "" && *pin == "" {
		return usageError{"user passwd: give --password and/or --pin"}
	}
	req := admin.AccountRequest{}
	if *pw != "" {
		req.Password = pw
	}
	if *pin != "" {
		req.PIN = pin
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.UpdateUser(pos[0], req); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "user %s updated\n", pos[0])
	return nil
}

func (c *cli) deposit(args []string) error {
	f := c.newFlags("deposit")
	from := f.fs.String("from", "", "caller address")
	subject := f.fs.String("subject", "", "subject")
	urgent := f.fs.Bool("urgent", false, "mark urgent")
	ctx := f.fs.String("context", "", "message context")
	mailbox := f.fs.String("mailbox", "INBOX", "target mailbox")
	asMsg := f.fs.Bool("message", false, "FILE is a ready RFC 5322 message")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := want(pos, 2, "deposit USER FILE [--from ADDR] [--urgent] [--context voice|fax|video|multimedia]"); err != nil {
		return err
	}
	o := admin.DepositOptions{User: pos[0], Mailbox: *mailbox, From: *from, Subject: *subject, Urgent: *urgent, AsMessage: *asMsg, Service: "cli"}
	if *ctx != "" {
		if o.Context = vmstore.ParseContext(*ctx); o.Context == vmstore.ContextUnknown {
			return usageError{fmt.Sprintf("unknown context %q (voice, fax, video, multimedia, text)", *ctx)}
		}
	}
	file, err := os.Open(pos[1])
	if err != nil {
		return err
	}
	defer file.Close()
	if fi, err := file.Stat(); err == nil {
		if fi.Size() == 0 {
			return fmt.Errorf("%s is empty", pos[1])
		}
		if fi.Mode().IsRegular() {
			o.Size = fi.Size()
		}
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	defer b.Close()
	res, err := b.Deposit(file, o)
	if err != nil {
		return err
	}
	m := res.Message
	fmt.Fprintf(c.stdout, "deposited %s uid %d (%s, %s", res.Mailbox, m.UID, humanBytes(m.Size), orDash(string(m.Context)))
	if m.Duration > 0 {
		fmt.Fprintf(c.stdout, ", %.1f s", m.Duration)
	}
	fmt.Fprintln(c.stdout, ")")
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) ls(args []string) error {
	pos, err := c.newFlags("ls").parse(args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageError{"usage: lemonvox ls USER [MAILBOX]"}
	}
	mailbox := "INBOX"
	if len(pos) == 2 {
		mailbox = pos[1]
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	defer b.Close()
	l, err := b.List(pos[0], mailbox)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s: %d messages, %d unseen, uidvalidity %d\n", l.Mailbox.Name, l.Mailbox.Messages, l.Mailbox.Unseen, l.Mailbox.UIDValidity)
	if len(l.Messages) == 0 {
		return nil
	}
	fmt.Fprintf(c.stdout, "%6s  %-16s  %-18s %6s %9s  %-5s %-28s %s\n", "UID", "DATE", "CONTEXT", "SECS", "SIZE", "FLAGS", "FROM", "SUBJECT")
	for _, m := range l.Messages {
		fl := ""
		if !contains(m.Flags, vmstore.FlagSeen) {
			fl += "N"
		}
		if m.Urgent {
			fl += "!"
		}
		if contains(m.Flags, vmstore.FlagDeleted) {
			fl += "D"
		}
		if contains(m.Flags, vmstore.FlagFlagged) {
			fl += "F"
		}
		fmt.Fprintf(c.stdout, "%6d  %-16s  %-18s %6.1f %9s  %-5s %-28s %s\n", m.UID, m.InternalDate.Local().Format("2006-01-02 15:04"),
			orDash(string(m.Context)), m.Duration, humanBytes(m.Size), orDash(fl), clip(m.From, 28), m.Subject)
	}
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func (c *cli) mwi(args []string) error {
	return c.newFlags("mwi").withBackend(args, 1, "mwi USER", func(pos []string, b backend) error {
		v, err := b.MWI(pos[0])
		if err != nil {
			return err
		}
		yn := "no"
		if v.MessagesWaiting {
			yn = "yes"
		}
		fmt.Fprintf(c.stdout, "Messages-Waiting: %s\n", yn)
		for _, ctx := range vmstore.Contexts {
			n, ok := v.Counts[ctx]
			if !ok && ctx != vmstore.ContextVoice {
				continue
			}
			fmt.Fprintf(c.stdout, "%-20s %d/%d (%d/%d)\n", string(ctx)+":", n.New, n.Old, n.UrgentNew, n.UrgentOld)
		}
		return nil
	})
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
