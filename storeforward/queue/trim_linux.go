package queue

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// madvPageout is MADV_PAGEOUT (Linux 5.4): reclaim these pages. Unlike
// MADV_DONTNEED it never changes what the memory holds (on anonymous memory
// without swap it does nothing), so racing with Badger unmapping a table and
// something else being mapped at that address cannot corrupt anything.
const madvPageout = 21

// trimTables runs every TrimInterval: Badger memory-maps every table and
// reads and writes them through the mapping, so a queue of a million
// records would keep ~250 MiB of table pages in the process's RSS (file
// pages the kernel can reclaim, but cgroup limits and operators count
// them). Asking the kernel to page out the mapped .sst files keeps RSS to
// the tables actually in use; a page read again is faulted back in.
func (db *DB) trimTables(ctx context.Context) {
	db.every(ctx, db.opts.TrimInterval, func() { db.pageOutTables() })
}

// pageOutTables advises MADV_PAGEOUT on every mapping of a .sst file under
// the database directory, as listed in /proc/self/maps.
func (db *DB) pageOutTables() int {
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0
	}
	prefix := db.path + string(os.PathSeparator)
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// 7f12a000-7f12b000 r--s 00000000 fd:00 1234   /path/db/000001.sst
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasPrefix(f[5], prefix) || !strings.HasSuffix(f[5], ".sst") {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// Errors (EINVAL on an old kernel, ENOMEM if the table was unmapped
		// meanwhile) only mean nothing was trimmed.
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), madvPageout); e == 0 {
			n++
		}
	}
	return n
}
