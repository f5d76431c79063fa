//go:build unix

package filelock

import (
	"os"
	"syscall"
)

// Lock holds an exclusive lock on the file at path, creating it, until
// unlock is called. The system drops it if the process dies, so a crashed
// process leaves no stale lock behind.
func Lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
