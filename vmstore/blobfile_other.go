//go:build !linux

package vmstore

import "os"

// fdatasync makes a file's content durable.
func fdatasync(f *os.File) error { return f.Sync() }
