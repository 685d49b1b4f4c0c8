package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
)

var benchSizes = []int{1_000, 10_000, 100_000}

var benchNow = time.Date(2026, time.March, 14, 9, 0, 0, 0, time.UTC)

// benchSession is the i-th seeded session: live, expiring after benchNow.
func benchSession(prefix string, i int) login.Session {
	const alphabet = "BCDFGHJKLMNPQRSTVWXZ"
	code := make([]byte, 8)
	for j, n := len(code)-1, i; j >= 0; j-- {
		code[j] = alphabet[n%len(alphabet)]
		n /= len(alphabet)
	}
	id := fmt.Sprintf("%s-%08d", prefix, i)
	return login.Session{
		ID:            id,
		PollTokenHash: []byte("poll-token-hash-of-" + id),
		UserCode:      prefix[:1] + string(code[1:]),
		Status:        login.Pending,
		Device:        login.Device{Name: "Laptop", Platform: "linux", AppName: "qrlogin-desktop", IP: "192.0.2.7", UserAgent: "qrlogin/1.0"},
		CreatedAt:     benchNow,
		ExpiresAt:     benchNow.Add(2 * time.Minute),
	}
}

// insertSessions stores sessions in one transaction, so seeding 100k rows
// takes a second rather than a commit per row.
func insertSessions(b *testing.B, db *DB, sessions []login.Session) {
	b.Helper()
	err := db.inTx(b.Context(), func(ctx context.Context, tx *sql.Tx) error {
		st, err := tx.PrepareContext(b.Context(), insertSession)
		if err != nil {
			return err
		}
		defer st.Close()
		for i := range sessions {
			if _, err := st.ExecContext(b.Context(), append([]any{sessions[i].ID}, sessionArgs(&sessions[i])...)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seed: %v", err)
	}
}

// seededDB is a fresh database holding n live sessions, and their ids.
func seededDB(b *testing.B, n int) (*DB, []string) {
	b.Helper()
	db, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	sessions := make([]login.Session, n)
	ids := make([]string, n)
	for i := range sessions {
		sessions[i] = benchSession("B", i)
		ids[i] = sessions[i].ID
	}
	insertSessions(b, db, sessions)
	return db, ids
}

func BenchmarkSessionLookup(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			db, ids := seededDB(b, n)
			i := 0
			for b.Loop() {
				if _, err := db.Session(b.Context(), ids[i%n]); err != nil {
					b.Fatal(err)
				}
				i += 7919 // a prime stride, so lookups jump around the table
			}
		})
	}
}

func BenchmarkUpdateSession(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			db, ids := seededDB(b, n)
			i := 0
			for b.Loop() {
				_, err := db.UpdateSession(b.Context(), ids[i%n], func(s *login.Session) error {
					s.UserDisplayName = ids[i%n]
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				i += 7919
			}
		})
	}
}

// BenchmarkDeleteEndedSessions sweeps 10 ended sessions out of n live ones;
// the cost should follow the 10, not n.
func BenchmarkDeleteEndedSessions(b *testing.B) {
	const ended = 10
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			db, _ := seededDB(b, n)
			batch := make([]login.Session, ended)
			round := 0
			for b.Loop() {
				b.StopTimer()
				for i := range batch {
					s := benchSession("E", round*ended+i)
					s.Status, s.EndedAt = login.Cancelled, benchNow.Add(-time.Hour)
					batch[i] = s
				}
				insertSessions(b, db, batch)
				round++
				b.StartTimer()

				got, err := db.DeleteEndedSessions(b.Context(), benchNow)
				if err != nil {
					b.Fatal(err)
				}
				if got != ended {
					b.Fatalf("swept %d sessions, want %d", got, ended)
				}
			}
		})
	}
}

// BenchmarkCreateSession inserts new sessions into a table of n; every
// insert touches the table and its three indexes (id, user code,
// ended_by), each a B-tree of depth log n.
func BenchmarkCreateSession(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			db, _ := seededDB(b, n)
			i := 0
			for b.Loop() {
				s := benchSession("N", n+i) // codes beyond the seeded ones
				s.ID = fmt.Sprintf("new-%08d", i)
				if err := db.CreateSession(b.Context(), s); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkSessionByUserCode looks sessions up by the code typed on a
// phone, through the user_code index.
func BenchmarkSessionByUserCode(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			db, _ := seededDB(b, n)
			i := 0
			for b.Loop() {
				code := benchSession("B", i%n).UserCode
				if _, err := db.SessionByUserCode(b.Context(), code); err != nil {
					b.Fatal(err)
				}
				i += 7919
			}
		})
	}
}

// BenchmarkDeliverSession is the delivery transaction: a confirmed
// session becomes consumed and a refresh token is stored with it.
func BenchmarkDeliverSession(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			db, ids := seededDB(b, n)
			ctx := b.Context()
			if err := db.CreateUser(ctx, store.User{ID: "u1", Username: "alice", DisplayName: "Alice", PasswordHash: "x", CreatedAt: benchNow}); err != nil {
				b.Fatal(err)
			}
			// Confirm every session in one transaction (again after n
			// deliveries), so the loop measures only deliveries.
			confirmAll := func() {
				err := db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, `UPDATE login_sessions SET status = 'confirmed', user_id = 'u1',
						user_display_name = 'Alice', scanned_at = created_at, ended_at = NULL`)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			confirmAll()
			i := 0
			for b.Loop() {
				if i > 0 && i%n == 0 {
					b.StopTimer()
					confirmAll()
					b.StartTimer()
				}
				rt := store.RefreshToken{ID: fmt.Sprintf("rt-%d", i), Hash: []byte(fmt.Sprintf("hash-%d", i)), FamilyID: fmt.Sprintf("f-%d", i),
					Kind: refresh.KindRefresh, AMR: "qr", AuthTime: benchNow, CreatedAt: benchNow, ExpiresAt: benchNow.Add(time.Hour)}
				if _, err := db.DeliverSession(ctx, ids[i%n], devices.Start(rt, devices.Info{}, ""), rt, benchNow); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkUpdateSessionParallel is UpdateSession from 32 goroutines at
// once, as under load, on 10,000 sessions: with group commit the waiting
// transactions share commits (compare BenchmarkUpdateSession/10000).
func BenchmarkUpdateSessionParallel(b *testing.B) {
	db, ids := seededDB(b, 10_000)
	var next atomic.Int64
	b.SetParallelism(16) // 16 × GOMAXPROCS goroutines
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(7919)) % len(ids)
			_, err := db.UpdateSession(b.Context(), ids[i], func(s *login.Session) error {
				s.UserDisplayName = ids[i]
				return nil
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
