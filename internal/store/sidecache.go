package store

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/pushcert/pushcert/internal/alert"
	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/delivery"
)

// The status page also shows the last connection check, the delivery
// targets' records and the last alert sent. They are kept by the status cache's rule (see
// statusCache): an answer read when the WAL-index header was mark is given
// again while the header and this DB's write counter are unchanged, so a
// write by anyone, in any process, is seen at the next read.

// sideEntry is one kept answer.
type sideEntry[T any] struct {
	mark   walMark
	writes uint64
	v      T
}

// sideCaches are the kept answers of the reads other than the status.
type sideCaches struct {
	apnsCheck  atomic.Pointer[sideEntry[apns.Record]]
	deliveries atomic.Pointer[sideEntry[[]delivery.Record]]
	lastAlert  atomic.Pointer[sideEntry[*alert.Sent]]
}

// cachedRead answers from slot while the database is unchanged since it
// was filled, and otherwise reads and fills it. Without a status cache
// (PostgreSQL, or SQLite where it is off) it always reads.
func cachedRead[T any](ctx context.Context, db *DB, slot *atomic.Pointer[sideEntry[T]], read func(context.Context) (T, error)) (T, error) {
	c := db.cache
	if c == nil {
		return read(ctx)
	}
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, err
	}
	// Read before the database, as latest does: a write committed after
	// this point makes the next call read again.
	writes := c.writes.Load()
	mark, ok := c.mark()
	if e := slot.Load(); ok && e != nil && e.mark == mark && e.writes == writes {
		return e.v, nil
	}
	v, err := read(ctx)
	if err == nil && ok {
		slot.Store(&sideEntry[T]{mark: mark, writes: writes, v: v})
	}
	return v, err
}

// cloneRecords keeps a kept slice from being changed by a caller.
func cloneRecords(r []delivery.Record) []delivery.Record { return slices.Clone(r) }
