package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/store"
)

func testClients(t *testing.T, newStore func(t *testing.T) store.Store) {
	public := store.Client{ID: "cli", Name: "Command line", CreatedAt: base}
	confidential := store.Client{ID: "backend", Name: "Backend 后台", SecretHash: hash("secret"), CreatedAt: base.Add(time.Second)}

	t.Run("CreateAndRead", func(t *testing.T) {
		s := newStore(t)
		for _, c := range []store.Client{public, confidential} {
			checkErr(t, "CreateClient "+c.ID, s.CreateClient(t.Context(), c), nil)
		}
		for _, want := range []store.Client{public, confidential} {
			got, err := s.Client(t.Context(), want.ID)
			checkErr(t, "Client "+want.ID, err, nil)
			checkClient(t, "Client "+want.ID, got, want)
		}
		got, err := s.Client(t.Context(), public.ID)
		checkErr(t, "Client", err, nil)
		if !got.Public() || len(got.SecretHash) != 0 {
			t.Errorf("a client stored without a secret reads back with secret %x", got.SecretHash)
		}
		all, err := s.Clients(t.Context())
		checkErr(t, "Clients", err, nil)
		if len(all) != 2 || all[0].ID != "backend" || all[1].ID != "cli" {
			t.Fatalf("Clients = %+v, want backend then cli", all)
		}
		checkClient(t, "Clients[0]", all[0], confidential)
	})

	t.Run("Conflict", func(t *testing.T) {
		s := newStore(t)
		checkErr(t, "CreateClient", s.CreateClient(t.Context(), public), nil)
		again := public
		again.Name = "Other"
		checkErr(t, "CreateClient again", s.CreateClient(t.Context(), again), store.ErrConflict)
	})

	t.Run("NotFound", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Client(t.Context(), "nope")
		checkErr(t, "Client", err, store.ErrNotFound)
		checkErr(t, "DeleteClient", s.DeleteClient(t.Context(), "nope"), store.ErrNotFound)
		all, err := s.Clients(t.Context())
		checkErr(t, "Clients", err, nil)
		if len(all) != 0 {
			t.Errorf("Clients of an empty store = %+v", all)
		}
	})

	t.Run("DeleteTakesItsTokens", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		checkErr(t, "CreateClient", s.CreateClient(t.Context(), public), nil)
		checkErr(t, "CreateClient", s.CreateClient(t.Context(), confidential), nil)
		own := newToken("t1", u.ID, "f1", base)
		own.ClientID, own.Scope = public.ID, "openid offline_access"
		other := newToken("t2", u.ID, "f2", base)
		other.ClientID = confidential.ID
		api := newToken("t3", u.ID, "f3", base)
		for _, rt := range []store.RefreshToken{own, other, api} {
			mustCreateToken(t, s, rt)
		}
		checkToken(t, "client token", mustToken(t, s, own), own)

		checkErr(t, "DeleteClient", s.DeleteClient(t.Context(), public.ID), nil)
		_, err := s.Client(t.Context(), public.ID)
		checkErr(t, "Client after delete", err, store.ErrNotFound)
		_, err = s.RefreshToken(t.Context(), own.Hash)
		checkErr(t, "the deleted client's token", err, store.ErrNotFound)
		mustToken(t, s, other)
		mustToken(t, s, api)
	})
}

func checkClient(t *testing.T, what string, got, want store.Client) {
	t.Helper()
	checkUTC(t, what, got.CreatedAt)
	got.CreatedAt, want.CreatedAt = utc(got.CreatedAt), utc(want.CreatedAt)
	if len(got.SecretHash) == 0 && len(want.SecretHash) == 0 {
		got.SecretHash, want.SecretHash = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// testDeviceGrant covers what the OAuth device authorization grant keeps
// in sessions and refresh tokens.
func testDeviceGrant(t *testing.T, newStore func(t *testing.T) store.Store) {
	device := func(id string, code int) login.Session {
		sess := newSession(id, code, base)
		sess.ClientID, sess.Scope, sess.PollInterval = "cli", "openid profile offline_access", 5*time.Second
		return sess
	}

	t.Run("FieldsRoundTrip", func(t *testing.T) {
		s := newStore(t)
		sess := device("s1", 1)
		mustCreateSession(t, s, sess)
		checkSession(t, "Session", mustSession(t, s, sess.ID), sess)

		// The poll state is saved by UpdateSession, as NotePoll leaves it.
		at := base.Add(time.Second)
		saved, err := s.UpdateSession(t.Context(), sess.ID, func(ls *login.Session) error {
			if !errors.Is(login.NotePoll(ls, at), login.ErrSlowDown) {
				t.Error("a poll a second after creation was not too fast")
			}
			return nil
		})
		checkErr(t, "UpdateSession", err, nil)
		want := sess
		want.LastPollAt, want.PollInterval = at, 10*time.Second
		checkSession(t, "UpdateSession result", saved, want)
		checkSession(t, "Session after poll", mustSession(t, s, sess.ID), want)
	})

	t.Run("SessionByPollToken", func(t *testing.T) {
		s := newStore(t)
		a, b := device("s1", 1), device("s2", 2)
		mustCreateSession(t, s, a)
		mustCreateSession(t, s, b)
		got, err := s.SessionByPollToken(t.Context(), b.PollTokenHash)
		checkErr(t, "SessionByPollToken", err, nil)
		checkSession(t, "SessionByPollToken", got, b)
		_, err = s.SessionByPollToken(t.Context(), hash("nope"))
		checkErr(t, "SessionByPollToken unknown", err, store.ErrNotFound)
	})

	t.Run("DeliverWithoutRefreshToken", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		sess := device("s1", 1)
		mustCreateSession(t, s, sess)
		_, err := s.UpdateSession(t.Context(), sess.ID, func(ls *login.Session) error {
			if err := login.Scan(ls, u.ID, u.DisplayName, base); err != nil {
				return err
			}
			return login.Confirm(ls, u.ID, base)
		})
		checkErr(t, "confirm", err, nil)
		saved, err := s.DeliverSession(t.Context(), sess.ID, appDevice("d-app", sess, base.Add(time.Second)), store.RefreshToken{}, base.Add(time.Second))
		checkErr(t, "DeliverSession without a token", err, nil)
		if saved.Status != login.Consumed {
			t.Errorf("status %s, want consumed", saved.Status)
		}
		// The app's sign-in is a device even without a refresh token, so
		// its access token can be ended.
		want := appDevice("d-app", sess, base.Add(time.Second))
		devices.FromSession(&want, saved)
		checkDevice(t, "app's device", mustDevice(t, s, "d-app"), want)
		// Still exactly once.
		_, err = s.DeliverSession(t.Context(), sess.ID, appDevice("d-app2", sess, base.Add(2*time.Second)), store.RefreshToken{}, base.Add(2*time.Second))
		checkSame(t, "DeliverSession again", err, login.ErrConsumed)
	})

	t.Run("ClientTokenRotates", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		rt := newToken("t1", u.ID, "f1", base)
		rt.ClientID, rt.Scope = "cli", "openid offline_access"
		mustCreateToken(t, s, rt)
		next := newToken("t2", u.ID, "f1", base.Add(time.Minute))
		next.ClientID, next.Scope = rt.ClientID, rt.Scope
		_, err := s.UpdateRefreshToken(t.Context(), rt.Hash, func(cur *store.RefreshToken) (*store.RefreshToken, error) {
			cur.UsedAt = base.Add(time.Minute)
			return &next, nil
		})
		checkErr(t, "UpdateRefreshToken", err, nil)
		checkToken(t, "successor", mustToken(t, s, next), next)
	})
}
