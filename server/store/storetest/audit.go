package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
)

func testAudit(t *testing.T, newStore func(t *testing.T) store.Store) {
	entries := []audit.Entry{
		{Time: base, Event: audit.PasswordSignIn, UserID: "u1", Username: "alice", DeviceID: "fam-1",
			Device: "iPhone", IP: "192.0.2.1"},
		{Time: base.Add(time.Minute), Event: audit.PasswordSignInFailed, Username: "mallory 马",
			IP: "2001:db8::1", Detail: map[string]string{"reason": "wrong password"}},
		{Time: base.Add(2 * time.Minute), Event: audit.TokensDelivered, UserID: "u2", Username: "bob",
			DeviceID: "fam-2", Device: "Bob's laptop", IP: "192.0.2.2", Detail: map[string]string{"client_id": "cli", "amr": "qr"}},
		{Time: base.Add(3 * time.Minute), Event: audit.KeyRotated, Detail: map[string]string{"kid": "k1"}},
		{Time: base.Add(4 * time.Minute), Event: audit.SessionConfirmed, UserID: "u1", Username: "alice", DeviceID: "s1", Device: "Desk"},
	}
	appendAll := func(t *testing.T, s store.Store) []audit.Entry {
		t.Helper()
		for _, e := range entries {
			checkErr(t, "AppendAudit "+string(e.Event), s.AppendAudit(t.Context(), e), nil)
		}
		got, err := s.AuditEntries(t.Context(), store.AuditQuery{})
		checkErr(t, "AuditEntries", err, nil)
		return got
	}

	t.Run("AppendAndRead", func(t *testing.T) {
		s := newStore(t)
		got := appendAll(t, s)
		if len(got) != len(entries) {
			t.Fatalf("AuditEntries returned %d entries, want %d", len(got), len(entries))
		}
		var last int64
		for i, g := range got {
			if g.ID <= last {
				t.Errorf("entry %d has id %d after %d: ids must increase", i, g.ID, last)
			}
			last = g.ID
			want := entries[i]
			want.ID = g.ID
			checkEntry(t, "entry "+ordinal(i), g, want)
		}
	})

	t.Run("Query", func(t *testing.T) {
		s := newStore(t)
		all := appendAll(t, s)
		for _, tt := range []struct {
			name string
			q    store.AuditQuery
			want []int // indexes into all
		}{
			{"user", store.AuditQuery{UserID: "u1"}, []int{0, 4}},
			{"unknown user", store.AuditQuery{UserID: "nobody"}, nil},
			{"since is inclusive", store.AuditQuery{Since: base.Add(2 * time.Minute)}, []int{2, 3, 4}},
			{"user and since", store.AuditQuery{UserID: "u1", Since: base.Add(time.Second)}, []int{4}},
			{"limit keeps the oldest", store.AuditQuery{Limit: 2}, []int{0, 1}},
			{"next page", store.AuditQuery{AfterID: all[1].ID, Limit: 2}, []int{2, 3}},
			{"last page", store.AuditQuery{AfterID: all[3].ID, Limit: 2}, []int{4}},
			{"past the end", store.AuditQuery{AfterID: all[4].ID}, nil},
		} {
			got, err := s.AuditEntries(t.Context(), tt.q)
			checkErr(t, tt.name, err, nil)
			var ids, want []int64
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			for _, i := range tt.want {
				want = append(want, all[i].ID)
			}
			if !reflect.DeepEqual(ids, want) {
				t.Errorf("%s: ids %v, want %v", tt.name, ids, want)
			}
		}
	})

	t.Run("DeleteBefore", func(t *testing.T) {
		s := newStore(t)
		all := appendAll(t, s)
		n, err := s.DeleteAuditBefore(t.Context(), base.Add(2*time.Minute))
		checkErr(t, "DeleteAuditBefore", err, nil)
		if n != 2 {
			t.Errorf("DeleteAuditBefore removed %d entries, want 2", n)
		}
		left, err := s.AuditEntries(t.Context(), store.AuditQuery{})
		checkErr(t, "AuditEntries", err, nil)
		if len(left) != 3 || left[0].ID != all[2].ID {
			t.Fatalf("after pruning: %+v, want the last three", left)
		}
		// Pruning everything never lets an id come back.
		_, err = s.DeleteAuditBefore(t.Context(), base.Add(time.Hour))
		checkErr(t, "DeleteAuditBefore all", err, nil)
		checkErr(t, "AppendAudit", s.AppendAudit(t.Context(), entries[0]), nil)
		again, err := s.AuditEntries(t.Context(), store.AuditQuery{})
		checkErr(t, "AuditEntries", err, nil)
		if len(again) != 1 || again[0].ID <= all[4].ID {
			t.Errorf("an entry appended after pruning got id %v, want above %d", again, all[4].ID)
		}
	})

	t.Run("KeepsGivenID", func(t *testing.T) {
		s := newStore(t)
		copied := entries[2]
		copied.ID = 1000
		checkErr(t, "AppendAudit with id", s.AppendAudit(t.Context(), copied), nil)
		checkErr(t, "AppendAudit with a taken id", s.AppendAudit(t.Context(), copied), store.ErrConflict)
		checkErr(t, "AppendAudit", s.AppendAudit(t.Context(), entries[0]), nil)
		got, err := s.AuditEntries(t.Context(), store.AuditQuery{})
		checkErr(t, "AuditEntries", err, nil)
		if len(got) != 2 {
			t.Fatalf("AuditEntries = %+v, want 2 entries", got)
		}
		checkEntry(t, "copied entry", got[0], copied)
		if got[1].ID <= 1000 {
			t.Errorf("the entry appended after a copied id 1000 got id %d", got[1].ID)
		}
	})

	t.Run("OutlivesUser", func(t *testing.T) {
		s := newStore(t)
		u := mustCreateUser(t, s, "u1", "alice")
		checkErr(t, "AppendAudit", s.AppendAudit(t.Context(), entries[0]), nil)
		checkErr(t, "DeleteUser", s.DeleteUser(t.Context(), u.ID), nil)
		got, err := s.AuditEntries(t.Context(), store.AuditQuery{UserID: u.ID})
		checkErr(t, "AuditEntries", err, nil)
		if len(got) != 1 {
			t.Errorf("a deleted user's entries: %+v, want the one recorded", got)
		}
	})
}

