package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/admin"
)

// progressBar draws "[#####-----]  45%  12.3 MiB / 27.0 MiB" on a terminal,
// redrawn in place at most ten times a second; elsewhere (logs, pipes) it
// prints one line at the end.
type progressBar struct {
	w     io.Writer
	label string
	tty   bool
	last  time.Time
	start time.Time
}

func newProgress(w io.Writer, label string) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressBar{w: w, label: label, tty: tty, start: time.Now()}
}

func (p *progressBar) update(done, total int64) {
	if !p.tty || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw(done, total)
}

func (p *progressBar) draw(done, total int64) {
	const width = 30
	if total < done {
		total = done
	}
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%%  %s / %s ", p.label, strings.Repeat("#", n), strings.Repeat("-", width-n), frac*100, humanBytes(done), humanBytes(total))
}

func (p *progressBar) finish(done int64) {
	if p.tty {
		p.draw(done, done)
		fmt.Fprintln(p.w)
	}
	rate := float64(done) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "%s: %s in %.1f s (%s/s)\n", p.label, humanBytes(done), time.Since(p.start).Seconds(), humanBytes(int64(rate)))
}

func (c *cli) backup(args []string) error {
	pos, err := c.newFlags("backup").parse(args)
	if err != nil {
		return err
	}
	if err := want(pos, 1, "backup FILE"); err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	defer b.Close()
	tmp := pos[0] + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	bar := newProgress(c.stderr, "backup")
	n, err := b.Backup(bw, bar.update)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, pos[0]); err != nil {
		return err
	}
	bar.finish(n)
	fmt.Fprintf(c.stdout, "backup written to %s (%s)\n", pos[0], humanBytes(n))
	return nil
}

func (c *cli) restore(args []string) error {
	pos, err := c.newFlags("restore").parse(args)
	if err != nil {
		return err
	}
	if err := want(pos, 1, "restore FILE"); err != nil {
		return err
	}
	if ri, err := admin.ReadRunInfo(c.data); err == nil {
		return fmt.Errorf("a daemon (pid %d) runs on %s: stop it before restoring", ri.PID, c.data)
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return err
	}
	st, lock, err := openStore(c.data, true)
	if err != nil {
		return err
	}
	defer lock.Release()
	bar := newProgress(c.stderr, "restore")
	err = st.Restore(f, fi.Size(), bar.update)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	bar.finish(fi.Size())
	fmt.Fprintf(c.stdout, "restored %s into %s\n", pos[0], c.data)
	return nil
}
