//go:build unix

package auth

import (
	"io/fs"
	"os"
	"syscall"
)

// copyOwner gives f the owner of old, best effort: it works when we are
// root (or already the owner) and is silently skipped otherwise.
func copyOwner(f *os.File, old fs.FileInfo) {
	if st, ok := old.Sys().(*syscall.Stat_t); ok {
		_ = f.Chown(int(st.Uid), int(st.Gid))
	}
}
