//go:build !linux

package queue

import "context"

// trimTables: paging out mapped tables is Linux-only (MADV_PAGEOUT).
func (db *DB) trimTables(ctx context.Context) {
	defer db.wg.Done()
	<-ctx.Done()
}

func (db *DB) pageOutTables() int { return 0 }
