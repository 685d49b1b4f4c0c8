package login_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/login"
)

var (
	t0      = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	expires = t0.Add(2 * time.Minute)
	before  = expires.Add(-time.Second)
)

// session returns a session in state st; scanned states belong to "alice".
func session(st login.Status) login.Session {
	s := login.Session{ID: "s1", Status: st, CreatedAt: t0, ExpiresAt: expires}
	if st != login.Pending {
		s.UserID, s.UserDisplayName, s.ScannedAt = "alice", "Alice", t0
	}
	return s
}

type transition func(s *login.Session, now time.Time) error

var (
	scanAlice    = func(s *login.Session, now time.Time) error { return login.Scan(s, "alice", "Alice", now) }
	scanBob      = func(s *login.Session, now time.Time) error { return login.Scan(s, "bob", "Bob", now) }
	confirmAlice = func(s *login.Session, now time.Time) error { return login.Confirm(s, "alice", now) }
	confirmBob   = func(s *login.Session, now time.Time) error { return login.Confirm(s, "bob", now) }
	cancelAlice  = func(s *login.Session, now time.Time) error { return login.Cancel(s, "alice", now) }
	cancelBob    = func(s *login.Session, now time.Time) error { return login.Cancel(s, "bob", now) }
	withdraw     = login.Withdraw
	deliver      = login.Deliver
)

func TestTransitions(t *testing.T) {
	tests := []struct {
		name string
		from login.Status
		do   transition
		now  time.Time
		err  error
		to   login.Status
	}{
		{"scan pending", login.Pending, scanAlice, before, nil, login.Scanned},
		{"scan again by scanner", login.Scanned, scanAlice, before, nil, login.Scanned},
		{"scan scanned by another", login.Scanned, scanBob, before, login.ErrInvalidState, login.Scanned},
		{"scan confirmed", login.Confirmed, scanAlice, before, login.ErrInvalidState, login.Confirmed},
		{"scan consumed", login.Consumed, scanAlice, before, login.ErrInvalidState, login.Consumed},
		{"scan cancelled", login.Cancelled, scanAlice, before, login.ErrInvalidState, login.Cancelled},
		{"scan expired", login.Pending, scanAlice, expires, login.ErrExpired, login.Pending},

		{"confirm scanned", login.Scanned, confirmAlice, before, nil, login.Confirmed},
		{"confirm by another user", login.Scanned, confirmBob, before, login.ErrForbidden, login.Scanned},
		{"confirm pending", login.Pending, confirmAlice, before, login.ErrInvalidState, login.Pending},
		{"confirm twice", login.Confirmed, confirmAlice, before, login.ErrInvalidState, login.Confirmed},
		{"confirm cancelled", login.Cancelled, confirmAlice, before, login.ErrInvalidState, login.Cancelled},
		{"confirm expired", login.Scanned, confirmAlice, expires, login.ErrExpired, login.Scanned},

		{"cancel pending by anyone", login.Pending, cancelBob, before, nil, login.Cancelled},
		{"cancel scanned by scanner", login.Scanned, cancelAlice, before, nil, login.Cancelled},
		{"cancel scanned by another", login.Scanned, cancelBob, before, login.ErrForbidden, login.Scanned},
		{"cancel confirmed", login.Confirmed, cancelAlice, before, login.ErrInvalidState, login.Confirmed},
		{"cancel consumed", login.Consumed, cancelAlice, before, login.ErrInvalidState, login.Consumed},
		{"cancel cancelled", login.Cancelled, cancelAlice, before, login.ErrInvalidState, login.Cancelled},
		{"cancel expired", login.Pending, cancelAlice, expires, login.ErrExpired, login.Pending},

		{"withdraw pending", login.Pending, withdraw, before, nil, login.Cancelled},
		{"withdraw scanned", login.Scanned, withdraw, before, nil, login.Cancelled},
		{"withdraw confirmed", login.Confirmed, withdraw, before, nil, login.Cancelled},
		{"withdraw twice", login.Cancelled, withdraw, before, nil, login.Cancelled},
		{"withdraw consumed", login.Consumed, withdraw, before, login.ErrConsumed, login.Consumed},
		{"withdraw expired", login.Scanned, withdraw, expires, login.ErrExpired, login.Scanned},

		{"deliver confirmed", login.Confirmed, deliver, before, nil, login.Consumed},
		{"deliver twice", login.Consumed, deliver, before, login.ErrConsumed, login.Consumed},
		{"deliver consumed after expiry", login.Consumed, deliver, expires.Add(time.Hour), login.ErrConsumed, login.Consumed},
		{"deliver scanned", login.Scanned, deliver, before, login.ErrInvalidState, login.Scanned},
		{"deliver pending", login.Pending, deliver, before, login.ErrInvalidState, login.Pending},
		{"deliver cancelled", login.Cancelled, deliver, before, login.ErrInvalidState, login.Cancelled},
		{"deliver expired", login.Confirmed, deliver, expires, login.ErrExpired, login.Confirmed},

		// Marked expired by the sweeper: the same as expired by the clock.
		{"scan marked expired", login.Expired, scanAlice, before, login.ErrExpired, login.Expired},
		{"confirm marked expired", login.Expired, confirmAlice, before, login.ErrExpired, login.Expired},
		{"cancel marked expired", login.Expired, cancelAlice, before, login.ErrExpired, login.Expired},
		{"withdraw marked expired", login.Expired, withdraw, before, login.ErrExpired, login.Expired},
		{"deliver marked expired", login.Expired, deliver, before, login.ErrExpired, login.Expired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := session(tt.from)
			orig := s
			err := tt.do(&s, tt.now)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if s.Status != tt.to {
				t.Fatalf("status = %s, want %s", s.Status, tt.to)
			}
			if err != nil && !reflect.DeepEqual(s, orig) {
				t.Fatalf("refused transition changed the session: %+v", s)
			}
		})
	}
}

