package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/store"
)

func testSessions(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("CreateAndGet", func(t *testing.T) {
		tests := []struct {
			name string
			sess login.Session
		}{
			{"fresh pending", newSession("s-pending", 1, base)},
			{"every field set", login.Session{
				ID:            "s-full",
				PollTokenHash: hash("poll"),
				UserCode:      userCode(2),
				Status:        login.Cancelled,
				Device: login.Device{
					Name:      "Ada's laptop ✓",
					Platform:  "windows/arm64",
					AppName:   "qrlogin-desktop",
					IP:        "2001:db8::7",
					UserAgent: "qrlogin-desktop/1.0 (Windows)",
				},
				CreatedAt:       base,
				ExpiresAt:       base.Add(2 * time.Minute),
				UserID:          "u-ada",
				UserDisplayName: "Ada Lovelace",
				ScannedAt:       base.Add(1500*time.Millisecond + 250*time.Microsecond),
				ConfirmedAt:     base.Add(3*time.Second + 7*time.Microsecond),
				EndedAt:         base.Add(42*time.Second + time.Microsecond),
			}},
			{"times not in UTC", func() login.Session {
				s := newSession("s-zone", 3, base.In(time.FixedZone("UTC-7", -7*3600)))
				s.Status = login.Scanned
				s.UserID, s.UserDisplayName = "u1", "Ada"
				s.ScannedAt = base.Add(time.Second).In(time.FixedZone("UTC+9", 9*3600))
				return s
			}()},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				checkErr(t, "CreateSession", s.CreateSession(t.Context(), tt.sess), nil)
				got, err := s.Session(t.Context(), tt.sess.ID)
				checkErr(t, "Session", err, nil)
				checkSession(t, "Session", got, tt.sess)
				got, err = s.SessionByUserCode(t.Context(), tt.sess.UserCode)
				checkErr(t, "SessionByUserCode", err, nil)
				checkSession(t, "SessionByUserCode", got, tt.sess)
			})
		}
	})

	t.Run("Duplicate", func(t *testing.T) {
		tests := []struct {
			name string
			dup  login.Session
		}{
			{"same id", newSession("s1", 2, base)},
			{"same user code", newSession("s2", 1, base)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				first := newSession("s1", 1, base)
				mustCreateSession(t, s, first)
				checkErr(t, "CreateSession", s.CreateSession(t.Context(), tt.dup), store.ErrConflict)
				checkSession(t, "first session", mustSession(t, s, first.ID), first)
				if tt.dup.ID != first.ID {
					_, err := s.Session(t.Context(), tt.dup.ID)
					checkErr(t, "refused session", err, store.ErrNotFound)
				}
			})
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := newStore(t)
		mustCreateSession(t, s, newSession("s1", 1, base))
		_, err := s.Session(t.Context(), "nope")
		checkErr(t, "Session", err, store.ErrNotFound)
		_, err = s.SessionByUserCode(t.Context(), userCode(99))
		checkErr(t, "SessionByUserCode", err, store.ErrNotFound)
		_, err = s.UpdateSession(t.Context(), "nope", func(*login.Session) error {
			t.Error("UpdateSession called fn for an unknown session")
			return nil
		})
		checkErr(t, "UpdateSession", err, store.ErrNotFound)
		_, err = s.DeliverSession(t.Context(), "nope", deviceOf(newToken("t1", "", "f1", base)), newToken("t1", "", "f1", base), base)
		checkErr(t, "DeliverSession", err, store.ErrNotFound)
	})

	t.Run("UpdateSaves", func(t *testing.T) {
		s := newStore(t)
		orig := newSession("s1", 1, base)
		mustCreateSession(t, s, orig)

		scanAt := base.Add(10 * time.Second)
		got, err := s.UpdateSession(t.Context(), orig.ID, func(sess *login.Session) error {
			checkSession(t, "session passed to fn", *sess, orig)
			return login.Scan(sess, "u-ada", "Ada", scanAt)
		})
		checkErr(t, "UpdateSession(Scan)", err, nil)
		want := orig
		want.Status, want.UserID, want.UserDisplayName, want.ScannedAt = login.Scanned, "u-ada", "Ada", scanAt
		checkSession(t, "UpdateSession result", got, want)
		checkSession(t, "stored after Scan", mustSession(t, s, orig.ID), want)

		confirmAt := base.Add(15*time.Second + 3*time.Microsecond)
		got, err = s.UpdateSession(t.Context(), orig.ID, func(sess *login.Session) error {
			return login.Confirm(sess, "u-ada", confirmAt)
		})
		checkErr(t, "UpdateSession(Confirm)", err, nil)
		want.Status, want.ConfirmedAt = login.Confirmed, confirmAt
		checkSession(t, "UpdateSession result", got, want)
		checkSession(t, "stored after Confirm", mustSession(t, s, orig.ID), want)

		cancelAt := base.Add(20*time.Second + 7*time.Microsecond)
		got, err = s.UpdateSession(t.Context(), orig.ID, func(sess *login.Session) error {
			return login.Withdraw(sess, cancelAt)
		})
		checkErr(t, "UpdateSession(Withdraw)", err, nil)
		want.Status, want.EndedAt = login.Cancelled, cancelAt
		checkSession(t, "UpdateSession result", got, want)
		checkSession(t, "stored after Cancel", mustSession(t, s, orig.ID), want)
		got, err = s.SessionByUserCode(t.Context(), orig.UserCode)
		checkErr(t, "SessionByUserCode", err, nil)
		checkSession(t, "SessionByUserCode after Cancel", got, want)
	})

	t.Run("UpdateErrorSavesNothing", func(t *testing.T) {
		errBoom := errors.New("boom")
		tests := []struct {
			name string
			fn   func(*login.Session) error
			want error
		}{
			{"own error after changes", func(sess *login.Session) error {
				sess.Status = login.Confirmed
				sess.UserID = "intruder"
				sess.EndedAt = base
				return errBoom
			}, errBoom},
			{"login error", func(sess *login.Session) error {
				return login.Confirm(sess, "u-ada", base.Add(time.Second))
			}, login.ErrInvalidState},
			{"login expiry", func(sess *login.Session) error {
				return login.Scan(sess, "u-ada", "Ada", base.Add(time.Hour))
			}, login.ErrExpired},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				orig := newSession("s1", 1, base)
				mustCreateSession(t, s, orig)
				got, err := s.UpdateSession(t.Context(), orig.ID, tt.fn)
				checkSame(t, "UpdateSession", err, tt.want)
				checkSession(t, "UpdateSession result (as loaded)", got, orig)
				checkSession(t, "stored", mustSession(t, s, orig.ID), orig)
			})
		}
	})

	t.Run("UpdatePanicSavesNothing", func(t *testing.T) {
		s := newStore(t)
		orig := newSession("s1", 1, base)
		mustCreateSession(t, s, orig)
		func() {
			defer func() {
				if recover() == nil {
					t.Error("UpdateSession swallowed fn's panic")
				}
			}()
			_, _ = s.UpdateSession(t.Context(), orig.ID, func(sess *login.Session) error {
				sess.Status = login.Cancelled
				panic("fn panics")
			})
		}()
		// A transaction left open would block the next calls, so they get
		// a deadline (a generous one: this is no timing assertion).
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		got, err := s.Session(ctx, orig.ID)
		checkErr(t, "Session after a panic", err, nil)
		checkSession(t, "stored after a panic", got, orig)
		_, err = s.UpdateSession(ctx, orig.ID, func(sess *login.Session) error {
			return login.Scan(sess, "u-ada", "Ada", base.Add(time.Second))
		})
		checkErr(t, "UpdateSession after a panic", err, nil)
		checkErr(t, "CreateSession after a panic", s.CreateSession(ctx, newSession("s2", 2, base)), nil)
	})

	t.Run("Deliver", func(t *testing.T) {
		s := newStore(t)
		ada := mustCreateUser(t, s, "u-ada", "ada")
		mustCreateUser(t, s, "u-bob", "bob")
		sess := confirmedSession(t, s, "s1", 1, ada.ID)

		now := base.Add(30 * time.Second)
		rt := newToken("t1", "", "f1", now)
		got, err := s.DeliverSession(t.Context(), sess.ID, deviceOf(rt), rt, now)
		checkErr(t, "DeliverSession", err, nil)
		want := sess
		want.Status, want.EndedAt = login.Consumed, now
		checkSession(t, "DeliverSession result", got, want)
		checkSession(t, "stored session", mustSession(t, s, sess.ID), want)
		wantRT := rt
		wantRT.UserID = ada.ID
		checkToken(t, "delivered refresh token", mustToken(t, s, rt), wantRT)
		// The device: its user and description come from the session.
		wantD := deviceOf(wantRT)
		wantD.UserID, wantD.Name, wantD.Platform, wantD.AppName = ada.ID, sess.Device.Name, sess.Device.Platform, sess.Device.AppName
		wantD.IP, wantD.LastIP, wantD.LastUsedAt = sess.Device.IP, sess.Device.IP, now
		checkDevice(t, "delivered device", mustDevice(t, s, "f1"), wantD)

		// The session's user wins over whatever the caller put in rt.
		sess2 := confirmedSession(t, s, "s2", 2, ada.ID)
		rt2 := newToken("t2", "u-bob", "f2", now)
		_, err = s.DeliverSession(t.Context(), sess2.ID, deviceOf(rt2), rt2, now)
		checkErr(t, "DeliverSession", err, nil)
		if got := mustToken(t, s, rt2); got.UserID != ada.ID {
			t.Errorf("delivered token's UserID = %q, want the session's user %q", got.UserID, ada.ID)
		}
	})

	t.Run("DeliverTwice", func(t *testing.T) {
		s := newStore(t)
		ada := mustCreateUser(t, s, "u-ada", "ada")
		sess := confirmedSession(t, s, "s1", 1, ada.ID)
		now := base.Add(30 * time.Second)
		first, err := s.DeliverSession(t.Context(), sess.ID, deviceOf(newToken("t1", "", "f1", now)), newToken("t1", "", "f1", now), now)
		checkErr(t, "first DeliverSession", err, nil)

		second := newToken("t2", "", "f2", now)
		got, err := s.DeliverSession(t.Context(), sess.ID, deviceOf(second), second, now.Add(time.Second))
		checkSame(t, "second DeliverSession", err, login.ErrConsumed)
		checkSession(t, "second DeliverSession result (as loaded)", got, first)
		_, err = s.RefreshToken(t.Context(), second.Hash)
		checkErr(t, "second token", err, store.ErrNotFound)
		checkSession(t, "stored session", mustSession(t, s, sess.ID), first)
	})

	t.Run("DeliverRefused", func(t *testing.T) {
		tests := []struct {
			name  string
			setup func(*login.Session)
			now   time.Time
			want  error
		}{
			{"pending", func(*login.Session) {}, base.Add(time.Second), login.ErrInvalidState},
			{"scanned", func(s *login.Session) {
				s.Status, s.UserID, s.UserDisplayName, s.ScannedAt = login.Scanned, "u-ada", "Ada", base
			}, base.Add(time.Second), login.ErrInvalidState},
			{"cancelled", func(s *login.Session) {
				s.Status, s.EndedAt = login.Cancelled, base
			}, base.Add(time.Second), login.ErrInvalidState},
			{"confirmed but expired", func(s *login.Session) {
				s.Status, s.UserID, s.UserDisplayName, s.ScannedAt = login.Confirmed, "u-ada", "Ada", base
			}, base.Add(2 * time.Minute), login.ErrExpired},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				mustCreateUser(t, s, "u-ada", "ada")
				sess := newSession("s1", 1, base)
				tt.setup(&sess)
				mustCreateSession(t, s, sess)
				rt := newToken("t1", "", "f1", tt.now)
				got, err := s.DeliverSession(t.Context(), sess.ID, deviceOf(rt), rt, tt.now)
				checkSame(t, "DeliverSession", err, tt.want)
				checkSession(t, "DeliverSession result (as loaded)", got, sess)
				checkSession(t, "stored session", mustSession(t, s, sess.ID), sess)
				_, err = s.RefreshToken(t.Context(), rt.Hash)
				checkErr(t, "refresh token of a refused delivery", err, store.ErrNotFound)
			})
		}
	})
}

