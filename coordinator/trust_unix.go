//go:build unix

package coordinator

import (
	"fmt"
	"os"
	"syscall"
)

// private checks that path, a state directory or a secret in one, is this
// user's alone: a directory others can write to lets them swap the queue's
// store, key or certificate; a key others can read lets them join the run.
// It says how to fix what it refuses.
func private(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s belongs to user %d, not to us (%d): use a state directory of our own", path, st.Uid, os.Getuid())
	}
	switch mode := fi.Mode().Perm(); {
	case fi.IsDir() && mode&0o022 != 0:
		return fmt.Errorf("%s is writable by other users (mode %s): fix it with chmod go-w %s, or use another state directory", path, mode, path)
	case !fi.IsDir() && mode&0o077 != 0:
		return fmt.Errorf("%s is readable by other users (mode %s): fix it with chmod 600 %s", path, mode, path)
	}
	return nil
}
