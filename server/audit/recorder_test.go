package audit_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/requestid"
)

type appender struct {
	got []audit.Entry
	err error
	ctx error // ctx.Err() seen by the last AppendAudit
}

func (a *appender) AppendAudit(ctx context.Context, e audit.Entry) error {
	a.ctx = ctx.Err()
	if a.err != nil {
		return a.err
	}
	a.got = append(a.got, e)
	return nil
}

func TestRecorderStampsAndStores(t *testing.T) {
	at := time.Date(2026, 3, 14, 9, 26, 53, 123456789, time.FixedZone("CET", 3600))
	var st appender
	r := audit.NewRecorder(&st, nil, func() time.Time { return at })
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client hung up: the event still happened
	r.Record(ctx, audit.Entry{Event: audit.PasswordSignIn, UserID: "u1"})
	given := at.Add(-time.Hour)
	r.Record(context.Background(), audit.Entry{Event: audit.KeyRotated, Time: given})

	if len(st.got) != 2 {
		t.Fatalf("stored %d entries, want 2", len(st.got))
	}
	if want := at.UTC().Truncate(time.Microsecond); !st.got[0].Time.Equal(want) || st.got[0].Time.Location() != time.UTC ||
		st.got[0].Time.Nanosecond()%1000 != 0 {
		t.Errorf("entry without a time stamped %v, want %v in UTC", st.got[0].Time, want)
	}
	if !st.got[1].Time.Equal(given.Truncate(time.Microsecond)) {
		t.Errorf("entry with a time stored at %v, want %v", st.got[1].Time, given)
	}
	if st.ctx != nil {
		t.Errorf("the store saw a cancelled context: %v", st.ctx)
	}
}

func TestRecorderLogsFailures(t *testing.T) {
	var logs strings.Builder
	st := appender{err: errors.New("disk full")}
	r := audit.NewRecorder(&st, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	r.Record(requestid.NewContext(context.Background(), "req-42"), audit.Entry{Event: audit.PasswordSignInFailed, Username: "alice"})
	for _, want := range []string{"audit entry not recorded", "password_sign_in_failed", "disk full", "request_id=req-42"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}