// confirmedSession stores a session that userID scanned and confirmed,
// through UpdateSession as the server does, and returns it as stored.
func confirmedSession(t *testing.T, s store.Store, id string, code int, userID string) login.Session {
	t.Helper()
	mustCreateSession(t, s, newSession(id, code, base))
	sess, err := s.UpdateSession(t.Context(), id, func(sess *login.Session) error {
		if err := login.Scan(sess, userID, "Display "+userID, base.Add(5*time.Second)); err != nil {
			return err
		}
		return login.Confirm(sess, userID, base.Add(9*time.Second))
	})
	if err != nil {
		t.Fatalf("scan and confirm %s: %v", id, err)
	}
	return sess
}

func testConcurrency(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("ScanRace", func(t *testing.T) {
		s := newStore(t)
		sess := newSession("s1", 1, base)
		mustCreateSession(t, s, sess)

		const n = 50
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				_, errs[i] = s.UpdateSession(t.Context(), sess.ID, func(sess *login.Session) error {
					return login.Scan(sess, "u-"+ordinal(i), "User "+ordinal(i), base.Add(time.Second))
				})
			})
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("scans by u-%s and u-%s both succeeded", ordinal(winner), ordinal(i))
			case err == nil:
				winner = i
			case err != login.ErrInvalidState:
				t.Errorf("losing scan %d: error %v, want login.ErrInvalidState", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no scan succeeded")
		}
		got := mustSession(t, s, sess.ID)
		if got.Status != login.Scanned || got.UserID != "u-"+ordinal(winner) {
			t.Errorf("stored session: status %s, user %q; want scanned by u-%s", got.Status, got.UserID, ordinal(winner))
		}
	})

	t.Run("DeliverRace", func(t *testing.T) {
		s := newStore(t)
		ada := mustCreateUser(t, s, "u-ada", "ada")
		sess := confirmedSession(t, s, "s1", 1, ada.ID)
		now := base.Add(30 * time.Second)

		const n = 20
		errs := make([]error, n)
		tokens := make([]store.RefreshToken, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			tokens[i] = newToken("t"+ordinal(i), "", "f"+ordinal(i), now)
			wg.Go(func() {
				<-start
				_, errs[i] = s.DeliverSession(t.Context(), sess.ID, deviceOf(tokens[i]), tokens[i], now)
			})
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("deliveries %d and %d both succeeded", winner, i)
			case err == nil:
				winner = i
			case err != login.ErrConsumed:
				t.Errorf("losing delivery %d: error %v, want login.ErrConsumed", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no delivery succeeded")
		}
		stored := 0
		for i, rt := range tokens {
			_, err := s.RefreshToken(t.Context(), rt.Hash)
			switch {
			case err == nil:
				stored++
				if i != winner {
					t.Errorf("token of losing delivery %d was stored", i)
				}
			case !errors.Is(err, store.ErrNotFound):
				t.Fatalf("RefreshToken: %v", err)
			}
		}
		if stored != 1 {
			t.Errorf("%d refresh tokens stored, want exactly 1", stored)
		}
		if got := mustSession(t, s, sess.ID); got.Status != login.Consumed {
			t.Errorf("stored session status %s, want consumed", got.Status)
		}
	})
}

