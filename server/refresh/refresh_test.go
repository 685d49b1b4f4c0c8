package refresh_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/refresh"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var policy = refresh.Policy{TTL: 30 * 24 * time.Hour, MaxAge: 90 * 24 * time.Hour}

func TestStart(t *testing.T) {
	rt := policy.Start(refresh.KindRefresh, "u1", "qr", "t1", "f1", []byte("h"), t0)
	if rt.UserID != "u1" || rt.FamilyID != "f1" || rt.Kind != refresh.KindRefresh || rt.AMR != "qr" ||
		!rt.AuthTime.Equal(t0) || !rt.CreatedAt.Equal(t0) || !rt.ExpiresAt.Equal(t0.Add(policy.TTL)) {
		t.Errorf("Start = %+v", rt)
	}
	// A max age shorter than the TTL caps the first token too.
	short := refresh.Policy{TTL: time.Hour, MaxAge: time.Minute}
	if rt := short.Start(refresh.KindPhone, "u1", "pwd", "p1", "f2", nil, t0); !rt.ExpiresAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("ExpiresAt = %v, want capped at the max age", rt.ExpiresAt)
	}
}

func TestRotate(t *testing.T) {
	live := policy.Start(refresh.KindRefresh, "u1", "pwd", "t1", "f1", []byte("h1"), t0)
	tests := []struct {
		name    string
		edit    func(*refresh.Token)
		at      time.Time
		err     error
		revoked bool // rt comes back revoked (reuse)
	}{
		{name: "live", at: t0.Add(time.Hour)},
		{name: "just before expiry", at: t0.Add(policy.TTL - time.Nanosecond)},
		{name: "at expiry", at: t0.Add(policy.TTL), err: refresh.ErrInvalid},
		{name: "revoked", edit: func(rt *refresh.Token) { rt.RevokedAt = t0 }, at: t0.Add(time.Hour), err: refresh.ErrInvalid},
		{name: "used", edit: func(rt *refresh.Token) { rt.UsedAt = t0 }, at: t0.Add(time.Hour), err: refresh.ErrReused, revoked: true},
		{name: "used and revoked", edit: func(rt *refresh.Token) { rt.UsedAt, rt.RevokedAt = t0, t0 }, at: t0.Add(time.Hour), err: refresh.ErrReused, revoked: true},
		{name: "phone cookie", edit: func(rt *refresh.Token) { rt.Kind = refresh.KindPhone }, at: t0.Add(time.Hour), err: refresh.ErrInvalid},
		{name: "chain at max age, token fresh", edit: func(rt *refresh.Token) {
			rt.AuthTime = t0.Add(-policy.MaxAge + time.Hour)
		}, at: t0.Add(time.Hour), err: refresh.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := live
			if tt.edit != nil {
				tt.edit(&rt)
			}
			before := rt
			next, err := policy.Rotate(&rt, "", "t2", []byte("h2"), tt.at)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Rotate = %v, want %v", err, tt.err)
			}
			switch {
			case tt.revoked:
				if rt.RevokedAt.IsZero() {
					t.Error("a reused token was not revoked")
				}
			case err != nil:
				if rt.UsedAt != before.UsedAt || rt.RevokedAt != before.RevokedAt {
					t.Errorf("a refused token changed: %+v", rt)
				}
			default:
				if !rt.UsedAt.Equal(tt.at) {
					t.Errorf("UsedAt = %v, want %v", rt.UsedAt, tt.at)
				}
				if next.ID != "t2" || next.UserID != "u1" || next.FamilyID != "f1" || next.Kind != refresh.KindRefresh ||
					next.AMR != "pwd" || !next.AuthTime.Equal(rt.AuthTime) || !next.CreatedAt.Equal(tt.at) {
					t.Errorf("successor %+v does not continue the family", next)
				}
			}
		})
	}
}

// However often a chain is refreshed, its tokens never outlive MaxAge.
func TestRotateCapsExpiry(t *testing.T) {
	p := refresh.Policy{TTL: 24 * time.Hour, MaxAge: 72 * time.Hour}
	rt := p.Start(refresh.KindRefresh, "u1", "pwd", "t0", "f1", nil, t0)
	now := t0
	for i := range 3 {
		now = now.Add(20 * time.Hour)
		next, err := p.Rotate(&rt, "", "t", nil, now)
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		rt = next
	}
	if want := t0.Add(72 * time.Hour); !rt.ExpiresAt.Equal(want) {
		t.Errorf("token made at %v expires %v, want the chain's end %v", now, rt.ExpiresAt, want)
	}
	if _, err := p.Rotate(&rt, "", "t", nil, t0.Add(72*time.Hour)); !errors.Is(err, refresh.ErrInvalid) {
		t.Errorf("rotation at the chain's end: %v, want ErrInvalid", err)
	}
}

func TestLiveAndRevoke(t *testing.T) {
	ck := policy.Start(refresh.KindPhone, "u1", "pwd", "p1", "f1", nil, t0)
	if err := policy.Live(ck, refresh.KindPhone, t0); err != nil {
		t.Errorf("a new phone cookie: %v", err)
	}
	if err := policy.Live(ck, refresh.KindRefresh, t0); !errors.Is(err, refresh.ErrInvalid) {
		t.Errorf("a phone cookie as a refresh token: %v", err)
	}
	refresh.Revoke(&ck, t0.Add(time.Minute))
	refresh.Revoke(&ck, t0.Add(time.Hour))
	if !ck.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("RevokedAt = %v, want the first revocation", ck.RevokedAt)
	}
	if err := policy.Live(ck, refresh.KindPhone, t0.Add(2*time.Minute)); !errors.Is(err, refresh.ErrInvalid) {
		t.Errorf("a revoked phone cookie: %v", err)
	}
}

// A client's token works only for that client, and carries its client and
// scope to its successor; presented by anyone else it changes nothing.
func TestRotateBindsClient(t *testing.T) {
	own := policy.Start(refresh.KindRefresh, "u1", "qr", "t1", "f1", []byte("h1"), t0)
	own.ClientID, own.Scope = "app", "openid offline_access"
	tests := []struct {
		name      string
		rt        refresh.Token
		presenter string
		err       error
	}{
		{name: "its client", rt: own, presenter: "app"},
		{name: "another client", rt: own, presenter: "other", err: refresh.ErrInvalid},
		{name: "the qrlogin API", rt: own, presenter: "", err: refresh.ErrInvalid},
		{name: "an API token at a client", rt: policy.Start(refresh.KindRefresh, "u1", "qr", "t1", "f1", nil, t0), presenter: "app", err: refresh.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := tt.rt
			rt.UsedAt = time.Time{}
			if tt.err != nil {
				// Even an already used token is not revoked by a stranger.
				rt.UsedAt = t0
			}
			before := rt
			next, err := policy.Rotate(&rt, tt.presenter, "t2", []byte("h2"), t0.Add(time.Minute))
			if !errors.Is(err, tt.err) {
				t.Fatalf("Rotate = %v, want %v", err, tt.err)
			}
			if err != nil {
				if !reflect.DeepEqual(rt, before) {
					t.Errorf("a refused token changed: %+v", rt)
				}
				return
			}
			if next.ClientID != "app" || next.Scope != own.Scope {
				t.Errorf("successor client %q scope %q, want the family's", next.ClientID, next.Scope)
			}
		})
	}
}
