//go:build !unix

package imap

// waitForClient blocks until the client sends something, reading its first
// octet. It runs on a fresh goroutine (see run).
func (c *conn) waitForClient() error { return c.dec.Wait() }