func testDeleteEndedSessions(t *testing.T, newStore func(t *testing.T) store.Store) {
	now := base.Add(time.Hour)
	cutoff := now.Add(-login.Retention)
	live := func(st login.Status, expires time.Time) func(*login.Session) {
		return func(s *login.Session) {
			s.Status, s.ExpiresAt = st, expires
			if st != login.Pending {
				s.UserID, s.UserDisplayName, s.ScannedAt = "u-ada", "Ada", s.CreatedAt.Add(time.Second)
			}
		}
	}
	ended := func(st login.Status, endedAt, expires time.Time) func(*login.Session) {
		return func(s *login.Session) {
			s.Status, s.EndedAt, s.ExpiresAt = st, endedAt, expires
		}
	}
	tests := []struct {
		name        string
		setup       func(*login.Session)
		wantDeleted bool
	}{
		{"pending, not expired", live(login.Pending, now.Add(time.Minute)), false},
		{"confirmed, not expired", live(login.Confirmed, now.Add(time.Minute)), false},
		{"pending, expired before cutoff", live(login.Pending, cutoff.Add(-time.Second)), true},
		{"scanned, expired before cutoff", live(login.Scanned, cutoff.Add(-time.Microsecond)), true},
		{"confirmed, expired before cutoff", live(login.Confirmed, cutoff.Add(-time.Hour)), true},
		{"pending, expired at cutoff", live(login.Pending, cutoff), false},
		{"scanned, expired after cutoff", live(login.Scanned, now.Add(-time.Minute)), false},
		{"cancelled before cutoff, would expire after it", ended(login.Cancelled, cutoff.Add(-time.Second), cutoff.Add(time.Minute)), true},
		{"cancelled after cutoff", ended(login.Cancelled, cutoff.Add(time.Second), cutoff.Add(time.Minute)), false},
		{"consumed before cutoff", ended(login.Consumed, cutoff.Add(-time.Microsecond), cutoff.Add(time.Minute)), true},
		{"consumed after cutoff", ended(login.Consumed, now.Add(-time.Second), now.Add(time.Minute)), false},
		{"expired status, no end time, before cutoff", ended(login.Expired, time.Time{}, cutoff.Add(-time.Second)), true},
		{"expired status, no end time, after cutoff", ended(login.Expired, time.Time{}, cutoff.Add(time.Second)), false},
	}

	s := newStore(t)
	sessions := make([]login.Session, len(tests))
	wantN := 0
	for i, tt := range tests {
		sess := newSession("s"+ordinal(i), i, cutoff.Add(-2*time.Hour))
		tt.setup(&sess)
		// The table must agree with the rule the sweeper implements.
		endedBy := sess.EndedBy(now)
		if rule := !endedBy.IsZero() && endedBy.Before(cutoff); rule != tt.wantDeleted {
			t.Fatalf("%s: table says deleted=%v, login.Session.EndedBy says %v", tt.name, tt.wantDeleted, rule)
		}
		if tt.wantDeleted {
			wantN++
		}
		mustCreateSession(t, s, sess)
		sessions[i] = sess
	}

	n, err := s.DeleteEndedSessions(t.Context(), cutoff)
	checkErr(t, "DeleteEndedSessions", err, nil)
	if n != wantN {
		t.Errorf("DeleteEndedSessions removed %d sessions, want %d", n, wantN)
	}
	for i, tt := range tests {
		got, err := s.Session(t.Context(), sessions[i].ID)
		if tt.wantDeleted {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: Session after sweep: error %v, want not found", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Session after sweep: %v", tt.name, err)
			continue
		}
		checkSession(t, tt.name, got, sessions[i])
	}

	n, err = s.DeleteEndedSessions(t.Context(), cutoff)
	checkErr(t, "second DeleteEndedSessions", err, nil)
	if n != 0 {
		t.Errorf("second DeleteEndedSessions removed %d sessions, want 0", n)
	}
}

