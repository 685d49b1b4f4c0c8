package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/qrlogin/qrlogin/server/login"
)

func openBatchDB(t *testing.T, sessions int) (*DB, []string) {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "batch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var ids []string
	for i := range sessions {
		s := benchSession("T", i)
		if err := db.CreateSession(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	return db, ids
}

// TestGroupCommitIsolatesFailures runs many concurrent updates, some of
// which fail or panic, so that they share commits: every successful one
// is saved exactly once, no failed one leaves a trace.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	db, ids := openBatchDB(t, 4)
	errFail := errors.New("refused")
	const n = 200
	var wg sync.WaitGroup
	results := make([]error, n)
	panics := make([]any, n)
	for i := range n {
		wg.Go(func() {
			defer func() { panics[i] = recover() }()
			_, results[i] = db.UpdateSession(t.Context(), ids[i%len(ids)], func(s *login.Session) error {
				switch i % 10 {
				case 3:
					s.Device.Name = "must not be saved"
					return errFail
				case 7:
					s.Device.Name = "must not be saved either"
					panic(fmt.Sprintf("panic %d", i))
				}
				s.Device.Name += "+"
				return nil
			})
		})
	}
	wg.Wait()
	want := map[string]int{}
	for i := range n {
		switch i % 10 {
		case 3:
			if !errors.Is(results[i], errFail) || panics[i] != nil {
				t.Errorf("update %d: err %v, panic %v; want its own error", i, results[i], panics[i])
			}
		case 7:
			if panics[i] != fmt.Sprintf("panic %d", i) {
				t.Errorf("update %d: panic %v, want it re-raised in the caller", i, panics[i])
			}
		default:
			if results[i] != nil || panics[i] != nil {
				t.Errorf("update %d: err %v, panic %v", i, results[i], panics[i])
			}
			want[ids[i%len(ids)]]++
		}
	}
	for _, id := range ids {
		s, err := db.Session(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(s.Device.Name) - len("Laptop"); got != want[id] {
			t.Errorf("session %s: %d updates saved (%q), want %d", id, got, s.Device.Name, want[id])
		}
	}
}

// TestLoneWriteRolledBack: a write that has nothing to share its commit
// with runs without a savepoint; when it fails or panics after changing
// rows, none of its changes stay, and the next write commits as usual.
func TestLoneWriteRolledBack(t *testing.T) {
	db, ids := openBatchDB(t, 1)
	rename := func(name string, then func() error) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE login_sessions SET device_name = ? WHERE id = ?`, name, ids[0]); err != nil {
				return err
			}
			return then()
		}
	}
	errFail := errors.New("refused")
	if err := db.batch.do(t.Context(), rename("failed", func() error { return errFail })); !errors.Is(err, errFail) {
		t.Fatalf("failing write: err %v, want its own", err)
	}
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("panicking write: panic %v, want it re-raised", p)
			}
		}()
		_ = db.batch.do(t.Context(), rename("panicked", func() error { panic("boom") }))
	}()
	if s, _ := db.Session(t.Context(), ids[0]); s.Device.Name != "Laptop" {
		t.Fatalf("name = %q: a failed lone write stayed", s.Device.Name)
	}
	if err := db.batch.do(t.Context(), rename("saved", func() error { return nil })); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Session(t.Context(), ids[0]); s.Device.Name != "saved" {
		t.Errorf("name = %q after a good write, want saved", s.Device.Name)
	}
}

func TestGroupCommitCancelledBeforeItsTurn(t *testing.T) {
	db, ids := openBatchDB(t, 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := db.UpdateSession(ctx, ids[0], func(s *login.Session) error {
		s.Device.Name = "must not be saved"
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if s, _ := db.Session(t.Context(), ids[0]); s.Device.Name != "Laptop" {
		t.Errorf("name = %q: a cancelled update was saved", s.Device.Name)
	}
}

// TestBatcherAfterClose: a write after Close fails at once instead of
// waiting forever (and Close may be called again, by the test cleanup).
func TestBatcherAfterClose(t *testing.T) {
	db, _ := openBatchDB(t, 0)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err := db.inTx(t.Context(), func(context.Context, *sql.Tx) error { return nil })
	if !errors.Is(err, errClosed) {
		t.Errorf("err = %v, want errClosed", err)
	}
}

// TestPointReadsDetached: a read of one row by its key does not follow
// its context's cancellation (see pointRead), so a held request that
// reads with its own context leaves nothing hanging on it.
func TestPointReadsDetached(t *testing.T) {
	db, ids := openBatchDB(t, 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := db.Session(ctx, ids[0]); err != nil {
		t.Errorf("session read with a cancelled context: %v", err)
	}
}
