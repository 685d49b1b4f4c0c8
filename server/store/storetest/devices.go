package storetest

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// deviceOf is the device of a sign-in whose first token is rt, as a
// caller of DeliverSession or CreateDevice describes it.
func deviceOf(rt store.RefreshToken) store.Device {
	return devices.Start(rt, devices.Info{}, "")
}

// appDevice is the device of an OAuth app's sign-in through sess without
// a refresh token, signed in at now.
func appDevice(id string, sess login.Session, now time.Time) store.Device {
	return store.Device{ID: id, Kind: api.DeviceApp, ClientID: sess.ClientID, AppName: "Registered app",
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
}

// newDevice is a phone's sign-in of userID at now, with its cookie.
func newDevice(id, userID string, now time.Time) (store.Device, store.RefreshToken) {
	rt := newToken("t-"+id, userID, id, now)
	rt.Kind = refresh.KindPhone
	d := devices.Start(rt, devices.Info{Name: "Phone " + id, Platform: "android", AppName: "Chrome"}, "198.51.100.4")
	return d, rt
}

// mustCreateDevice stores a new sign-in.
func mustCreateDevice(t *testing.T, s store.Store, d store.Device, rt store.RefreshToken) {
	t.Helper()
	if err := s.CreateDevice(t.Context(), d, rt); err != nil {
		t.Fatalf("CreateDevice(%s): %v", d.ID, err)
	}
}

func mustDevice(t *testing.T, s store.Store, id string) store.Device {
	t.Helper()
	d, err := s.Device(t.Context(), id)
	if err != nil {
		t.Fatalf("Device(%s): %v", id, err)
	}
	return d
}

func normDevice(d store.Device) store.Device {
	d.CreatedAt, d.LastUsedAt, d.ExpiresAt, d.EndedAt = utc(d.CreatedAt), utc(d.LastUsedAt), utc(d.ExpiresAt), utc(d.EndedAt)
	return d
}

func checkDevice(t *testing.T, what string, got, want store.Device) {
	t.Helper()
	checkUTC(t, what, got.CreatedAt, got.LastUsedAt, got.ExpiresAt, got.EndedAt)
	if g, w := normDevice(got), normDevice(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// deviceIDs are the ids of ds in order.
func deviceIDs(ds []store.Device) []string {
	ids := []string{}
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func testDevices(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("CreateAndLoad", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		d, rt := newDevice("d1", u.ID, base)
		mustCreateDevice(t, s, d, rt)
		checkDevice(t, "Device", mustDevice(t, s, "d1"), d)
		checkToken(t, "the sign-in's cookie", mustToken(t, s, rt), rt)

		_, err := s.Device(t.Context(), "nope")
		checkErr(t, "Device unknown", err, store.ErrNotFound)

		// A taken device id stores nothing, not even the token.
		d2, rt2 := newDevice("d1", u.ID, base)
		rt2.ID, rt2.Hash = "t-other", hash("other")
		checkErr(t, "CreateDevice with a taken id", s.CreateDevice(t.Context(), d2, rt2), store.ErrConflict)
		_, err = s.RefreshToken(t.Context(), rt2.Hash)
		checkErr(t, "token of a refused sign-in", err, store.ErrNotFound)
		// A taken token hash stores no device.
		d3, rt3 := newDevice("d3", u.ID, base)
		rt3.Hash = rt.Hash
		checkErr(t, "CreateDevice with a taken hash", s.CreateDevice(t.Context(), d3, rt3), store.ErrConflict)
		_, err = s.Device(t.Context(), "d3")
		checkErr(t, "device of a refused sign-in", err, store.ErrNotFound)

		d4, rt4 := newDevice("d4", "nobody", base)
		checkErr(t, "CreateDevice for an unknown user", s.CreateDevice(t.Context(), d4, rt4), store.ErrNotFound)
	})

	t.Run("ListLiveNewestFirst", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		other := mustCreateUser(t, s, "u2", "bob")
		for i, id := range []string{"old", "mid", "new"} {
			d, rt := newDevice(id, u.ID, base.Add(time.Duration(i)*time.Hour))
			mustCreateDevice(t, s, d, rt)
		}
		short, rt := newDevice("expired", u.ID, base.Add(3*time.Hour))
		short.ExpiresAt = base.Add(4 * time.Hour)
		rt.ExpiresAt = short.ExpiresAt
		mustCreateDevice(t, s, short, rt)
		ended, rt := newDevice("ended", u.ID, base.Add(3*time.Hour))
		mustCreateDevice(t, s, ended, rt)
		_, err := s.EndDevice(t.Context(), u.ID, "ended", api.ReasonSignedOut, base.Add(4*time.Hour))
		checkErr(t, "EndDevice", err, nil)
		theirs, rt := newDevice("theirs", other.ID, base.Add(time.Hour))
		mustCreateDevice(t, s, theirs, rt)

		ds, err := s.Devices(t.Context(), u.ID, base.Add(5*time.Hour))
		checkErr(t, "Devices", err, nil)
		if got, want := deviceIDs(ds), []string{"new", "mid", "old"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Devices = %v, want %v (live only, newest first)", got, want)
		}
		// Before its expiry the short one is listed.
		ds, err = s.Devices(t.Context(), u.ID, base.Add(3*time.Hour+time.Minute))
		checkErr(t, "Devices", err, nil)
		if got, want := deviceIDs(ds), []string{"expired", "new", "mid", "old"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Devices before expiry = %v, want %v", got, want)
		}
		ds, err = s.Devices(t.Context(), "nobody", base)
		checkErr(t, "Devices of nobody", err, nil)
		if len(ds) != 0 {
			t.Errorf("Devices of nobody = %v, want none", deviceIDs(ds))
		}
	})

	t.Run("EndDevice", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		mustCreateUser(t, s, "u2", "bob")
		d, rt := newDevice("d1", u.ID, base)
		rt.Kind = refresh.KindRefresh
		mustCreateDevice(t, s, d, rt)
		// Its chain has a rotated token too: the whole family is revoked.
		now := base.Add(time.Hour)
		next := newToken("t-next", u.ID, "d1", now)
		_, err := s.UpdateRefreshToken(t.Context(), rt.Hash, func(r *store.RefreshToken) (*store.RefreshToken, error) {
			r.UsedAt = now
			return &next, nil
		})
		checkErr(t, "rotate", err, nil)
		keep, keepRT := newDevice("d2", u.ID, base)
		mustCreateDevice(t, s, keep, keepRT)

		_, err = s.EndDevice(t.Context(), "u2", "d1", api.ReasonSignedOut, now)
		checkErr(t, "EndDevice of another user's device", err, store.ErrNotFound)
		_, err = s.EndDevice(t.Context(), u.ID, "nope", api.ReasonSignedOut, now)
		checkErr(t, "EndDevice unknown", err, store.ErrNotFound)
		if got := mustToken(t, s, next); !got.RevokedAt.IsZero() {
			t.Fatal("a refused EndDevice revoked the token")
		}

		end := now.Add(time.Minute)
		got, err := s.EndDevice(t.Context(), u.ID, "d1", api.ReasonSignedOut, end)
		checkErr(t, "EndDevice", err, nil)
		stored := mustDevice(t, s, "d1")
		checkDevice(t, "EndDevice result", got, stored)
		if !stored.EndedAt.Equal(end) || stored.EndReason != api.ReasonSignedOut {
			t.Errorf("ended device: ended %v for %q, want %v for %q", stored.EndedAt, stored.EndReason, end, api.ReasonSignedOut)
		}
		for _, tok := range []store.RefreshToken{rt, next} {
			if got := mustToken(t, s, tok); got.RevokedAt.IsZero() {
				t.Errorf("token %s of the ended device is not revoked", tok.ID)
			}
		}
		if got := mustToken(t, s, keepRT); !got.RevokedAt.IsZero() {
			t.Error("another device's token was revoked")
		}
		_, err = s.EndDevice(t.Context(), u.ID, "d1", api.ReasonLogoutAll, end.Add(time.Minute))
		checkErr(t, "EndDevice again", err, store.ErrNotFound)
		if got := mustDevice(t, s, "d1"); got.EndReason != api.ReasonSignedOut || !got.EndedAt.Equal(end) {
			t.Errorf("ending again changed the device: %+v", got)
		}
	})

	t.Run("SignOutEverywhere", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			revoke func(s store.Store, userID string, now time.Time) error
			reason string
		}{
			{"RevokeUserTokens", func(s store.Store, id string, now time.Time) error {
				return s.RevokeUserTokens(t.Context(), id, now)
			}, api.ReasonLogoutAll},
			{"SetPassword", func(s store.Store, id string, now time.Time) error {
				return s.SetPassword(t.Context(), id, "new-hash", now)
			}, api.ReasonPasswordChanged},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				u := mustCreateUser(t, s, "u1", "alice")
				other := mustCreateUser(t, s, "u2", "bob")
				for _, id := range []string{"a", "b", "earlier"} {
					d, rt := newDevice(id, u.ID, base)
					mustCreateDevice(t, s, d, rt)
				}
				theirs, rt := newDevice("theirs", other.ID, base)
				mustCreateDevice(t, s, theirs, rt)
				first := base.Add(time.Minute)
				_, err := s.EndDevice(t.Context(), u.ID, "earlier", api.ReasonSignedOut, first)
				checkErr(t, "EndDevice", err, nil)

				now := base.Add(time.Hour)
				checkErr(t, tt.name, tt.revoke(s, u.ID, now), nil)
				for _, id := range []string{"a", "b"} {
					if d := mustDevice(t, s, id); !d.EndedAt.Equal(now) || d.EndReason != tt.reason {
						t.Errorf("device %s: ended %v for %q, want %v for %q", id, d.EndedAt, d.EndReason, now, tt.reason)
					}
				}
				if d := mustDevice(t, s, "earlier"); !d.EndedAt.Equal(first) || d.EndReason != api.ReasonSignedOut {
					t.Errorf("a device ended before kept %v for %q, want %v for %q", d.EndedAt, d.EndReason, first, api.ReasonSignedOut)
				}
				if d := mustDevice(t, s, "theirs"); d.Ended() {
					t.Errorf("another user's device was ended: %+v", d)
				}
				ds, err := s.Devices(t.Context(), u.ID, now)
				checkErr(t, "Devices", err, nil)
				if len(ds) != 0 {
					t.Errorf("Devices after %s = %v, want none", tt.name, deviceIDs(ds))
				}
			})
		}
	})

	t.Run("RefreshTokensMoveTheirDevice", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		rt := newToken("t1", u.ID, "f1", base)
		d := devices.Start(rt, devices.Info{Name: "Laptop"}, "192.0.2.1")
		mustCreateDevice(t, s, d, rt)

		// Rotation: the sign-in lasts as long as its newest token.
		now := base.Add(time.Hour)
		next := newToken("t2", u.ID, "f1", now)
		_, err := s.UpdateRefreshToken(t.Context(), rt.Hash, func(r *store.RefreshToken) (*store.RefreshToken, error) {
			r.UsedAt = now
			return &next, nil
		})
		checkErr(t, "rotate", err, nil)
		want := d
		want.ExpiresAt, want.LastUsedAt = next.ExpiresAt, now
		checkDevice(t, "device after rotation", mustDevice(t, s, "f1"), want)

		// Reuse of the rotated token: ended for reuse_detected.
		reuse := now.Add(time.Minute)
		_, err = s.UpdateRefreshToken(t.Context(), rt.Hash, func(r *store.RefreshToken) (*store.RefreshToken, error) {
			refresh.Revoke(r, reuse)
			return nil, store.ErrTokenReused
		})
		checkSame(t, "reuse", err, store.ErrTokenReused)
		want.EndedAt, want.EndReason = reuse, api.ReasonReuseDetected
		checkDevice(t, "device after reuse", mustDevice(t, s, "f1"), want)

		// A revocation by the sign-in itself: signed_out.
		rt3 := newToken("t3", u.ID, "f3", base)
		mustCreateDevice(t, s, deviceOf(rt3), rt3)
		_, err = s.UpdateRefreshToken(t.Context(), rt3.Hash, func(r *store.RefreshToken) (*store.RefreshToken, error) {
			refresh.Revoke(r, now)
			return nil, nil
		})
		checkErr(t, "revoke", err, nil)
		if got := mustDevice(t, s, "f3"); !got.EndedAt.Equal(now) || got.EndReason != api.ReasonSignedOut {
			t.Errorf("revoked device: ended %v for %q, want %v for %q", got.EndedAt, got.EndReason, now, api.ReasonSignedOut)
		}
		// A refused change leaves the device alone.
		rt4 := newToken("t4", u.ID, "f4", base)
		mustCreateDevice(t, s, deviceOf(rt4), rt4)
		_, err = s.UpdateRefreshToken(t.Context(), rt4.Hash, func(r *store.RefreshToken) (*store.RefreshToken, error) {
			refresh.Revoke(r, now)
			return nil, store.ErrTokenInvalid
		})
		checkSame(t, "refused", err, store.ErrTokenInvalid)
		checkDevice(t, "device after a refused change", mustDevice(t, s, "f4"), deviceOf(rt4))
		// A family without a device (stored as it is) still rotates.
		bare := newToken("t5", u.ID, "f5", base)
		mustCreateToken(t, s, bare)
		next5 := newToken("t6", u.ID, "f5", now)
		_, err = s.UpdateRefreshToken(t.Context(), bare.Hash, func(r *store.RefreshToken) (*store.RefreshToken, error) {
			r.UsedAt = now
			return &next5, nil
		})
		checkErr(t, "rotate a family without a device", err, nil)
	})

	// Sign-outs racing each other and the sign-in's own refresh: every
	// one either ends the sign-in or finds it ended, none fails.
	t.Run("EndRaces", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		const n = 8
		for round := range 5 {
			family := "f" + ordinal(round)
			rt := newToken("t-"+family, u.ID, family, base)
			mustCreateDevice(t, s, deviceOf(rt), rt)
			errs := make([]error, 4*n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					_, errs[4*i] = s.EndDevice(t.Context(), u.ID, family, api.ReasonSignedOut, base.Add(time.Hour))
				})
				wg.Go(func() {
					<-start
					_, errs[4*i+1] = s.UpdateRefreshToken(t.Context(), rt.Hash, func(r *store.RefreshToken) (*store.RefreshToken, error) {
						refresh.Revoke(r, base.Add(time.Hour))
						return nil, nil
					})
				})
				wg.Go(func() {
					<-start
					errs[4*i+2] = s.RevokeUserTokens(t.Context(), u.ID, base.Add(time.Hour))
				})
				wg.Go(func() {
					<-start
					next := newToken("t-"+family+"-"+ordinal(i), u.ID, family, base.Add(time.Minute))
					_, errs[4*i+3] = s.UpdateRefreshToken(t.Context(), rt.Hash, func(r *store.RefreshToken) (*store.RefreshToken, error) {
						if !r.RevokedAt.IsZero() || !r.UsedAt.IsZero() {
							return nil, store.ErrTokenInvalid
						}
						r.UsedAt = base.Add(time.Minute)
						return &next, nil
					})
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrTokenInvalid) {
					t.Fatalf("round %d, call %d: %v", round, i, err)
				}
			}
			if d := mustDevice(t, s, family); !d.Ended() {
				t.Fatalf("round %d: the device survived its sign-outs: %+v", round, d)
			}
		}
	})

	t.Run("TouchDevice", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		d, rt := newDevice("d1", u.ID, base)
		mustCreateDevice(t, s, d, rt)
		later := base.Add(time.Hour)
		checkErr(t, "TouchDevice", s.TouchDevice(t.Context(), "d1", "203.0.113.9", later), nil)
		want := d
		want.LastUsedAt, want.LastIP = later, "203.0.113.9"
		checkDevice(t, "touched device", mustDevice(t, s, "d1"), want)
		// An older time (another server's clock) never moves it back.
		checkErr(t, "TouchDevice earlier", s.TouchDevice(t.Context(), "d1", "203.0.113.10", base.Add(time.Minute)), nil)
		want.LastIP = "203.0.113.10"
		checkDevice(t, "device touched with an earlier time", mustDevice(t, s, "d1"), want)

		checkErr(t, "TouchDevice unknown", s.TouchDevice(t.Context(), "nope", "203.0.113.9", later), store.ErrNotFound)
		_, err := s.EndDevice(t.Context(), u.ID, "d1", api.ReasonSignedOut, later)
		checkErr(t, "EndDevice", err, nil)
		checkErr(t, "TouchDevice ended", s.TouchDevice(t.Context(), "d1", "203.0.113.11", later.Add(time.Hour)), store.ErrNotFound)
		if got := mustDevice(t, s, "d1"); got.LastIP != "203.0.113.10" {
			t.Errorf("an ended device was touched: %+v", got)
		}
	})

	t.Run("DeleteOldDevices", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		mk := func(id string, expires time.Time) {
			d, rt := newDevice(id, u.ID, base)
			d.ExpiresAt, rt.ExpiresAt = expires, expires
			mustCreateDevice(t, s, d, rt)
		}
		mk("expired-long-ago", base.Add(time.Hour))
		mk("expired-recently", base.Add(3*time.Hour))
		mk("ended-long-ago", base.Add(24*time.Hour))
		mk("ended-recently", base.Add(24*time.Hour))
		mk("live", base.Add(24*time.Hour))
		_, err := s.EndDevice(t.Context(), u.ID, "ended-long-ago", api.ReasonSignedOut, base.Add(time.Hour))
		checkErr(t, "EndDevice", err, nil)
		_, err = s.EndDevice(t.Context(), u.ID, "ended-recently", api.ReasonSignedOut, base.Add(3*time.Hour))
		checkErr(t, "EndDevice", err, nil)

		n, err := s.DeleteOldDevices(t.Context(), base.Add(2*time.Hour))
		checkErr(t, "DeleteOldDevices", err, nil)
		if n != 2 {
			t.Errorf("DeleteOldDevices removed %d, want 2", n)
		}
		for id, kept := range map[string]bool{"expired-long-ago": false, "ended-long-ago": false,
			"expired-recently": true, "ended-recently": true, "live": true} {
			_, err := s.Device(t.Context(), id)
			if kept {
				checkErr(t, "Device "+id, err, nil)
			} else {
				checkErr(t, "Device "+id, err, store.ErrNotFound)
			}
		}
	})

	t.Run("GoWithTheirUser", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		d, rt := newDevice("d1", u.ID, base)
		mustCreateDevice(t, s, d, rt)
		checkErr(t, "DeleteUser", s.DeleteUser(t.Context(), u.ID), nil)
		_, err := s.Device(t.Context(), "d1")
		checkErr(t, "Device of a deleted user", err, store.ErrNotFound)
	})

	t.Run("GoWithTheirClient", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		checkErr(t, "CreateClient", s.CreateClient(t.Context(), store.Client{ID: "cli", Name: "App", CreatedAt: base}), nil)
		rt := newToken("t1", u.ID, "f1", base)
		rt.ClientID, rt.AMR = "cli", "qr"
		d := devices.Start(rt, devices.Info{AppName: "App"}, "192.0.2.1")
		mustCreateDevice(t, s, d, rt)
		if d.Kind != api.DeviceApp {
			t.Fatalf("kind %q, want app", d.Kind)
		}
		checkErr(t, "DeleteClient", s.DeleteClient(t.Context(), "cli"), nil)
		_, err := s.Device(t.Context(), "f1")
		checkErr(t, "Device of a deleted client", err, store.ErrNotFound)
	})
}