func testExpireSessions(t *testing.T, newStore func(t *testing.T) store.Store) {
	now := base.Add(time.Hour)
	tests := []struct {
		name       string
		status     login.Status
		expires    time.Time
		wantMarked bool
	}{
		{"pending, expired", login.Pending, now.Add(-time.Second), true},
		{"scanned, expired at now", login.Scanned, now, true},
		{"confirmed, expired", login.Confirmed, now.Add(-time.Hour), true},
		{"pending, live", login.Pending, now.Add(time.Microsecond), false},
		{"confirmed, live", login.Confirmed, now.Add(time.Minute), false},
		{"consumed, past expiry", login.Consumed, now.Add(-time.Minute), false},
		{"cancelled, past expiry", login.Cancelled, now.Add(-time.Minute), false},
		{"already marked", login.Expired, now.Add(-time.Minute), false},
	}
	s := newStore(t)
	sessions := make([]login.Session, len(tests))
	wantN := 0
	for i, tt := range tests {
		sess := newSession("x"+ordinal(i), i, now.Add(-2*time.Hour))
		sess.Status, sess.ExpiresAt = tt.status, tt.expires
		if tt.status != login.Pending {
			sess.UserID, sess.UserDisplayName, sess.ScannedAt = "u-ada", "Ada", sess.CreatedAt.Add(time.Second)
		}
		if tt.status == login.Consumed || tt.status == login.Cancelled {
			sess.EndedAt = sess.CreatedAt.Add(2 * time.Second)
		}
		// The table must agree with the rule of login.Session.StatusAt.
		if rule := sess.Status.Live() && sess.StatusAt(now) == login.Expired; rule != tt.wantMarked {
			t.Fatalf("%s: table says marked=%v, StatusAt says %v", tt.name, tt.wantMarked, rule)
		}
		if tt.wantMarked {
			wantN++
		}
		mustCreateSession(t, s, sess)
		sessions[i] = sess
	}
	n, err := s.ExpireSessions(t.Context(), now)
	checkErr(t, "ExpireSessions", err, nil)
	if n != wantN {
		t.Errorf("ExpireSessions marked %d sessions, want %d", n, wantN)
	}
	for i, tt := range tests {
		got, err := s.Session(t.Context(), sessions[i].ID)
		checkErr(t, tt.name, err, nil)
		want := sessions[i]
		if tt.wantMarked {
			want.Status = login.Expired
		}
		checkSession(t, tt.name, got, want)
		// Marking changes nothing the server answers.
		if got.StatusAt(now) != sessions[i].StatusAt(now) || !got.EndedBy(now).Equal(sessions[i].EndedBy(now)) {
			t.Errorf("%s: marked session answers %s ended by %v, was %s ended by %v", tt.name,
				got.StatusAt(now), got.EndedBy(now), sessions[i].StatusAt(now), sessions[i].EndedBy(now))
		}
	}
	// Each session is marked once.
	n, err = s.ExpireSessions(t.Context(), now)
	checkErr(t, "second ExpireSessions", err, nil)
	if n != 0 {
		t.Errorf("second ExpireSessions marked %d sessions, want 0", n)
	}
	// A marked session is swept like any expired one.
	n, err = s.DeleteEndedSessions(t.Context(), now.Add(login.Retention))
	checkErr(t, "DeleteEndedSessions", err, nil)
	if n != len(tests) {
		t.Errorf("DeleteEndedSessions after marking removed %d sessions, want %d", n, len(tests))
	}
}
