package systemd_test

import (
	"io/fs"
	"strconv"
	"syscall"
)

func ownerUID(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return strconv.FormatUint(uint64(st.Uid), 10)
	}
	return "?"
}
