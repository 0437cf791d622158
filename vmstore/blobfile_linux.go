package vmstore

import (
	"errors"
	"os"
	"syscall"
)

// fdatasync makes a file's content durable (and its size: the file grew).
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
