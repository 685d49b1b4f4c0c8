package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/server/store/postgres/pgtest"
)

// The hot path of one sign-in: the phone's scan and confirm
// (UpdateSession) and the desktop's delivery (DeliverSession), each a
// locked read-modify-write, plus the long-poll's read (Session). Against
// the throwaway cluster (fsync off), so the figures are round trips and
// CPU, not disk.

func benchSessions(b *testing.B, n int) (store.Store, []string) {
	b.Helper()
	db := openDB(b, pgtest.NewURL(b))
	now := time.Now().UTC()
	if err := db.CreateUser(b.Context(), store.User{ID: "u1", Username: "ada", DisplayName: "Ada", PasswordHash: "x", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("bench-%08d", i)
		s := login.Session{ID: ids[i], PollTokenHash: []byte("poll-" + ids[i]), UserCode: fmt.Sprintf("C%07d", i),
			Status: login.Pending, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := db.CreateSession(b.Context(), s); err != nil {
			b.Fatal(err)
		}
	}
	return db, ids
}

func BenchmarkSession(b *testing.B) {
	db, ids := benchSessions(b, 1)
	for b.Loop() {
		if _, err := db.Session(b.Context(), ids[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignIn runs scan, confirm and delivery on a fresh session per
// iteration.
func BenchmarkSignIn(b *testing.B) {
	db, ids := benchSessions(b, b.N)
	now := time.Now().UTC()
	b.ResetTimer()
	for i := range b.N {
		id := ids[i]
		if _, err := db.UpdateSession(b.Context(), id, func(s *login.Session) error { return login.Scan(s, "u1", "Ada", now) }); err != nil {
			b.Fatal(err)
		}
		if _, err := db.UpdateSession(b.Context(), id, func(s *login.Session) error { return login.Confirm(s, "u1", now) }); err != nil {
			b.Fatal(err)
		}
		rt := store.RefreshToken{ID: "t-" + id, Hash: []byte("h-" + id), FamilyID: "f-" + id, Kind: refresh.KindRefresh, AMR: "qr", AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if _, err := db.DeliverSession(b.Context(), id, devices.Start(rt, devices.Info{}, ""), rt, now); err != nil {
			b.Fatal(err)
		}
	}
}