func checkEntry(t *testing.T, what string, got, want audit.Entry) {
	t.Helper()
	checkUTC(t, what, got.Time)
	got.Time, want.Time = utc(got.Time), utc(want.Time)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// testListRefreshTokens: RefreshTokens lists every token in every state,
// page by page, for store copy.
func testListRefreshTokens(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	u := mustCreateUser(t, s, "u1", "alice")
	live := newToken("t-a", u.ID, "f1", base)
	used := newToken("t-b", u.ID, "f1", base)
	used.UsedAt = base.Add(time.Minute)
	revoked := newToken("t-c", u.ID, "f2", base)
	revoked.RevokedAt = base.Add(time.Minute)
	phone := newToken("t-d", u.ID, "f3", base)
	phone.Kind, phone.ClientID, phone.Scope = refresh.KindPhone, "", ""
	app := newToken("t-e", u.ID, "f4", base)
	app.ClientID, app.Scope = "cli", "openid offline_access"
	want := []store.RefreshToken{live, used, revoked, phone, app}
	for _, rt := range []store.RefreshToken{app, revoked, live, phone, used} {
		mustCreateToken(t, s, rt)
	}

	all, err := s.RefreshTokens(t.Context(), "", 0)
	checkErr(t, "RefreshTokens", err, nil)
	if len(all) != len(want) {
		t.Fatalf("RefreshTokens returned %d tokens, want %d", len(all), len(want))
	}
	for i := range want {
		checkToken(t, "token "+want[i].ID, all[i], want[i])
	}
	var paged []string
	after := ""
	for range len(want) + 1 {
		page, err := s.RefreshTokens(t.Context(), after, 2)
		checkErr(t, "RefreshTokens page", err, nil)
		if len(page) == 0 {
			break
		}
		for _, rt := range page {
			paged = append(paged, rt.ID)
		}
		after = page[len(page)-1].ID
	}
	if wantIDs := []string{"t-a", "t-b", "t-c", "t-d", "t-e"}; !reflect.DeepEqual(paged, wantIDs) {
		t.Errorf("paged ids %v, want %v", paged, wantIDs)
	}
}
