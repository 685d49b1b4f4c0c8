// Package storetest is the conformance suite of store.Store: every backend's
// tests call Run, so all backends keep one behaviour. It uses only the Store
// interface.
package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
)

// Run runs the conformance suite against stores made by newStore. newStore
// is called once per subtest and must return an empty store; it arranges
// its own cleanup (t.Cleanup).
//
// Times in the suite have microsecond precision, the finest that every
// likely backend (PostgreSQL timestamptz included) keeps.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("Users", func(t *testing.T) { testUsers(t, newStore) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, newStore) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, newStore) })
	t.Run("DeleteEndedSessions", func(t *testing.T) { testDeleteEndedSessions(t, newStore) })
	t.Run("ExpireSessions", func(t *testing.T) { testExpireSessions(t, newStore) })
	t.Run("RefreshTokens", func(t *testing.T) { testRefreshTokens(t, newStore) })
	t.Run("SigningKeys", func(t *testing.T) { testSigningKeys(t, newStore) })
	t.Run("Clients", func(t *testing.T) { testClients(t, newStore) })
	t.Run("DeviceGrant", func(t *testing.T) { testDeviceGrant(t, newStore) })
	t.Run("ListRefreshTokens", func(t *testing.T) { testListRefreshTokens(t, newStore) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, newStore) })
	t.Run("Devices", func(t *testing.T) { testDevices(t, newStore) })
	t.Run("CopyDevices", func(t *testing.T) { testCopyDevices(t, newStore) })
	t.Run("Ping", func(t *testing.T) {
		if err := newStore(t).Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

// base is the suite's clock: a fixed UTC instant with sub-second digits.
var base = time.Date(2026, time.March, 14, 9, 26, 53, 123456000, time.UTC)

// hash is the SHA-256 of s, standing in for a token hash.
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// userCode is the i-th 8-letter user code from the production alphabet.
func userCode(i int) string {
	const alphabet = "BCDFGHJKLMNPQRSTVWXZ"
	b := make([]byte, 8)
	for j := len(b) - 1; j >= 0; j-- {
		b[j] = alphabet[i%len(alphabet)]
		i /= len(alphabet)
	}
	return string(b)
}

// checkUTC fails unless every non-zero time in ts is in UTC.
func checkUTC(t *testing.T, what string, ts ...time.Time) {
	t.Helper()
	for _, tm := range ts {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s: time %v is in %v, want UTC", what, tm, tm.Location())
		}
	}
}

// utc returns tm in UTC without a monotonic reading, so that equal instants
// compare equal with reflect.DeepEqual.
func utc(tm time.Time) time.Time {
	if tm.IsZero() {
		return time.Time{}
	}
	return tm.UTC()
}

func normSession(s login.Session) login.Session {
	s.CreatedAt, s.ExpiresAt, s.ScannedAt, s.EndedAt = utc(s.CreatedAt), utc(s.ExpiresAt), utc(s.ScannedAt), utc(s.EndedAt)
	s.LastPollAt, s.ConfirmedAt = utc(s.LastPollAt), utc(s.ConfirmedAt)
	return s
}

func normUser(u store.User) store.User {
	u.CreatedAt, u.TokensValidAfter = utc(u.CreatedAt), utc(u.TokensValidAfter)
	return u
}

func normToken(rt store.RefreshToken) store.RefreshToken {
	rt.CreatedAt, rt.ExpiresAt, rt.UsedAt, rt.RevokedAt = utc(rt.CreatedAt), utc(rt.ExpiresAt), utc(rt.UsedAt), utc(rt.RevokedAt)
	rt.AuthTime = utc(rt.AuthTime)
	return rt
}

func normKey(k store.SigningKey) store.SigningKey {
	k.CreatedAt = utc(k.CreatedAt)
	return k
}

func checkSession(t *testing.T, what string, got, want login.Session) {
	t.Helper()
	checkUTC(t, what, got.CreatedAt, got.ExpiresAt, got.ScannedAt, got.EndedAt, got.LastPollAt, got.ConfirmedAt)
	if g, w := normSession(got), normSession(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func checkUser(t *testing.T, what string, got, want store.User) {
	t.Helper()
	checkUTC(t, what, got.CreatedAt, got.TokensValidAfter)
	if g, w := normUser(got), normUser(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func checkToken(t *testing.T, what string, got, want store.RefreshToken) {
	t.Helper()
	checkUTC(t, what, got.CreatedAt, got.ExpiresAt, got.UsedAt, got.RevokedAt, got.AuthTime)
	if g, w := normToken(got), normToken(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// checkErr fails unless errors.Is(err, want); want nil means no error.
func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil && err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// checkSame fails unless err is want itself, not wrapped: the contract for
// errors that come from fn in UpdateSession and from login.Deliver.
func checkSame(t *testing.T, what string, err, want error) {
	t.Helper()
	if err != want {
		t.Fatalf("%s: error %v (%T), want exactly %v", what, err, err, want)
	}
}

// mustCreateUser stores a user with that id and username.
func mustCreateUser(t *testing.T, s store.Store, id, username string) store.User {
	t.Helper()
	u := store.User{
		ID:           id,
		Username:     username,
		DisplayName:  "Display " + username,
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + id,
		CreatedAt:    base,
	}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", username, err)
	}
	return u
}

// newSession is a fresh pending session created at now.
func newSession(id string, code int, now time.Time) login.Session {
	return login.Session{
		ID:            id,
		PollTokenHash: hash("poll-" + id),
		UserCode:      userCode(code),
		Status:        login.Pending,
		Device: login.Device{
			Name:      "Laptop " + id,
			Platform:  "linux",
			AppName:   "qrlogin-desktop",
			IP:        "192.0.2.7",
			UserAgent: "qrlogin-desktop/1.0",
		},
		CreatedAt: now,
		ExpiresAt: now.Add(2 * time.Minute),
	}
}

// mustCreateSession stores sess.
func mustCreateSession(t *testing.T, s store.Store, sess login.Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.ID, err)
	}
}

// newToken is a live refresh token of userID in family, created at now.
func newToken(id, userID, family string, now time.Time) store.RefreshToken {
	return store.RefreshToken{
		ID:        id,
		Hash:      hash("refresh-" + id),
		UserID:    userID,
		FamilyID:  family,
		Kind:      refresh.KindRefresh,
		AMR:       "pwd",
		AuthTime:  now,
		CreatedAt: now,
		ExpiresAt: now.Add(30 * 24 * time.Hour),
	}
}

// mustCreateToken stores rt.
func mustCreateToken(t *testing.T, s store.Store, rt store.RefreshToken) {
	t.Helper()
	if err := s.CreateRefreshToken(t.Context(), rt); err != nil {
		t.Fatalf("CreateRefreshToken(%s): %v", rt.ID, err)
	}
}

// mustToken returns the stored token with rt's hash.
func mustToken(t *testing.T, s store.Store, rt store.RefreshToken) store.RefreshToken {
	t.Helper()
	got, err := s.RefreshToken(t.Context(), rt.Hash)
	if err != nil {
		t.Fatalf("RefreshToken(%s): %v", rt.ID, err)
	}
	return got
}

// mustSession returns the stored session with that id.
func mustSession(t *testing.T, s store.Store, id string) login.Session {
	t.Helper()
	got, err := s.Session(t.Context(), id)
	if err != nil {
		t.Fatalf("Session(%s): %v", id, err)
	}
	return got
}

func ordinal(i int) string { return fmt.Sprintf("%02d", i) }