// testCopyDevices covers what moving a store needs: reading every device,
// storing one as it is, and bringing one forward on a later copy.
func testCopyDevices(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("ListDevices", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		live, rt := newDevice("b-live", u.ID, base)
		mustCreateDevice(t, s, live, rt)
		ended, rt := newDevice("a-ended", u.ID, base)
		mustCreateDevice(t, s, ended, rt)
		var err error
		ended, err = s.EndDevice(t.Context(), u.ID, ended.ID, api.ReasonSignedOut, base.Add(time.Minute))
		checkErr(t, "EndDevice", err, nil)
		expired, rt := newDevice("Z-expired", u.ID, base)
		expired.ExpiresAt, rt.ExpiresAt = base.Add(time.Minute), base.Add(time.Minute)
		mustCreateDevice(t, s, expired, rt)
		app := store.Device{ID: "c-app", UserID: u.ID, Kind: api.DeviceApp, ClientID: "cli", AppName: "Notes",
			CreatedAt: base, LastUsedAt: base, ExpiresAt: base.Add(15 * time.Minute)}
		checkErr(t, "ImportDevice", s.ImportDevice(t.Context(), app), nil)

		// Byte order: upper case before lower case, whatever the collation.
		want := []store.Device{expired, ended, live, app}
		all, err := s.ListDevices(t.Context(), "", 0)
		checkErr(t, "ListDevices", err, nil)
		if len(all) != len(want) {
			t.Fatalf("ListDevices returned %v, want %v", deviceIDs(all), deviceIDs(want))
		}
		for i := range want {
			checkDevice(t, "device "+want[i].ID, all[i], want[i])
		}
		var paged []string
		after := ""
		for range len(want) + 1 {
			page, err := s.ListDevices(t.Context(), after, 3)
			checkErr(t, "ListDevices page", err, nil)
			paged = append(paged, deviceIDs(page)...)
			if len(page) < 3 {
				break
			}
			after = page[len(page)-1].ID
		}
		if wantIDs := deviceIDs(want); !reflect.DeepEqual(paged, wantIDs) {
			t.Errorf("paged ids %v, want %v", paged, wantIDs)
		}
	})

	t.Run("ImportDevice", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		live, rt := newDevice("d-live", u.ID, base)
		mustCreateToken(t, s, rt) // copied before, without a device
		live.LastUsedAt, live.LastIP = base.Add(time.Hour), "203.0.113.9"
		live.CreatedAt = base.In(time.FixedZone("UTC+8", 8*3600))
		ended, _ := newDevice("d-ended", u.ID, base)
		ended.EndedAt, ended.EndReason = base.Add(2*time.Hour), api.ReasonPasswordChanged
		for _, d := range []store.Device{live, ended} {
			checkErr(t, "ImportDevice "+d.ID, s.ImportDevice(t.Context(), d), nil)
			checkDevice(t, "imported "+d.ID, mustDevice(t, s, d.ID), d)
		}
		if got := mustToken(t, s, rt); !got.RevokedAt.IsZero() {
			t.Error("importing a device touched its token")
		}
		if ds, err := s.Devices(t.Context(), u.ID, base.Add(time.Hour)); err != nil || !reflect.DeepEqual(deviceIDs(ds), []string{"d-live"}) {
			t.Errorf("Devices after import: %v, %v; want only the live one", deviceIDs(ds), err)
		}

		again := live
		again.Name = "another"
		checkErr(t, "ImportDevice with a taken id", s.ImportDevice(t.Context(), again), store.ErrConflict)
		checkDevice(t, "device after a refused import", mustDevice(t, s, live.ID), live)
		orphan, _ := newDevice("d-orphan", "nobody", base)
		checkErr(t, "ImportDevice for an unknown user", s.ImportDevice(t.Context(), orphan), store.ErrNotFound)
	})

	t.Run("CatchUpDevice", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		mustCreateUser(t, s, "u2", "bob")
		d, rt := newDevice("d1", u.ID, base)
		mustCreateDevice(t, s, d, rt)
		keep, keepRT := newDevice("d2", u.ID, base)
		mustCreateDevice(t, s, keep, keepRT)

		// Used and rotated in the source since: its use and expiry move on.
		src := d
		src.LastUsedAt, src.LastIP, src.ExpiresAt = base.Add(time.Hour), "203.0.113.7", d.ExpiresAt.Add(time.Hour)
		changed, err := s.CatchUpDevice(t.Context(), src)
		checkErr(t, "CatchUpDevice", err, nil)
		if !changed {
			t.Error("CatchUpDevice of a newer device reported no change")
		}
		checkDevice(t, "caught up", mustDevice(t, s, d.ID), src)
		if got := mustToken(t, s, rt); !got.RevokedAt.IsZero() {
			t.Error("catching up a live device revoked its token")
		}
		// An older copy moves nothing back.
		changed, err = s.CatchUpDevice(t.Context(), d)
		checkErr(t, "CatchUpDevice older", err, nil)
		if changed {
			t.Error("CatchUpDevice of an older device reported a change")
		}
		checkDevice(t, "not moved back", mustDevice(t, s, d.ID), src)

		// Ended in the source: ended here with its reason, its chain
		// revoked, the other device untouched.
		end := base.Add(2 * time.Hour)
		src.EndedAt, src.EndReason = end, api.ReasonPasswordChanged
		changed, err = s.CatchUpDevice(t.Context(), src)
		checkErr(t, "CatchUpDevice ended", err, nil)
		if !changed {
			t.Error("CatchUpDevice of an ended device reported no change")
		}
		checkDevice(t, "ended", mustDevice(t, s, d.ID), src)
		if got := mustToken(t, s, rt); !got.RevokedAt.Equal(end) {
			t.Errorf("the ended device's token: revoked at %v, want %v", got.RevokedAt, end)
		}
		if got := mustToken(t, s, keepRT); !got.RevokedAt.IsZero() {
			t.Error("another device's token was revoked")
		}
		// Never un-ended, nor its reason changed.
		for _, other := range []store.Device{d, func() store.Device {
			o := src
			o.EndedAt, o.EndReason = end.Add(time.Hour), api.ReasonSignedOut
			return o
		}()} {
			changed, err = s.CatchUpDevice(t.Context(), other)
			checkErr(t, "CatchUpDevice of an ended device", err, nil)
			if changed {
				t.Error("CatchUpDevice changed an ended device")
			}
			checkDevice(t, "still ended", mustDevice(t, s, d.ID), src)
		}

		// Another sign-in under the id is refused, and changes nothing.
		for _, change := range []func(*store.Device){
			func(x *store.Device) { x.UserID = "u2" },
			func(x *store.Device) { x.Kind = api.DeviceDesktop },
			func(x *store.Device) { x.ClientID = "cli" },
		} {
			o := keep
			o.ExpiresAt, o.EndedAt, o.EndReason = keep.ExpiresAt.Add(time.Hour), end, api.ReasonSignedOut
			change(&o)
			_, err := s.CatchUpDevice(t.Context(), o)
			checkErr(t, "CatchUpDevice of another sign-in", err, store.ErrConflict)
		}
		checkDevice(t, "after refused catch-ups", mustDevice(t, s, keep.ID), keep)
		if got := mustToken(t, s, keepRT); !got.RevokedAt.IsZero() {
			t.Error("a refused catch-up revoked a token")
		}
		nope := keep
		nope.ID = "nope"
		_, err = s.CatchUpDevice(t.Context(), nope)
		checkErr(t, "CatchUpDevice unknown", err, store.ErrNotFound)
	})
}
