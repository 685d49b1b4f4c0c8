package devices_test

import (
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/shared/api"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func TestKind(t *testing.T) {
	for _, tt := range []struct{ amr, client, want string }{
		{"qr", "", api.DeviceDesktop},
		{"pwd", "", api.DevicePhone},
		{"qr", "cli", api.DeviceApp},
		{"pwd", "cli", api.DeviceApp},
	} {
		if got := devices.Kind(tt.amr, tt.client); got != tt.want {
			t.Errorf("Kind(%q, %q) = %q, want %q", tt.amr, tt.client, got, tt.want)
		}
	}
}

func TestStartAndFromSession(t *testing.T) {
	rt := refresh.Policy{TTL: time.Hour}.Start(refresh.KindRefresh, "u1", "qr", "t1", "f1", []byte("h"), t0)
	d := devices.Start(rt, devices.Info{}, "")
	if d.ID != "f1" || d.UserID != "u1" || d.Kind != api.DeviceDesktop || !d.CreatedAt.Equal(t0) || !d.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Start: %+v", d)
	}
	s := login.Session{UserID: "u2", Device: login.Device{Name: "Laptop", Platform: "linux", AppName: "qrlogin", IP: "192.0.2.5"}}
	devices.FromSession(&d, s)
	if d.UserID != "u2" || d.Name != "Laptop" || d.AppName != "qrlogin" || d.IP != "192.0.2.5" || d.LastIP != "192.0.2.5" {
		t.Errorf("FromSession: %+v", d)
	}
	app := devices.Device{AppName: "Registered name", CreatedAt: t0}
	devices.FromSession(&app, s)
	if app.AppName != "Registered name" || !app.LastUsedAt.Equal(t0) {
		t.Errorf("an app keeps its registered name: %+v", app)
	}
}

func TestLiveNewEnd(t *testing.T) {
	d := devices.Device{CreatedAt: t0, ExpiresAt: t0.Add(48 * time.Hour)}
	for _, tt := range []struct {
		at        time.Time
		live, new bool
	}{
		{t0, true, true},
		{t0.Add(24*time.Hour - time.Second), true, true},
		{t0.Add(24 * time.Hour), true, false},
		{t0.Add(48 * time.Hour), false, false},
	} {
		if d.Live(tt.at) != tt.live || d.New(tt.at) != tt.new {
			t.Errorf("at %v: live %v new %v, want %v %v", tt.at.Sub(t0), d.Live(tt.at), d.New(tt.at), tt.live, tt.new)
		}
	}
	devices.End(&d, api.ReasonSignedOut, t0.Add(time.Hour))
	devices.End(&d, api.ReasonLogoutAll, t0.Add(2*time.Hour))
	if !d.Ended() || d.Live(t0.Add(time.Hour)) || d.EndReason != api.ReasonSignedOut || !d.EndedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("the first end stands: %+v", d)
	}
	if devices.RevokeReason(true) != api.ReasonReuseDetected || devices.RevokeReason(false) != api.ReasonSignedOut {
		t.Error("RevokeReason")
	}
}

func TestRotated(t *testing.T) {
	d := devices.Device{LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	devices.Rotated(&d, refresh.Token{CreatedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(2 * time.Hour)})
	if !d.LastUsedAt.Equal(t0.Add(time.Minute)) || !d.ExpiresAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("Rotated: %+v", d)
	}
	// A successor clamped by the chain's maximum age never shortens it
	// below what it was, and time never goes back.
	devices.Rotated(&d, refresh.Token{CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	if !d.LastUsedAt.Equal(t0.Add(time.Minute)) || !d.ExpiresAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("Rotated backwards: %+v", d)
	}
}

func TestTouch(t *testing.T) {
	d := devices.Device{LastUsedAt: t0, LastIP: "192.0.2.1"}
	for _, tt := range []struct {
		ip   string
		at   time.Time
		want bool
	}{
		{"192.0.2.1", t0.Add(59 * time.Second), false},
		{"192.0.2.1", t0.Add(devices.TouchInterval), true},
		{"192.0.2.2", t0.Add(time.Second), true},
	} {
		if got := devices.TouchDue(d, tt.ip, tt.at); got != tt.want {
			t.Errorf("TouchDue(%s, +%v) = %v, want %v", tt.ip, tt.at.Sub(t0), got, tt.want)
		}
	}
	ended := d
	devices.End(&ended, api.ReasonSignedOut, t0)
	if devices.TouchDue(ended, "192.0.2.9", t0.Add(time.Hour)) {
		t.Error("an ended device is never touched")
	}
	devices.Touch(&d, "192.0.2.3", t0.Add(-time.Hour))
	if !d.LastUsedAt.Equal(t0) || d.LastIP != "192.0.2.3" {
		t.Errorf("Touch with an older time: %+v", d)
	}
}

func TestEventKey(t *testing.T) {
	if got := devices.EventKey("u1"); got != "user:u1" {
		t.Errorf("EventKey = %q", got)
	}
	if got := devices.SweepCutoff(t0); !got.Equal(t0.Add(-devices.Retention)) {
		t.Errorf("SweepCutoff = %v", got)
	}
}

func TestCatchUp(t *testing.T) {
	d := devices.Device{ID: "d1", UserID: "u1", Kind: api.DevicePhone, LastUsedAt: t0, LastIP: "192.0.2.1", ExpiresAt: t0.Add(time.Hour)}
	ended := d
	ended.EndedAt, ended.EndReason = t0.Add(time.Minute), api.ReasonLogoutAll
	for _, tt := range []struct {
		name    string
		d, src  devices.Device
		want    devices.Device
		changed bool
	}{
		{"same", d, d, d, false},
		{"older source", d, devices.Device{LastUsedAt: t0.Add(-time.Hour), LastIP: "x", ExpiresAt: t0}, d, false},
		{"used and rotated since", d,
			devices.Device{LastUsedAt: t0.Add(time.Minute), LastIP: "192.0.2.2", ExpiresAt: t0.Add(2 * time.Hour)},
			devices.Device{ID: "d1", UserID: "u1", Kind: api.DevicePhone, LastUsedAt: t0.Add(time.Minute), LastIP: "192.0.2.2", ExpiresAt: t0.Add(2 * time.Hour)},
			true},
		{"ended since", d, ended, ended, true},
		{"ended here first", ended,
			devices.Device{LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour), EndedAt: t0.Add(time.Hour), EndReason: api.ReasonSignedOut},
			ended, false},
		{"never un-ended", ended, d, ended, false},
	} {
		got := tt.d
		if changed := devices.CatchUp(&got, tt.src); changed != tt.changed || got != tt.want {
			t.Errorf("%s: CatchUp = %v, %+v; want %v, %+v", tt.name, changed, got, tt.changed, tt.want)
		}
	}
	other := d
	if !devices.SameSignIn(d, other) {
		t.Error("SameSignIn of a device and itself")
	}
	for _, change := range []func(*devices.Device){
		func(x *devices.Device) { x.UserID = "u2" },
		func(x *devices.Device) { x.Kind = api.DeviceApp },
		func(x *devices.Device) { x.ClientID = "cli" },
	} {
		o := d
		change(&o)
		if devices.SameSignIn(d, o) {
			t.Errorf("SameSignIn(%+v, %+v)", d, o)
		}
	}
}
