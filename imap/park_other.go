//go:build !unix

package imap

import "net"

// parkable: without a portable non-consuming wait, sessions keep their
// goroutine while they wait.
func (c *conn) parkable() *net.TCPConn { return nil }

func waitReadable(tcp *net.TCPConn) error { return nil }
