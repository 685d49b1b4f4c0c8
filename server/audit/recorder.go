package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/qrlogin/qrlogin/server/requestid"
)

// Appender stores entries (server/store's Store).
type Appender interface {
	AppendAudit(ctx context.Context, e Entry) error
}

// writeTimeout bounds how long recording one entry may hold up the
// request that caused it.
const writeTimeout = 5 * time.Second

// Recorder records entries in a store. Recording never fails the action
// recorded: a sign-in must not break because the audit log could not be
// written, so a failure is logged (with the request id) instead.
type Recorder struct {
	store Appender
	log   *slog.Logger
	now   func() time.Time
}

// NewRecorder records into st, logs failures to log and stamps entries
// without a time with now (time.Now when nil).
func NewRecorder(st Appender, log *slog.Logger, now func() time.Time) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Recorder{store: st, log: slog.New(requestid.NewHandler(log.Handler())), now: now}
}

// Record stores e, in UTC to the microsecond (what every store keeps).
// It is stored even when ctx is cancelled (a client that hung up after
// signing in still signed in).
func (r *Recorder) Record(ctx context.Context, e Entry) {
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if err := r.store.AppendAudit(ctx, e); err != nil {
		r.log.ErrorContext(ctx, "audit entry not recorded", "event", string(e.Event), "user_id", e.UserID, "err", err)
	}
}
