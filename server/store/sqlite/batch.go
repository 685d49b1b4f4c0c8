package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// Group commit. Every write goes through the one write connection, so
// under load writers queue for it, and each of their transactions pays
// the fixed cost of BEGIN and COMMIT: locks, WAL frame headers, one write
// of every touched page. The batcher runs the transactions waiting at a
// given moment inside one SQLite transaction instead, each in a savepoint
// of its own: a failing one is rolled back to its savepoint and reports
// its error, the others commit together. Each caller returns only after
// the commit, so every state change is still atomic and durable before
// it is reported, and changes are still applied one at a time, in order.
// With no queue a batch is a single transaction, as before.

// maxBatch bounds how many transactions share one commit.
const maxBatch = 64

// errClosed is returned for writes submitted after Close.
var errClosed = errors.New("sqlite: database is closed")

type writeOp struct {
	ctx  context.Context
	fn   func(context.Context, *sql.Tx) error
	done chan writeResult
}

type writeResult struct {
	err      error
	panicked any // fn's panic, re-raised in the caller's goroutine
}

type batcher struct {
	db      *sql.DB
	ops     chan *writeOp
	stopped chan struct{}
	mu      sync.RWMutex // held to send on ops; written by close
	closed  bool
}

func newBatcher(db *sql.DB) *batcher {
	b := &batcher{db: db, ops: make(chan *writeOp), stopped: make(chan struct{})}
	go b.run()
	return b
}

// do runs fn in a savepoint of the next batch and returns its error.
func (b *batcher) do(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan writeResult, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errClosed
	}
	select {
	case b.ops <- op:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return fmt.Errorf("begin: %w", ctx.Err())
	}
	// Once handed over, the change may commit: wait for the outcome
	// whatever ctx does. An op whose ctx is done by its turn is skipped.
	r := <-op.done
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.err
}

// close stops the batcher after the batch under way.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.ops)
	}
	b.mu.Unlock()
	<-b.stopped
}

func (b *batcher) run() {
	defer close(b.stopped)
	batch := make([]*writeOp, 0, maxBatch)
	for op := range b.ops {
		batch = append(batch[:0], op)
	more:
		for len(batch) < maxBatch {
			select {
			case op, ok := <-b.ops:
				if !ok {
					break more
				}
				batch = append(batch, op)
			default:
				break more
			}
		}
		b.commit(batch)
	}
}

// commit runs batch in one transaction and reports each op's outcome.
func (b *batcher) commit(batch []*writeOp) {
	results := make([]writeResult, len(batch))
	report := func() {
		for i, op := range batch {
			op.done <- results[i]
		}
	}
	tx, err := b.db.BeginTx(context.Background(), nil)
	if err != nil {
		for i := range results {
			results[i].err = fmt.Errorf("begin: %w", err)
		}
		report()
		return
	}
	// A batch of one needs no savepoint: if it fails, the whole
	// transaction is rolled back, which saves two statements a write
	// when writes do not queue.
	alone := len(batch) == 1
	ok := 0
	for i, op := range batch {
		results[i] = runOp(tx, op, !alone)
		if results[i].err == nil && results[i].panicked == nil {
			ok++
		}
	}
	if ok == 0 {
		_ = tx.Rollback()
	} else if err := tx.Commit(); err != nil {
		for i := range results {
			if results[i].err == nil && results[i].panicked == nil {
				results[i].err = fmt.Errorf("commit: %w", err)
			}
		}
	}
	report()
}

// runOp runs op in tx: in a savepoint of its own when savepoint is set,
// rolled back to it if op fails or panics; otherwise the caller rolls the
// whole transaction back when op fails.
func runOp(tx *sql.Tx, op *writeOp, savepoint bool) (r writeResult) {
	if err := op.ctx.Err(); err != nil {
		return writeResult{err: fmt.Errorf("begin: %w", err)}
	}
	if savepoint {
		if _, err := tx.Exec(`SAVEPOINT op`); err != nil {
			return writeResult{err: fmt.Errorf("savepoint: %w", err)}
		}
	}
	defer func() {
		if p := recover(); p != nil {
			r = writeResult{panicked: p}
		}
		if !savepoint {
			return
		}
		if r.err != nil || r.panicked != nil {
			_, _ = tx.Exec(`ROLLBACK TO op`)
		}
		if _, err := tx.Exec(`RELEASE op`); err != nil && r.err == nil && r.panicked == nil {
			r.err = fmt.Errorf("release savepoint: %w", err)
		}
	}()
	// Not cancellable: see inTx.
	return writeResult{err: op.fn(context.WithoutCancel(op.ctx), tx)}
}