func TestScanRecordsUser(t *testing.T) {
	s := session(login.Pending)
	if err := login.Scan(&s, "bob", "Bob", before); err != nil {
		t.Fatal(err)
	}
	if s.UserID != "bob" || s.UserDisplayName != "Bob" || !s.ScannedAt.Equal(before) {
		t.Fatalf("scan recorded %+v", s)
	}
}

func TestConfirmRecordsTime(t *testing.T) {
	s := session(login.Scanned)
	if err := login.Confirm(&s, "alice", before); err != nil || !s.ConfirmedAt.Equal(before) {
		t.Fatalf("confirm: err %v, confirmed at %v", err, s.ConfirmedAt)
	}
}

func TestEndedAtIsSet(t *testing.T) {
	for name, do := range map[string]transition{"cancel": cancelAlice, "withdraw": withdraw} {
		s := session(login.Scanned)
		if err := do(&s, before); err != nil || !s.EndedAt.Equal(before) {
			t.Errorf("%s: err %v, ended at %v", name, err, s.EndedAt)
		}
	}
	s := session(login.Confirmed)
	if err := login.Deliver(&s, before); err != nil || !s.EndedAt.Equal(before) {
		t.Errorf("deliver: err %v, ended at %v", err, s.EndedAt)
	}
}

func TestStatusAtAndEndedBy(t *testing.T) {
	tests := []struct {
		name   string
		s      login.Session
		now    time.Time
		status login.Status
		ended  time.Time
	}{
		{"pending before expiry", session(login.Pending), before, login.Pending, time.Time{}},
		{"pending at expiry", session(login.Pending), expires, login.Expired, expires},
		{"confirmed after expiry", session(login.Confirmed), expires.Add(time.Hour), login.Expired, expires},
		{"cancelled keeps its end", func() login.Session { s := session(login.Cancelled); s.EndedAt = before; return s }(), expires.Add(time.Hour), login.Cancelled, before},
		{"consumed keeps its end", func() login.Session { s := session(login.Consumed); s.EndedAt = t0; return s }(), before, login.Consumed, t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.StatusAt(tt.now); got != tt.status {
				t.Errorf("StatusAt = %s, want %s", got, tt.status)
			}
			if got := tt.s.EndedBy(tt.now); !got.Equal(tt.ended) {
				t.Errorf("EndedBy = %v, want %v", got, tt.ended)
			}
		})
	}
}

func TestLive(t *testing.T) {
	for st, live := range map[login.Status]bool{
		login.Pending: true, login.Scanned: true, login.Confirmed: true,
		login.Consumed: false, login.Cancelled: false, login.Expired: false,
	} {
		if st.Live() != live {
			t.Errorf("%s.Live() = %v", st, !live)
		}
	}
}

func TestNotePoll(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name         string
		last         time.Time // zero: first poll
		at           time.Time
		err          error
		wantInterval time.Duration
	}{
		{name: "first poll after the interval", at: t0.Add(5 * time.Second), wantInterval: 5 * time.Second},
		{name: "first poll too soon", at: t0.Add(4 * time.Second), err: login.ErrSlowDown, wantInterval: 10 * time.Second},
		{name: "next poll on time", last: t0.Add(10 * time.Second), at: t0.Add(15 * time.Second), wantInterval: 5 * time.Second},
		{name: "next poll too soon", last: t0.Add(10 * time.Second), at: t0.Add(14 * time.Second), err: login.ErrSlowDown, wantInterval: 10 * time.Second},
		{name: "same instant", last: t0.Add(10 * time.Second), at: t0.Add(10 * time.Second), err: login.ErrSlowDown, wantInterval: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := login.Session{Status: login.Pending, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), PollInterval: 5 * time.Second, LastPollAt: tt.last}
			err := login.NotePoll(&s, tt.at)
			if !errors.Is(err, tt.err) {
				t.Fatalf("NotePoll = %v, want %v", err, tt.err)
			}
			if s.PollInterval != tt.wantInterval {
				t.Errorf("PollInterval = %v, want %v", s.PollInterval, tt.wantInterval)
			}
			if !s.LastPollAt.Equal(tt.at) {
				t.Errorf("LastPollAt = %v, want the poll %v", s.LastPollAt, tt.at)
			}
		})
	}
	// Slowing down again grows the interval again: 5 s more each time.
	s := login.Session{Status: login.Pending, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), PollInterval: 5 * time.Second}
	for i, want := range []time.Duration{10, 15, 20} {
		if err := login.NotePoll(&s, t0.Add(time.Duration(i)*time.Second)); !errors.Is(err, login.ErrSlowDown) {
			t.Fatalf("poll %d: %v, want slow down", i, err)
		}
		if s.PollInterval != want*time.Second {
			t.Errorf("after slow down %d: interval %v, want %v", i+1, s.PollInterval, want*time.Second)
		}
	}
}
