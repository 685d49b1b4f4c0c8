// Package signin owns the desktop's sign-in flow, without any UI: get a QR
// code from the server, wait for the phone on the session's event stream
// (or by long-poll, on a server without one), keep the user signed in by
// refreshing tokens, hear at once when the sign-in is ended elsewhere (on
// the account's event stream), and sign out.
//
// A Flow is driven by Step, which does one unit of work (usually one HTTP
// request) and says how long to wait before the next; Run loops Step on a
// goroutine. Tests call Step directly with an injected clock, so every
// transition is checked without sleeping. Each change of what the user
// should see is reported as a State through Config.OnChange.
package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/qrlogin/qrlogin/desktop/tokenstore"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// API is the part of the qrlogin client the flow uses; Client adapts a
// *client.Client to it. Errors from the server are *client.Error.
type API interface {
	CreateSession(ctx context.Context, req api.CreateSessionRequest) (*api.CreateSessionResponse, error)
	// Events opens the session's event stream; it ends when ctx does.
	Events(ctx context.Context, id, pollToken string) (Events, error)
	SessionStatus(ctx context.Context, id, pollToken string, after api.Status, wait time.Duration) (*api.SessionStatusResponse, error)
	WithdrawSession(ctx context.Context, id, pollToken string) error
	Refresh(ctx context.Context, refreshToken string) (*api.LoginResponse, error)
	Logout(ctx context.Context, accessToken, refreshToken string) error
	Me(ctx context.Context, accessToken string) (*api.Me, error)
	// WaitRevoked holds the account's event stream until the server says
	// the access token's sign-in has ended, or ctx ends; see
	// client.Client.WaitRevoked for the errors.
	WaitRevoked(ctx context.Context, accessToken string) (*api.Revoked, error)
}

// Events is an open event stream of a login session (*client.EventStream).
// Next returns io.EOF once the server ended the stream.
type Events interface {
	Next() (*api.SessionStatusResponse, error)
	Close() error
}

// Client adapts a *client.Client to API.
type Client struct{ *client.Client }

// Events opens the session's event stream.
func (c Client) Events(ctx context.Context, id, pollToken string) (Events, error) {
	es, err := c.Client.Events(ctx, id, pollToken)
	if err != nil {
		return nil, err
	}
	return es, nil
}

// TokenStore keeps the saved sign-in per server; *tokenstore.Store
// satisfies it. Load returns tokenstore.ErrNotFound when nothing is saved.
type TokenStore interface {
	Load(server string) (string, error)
	Save(server, secret string) error
	Delete(server string) error
}

// Phase is what the window shows.
type Phase string

// The phases, in the order a sign-in usually goes through them.
const (
	// Starting: no code yet (restoring a saved sign-in, or asking for the
	// first code).
	Starting Phase = "starting"
	// Waiting: a QR code is shown and nobody has scanned it yet.
	Waiting Phase = "waiting"
	// Scanned: a phone opened the code; the user confirms there.
	Scanned Phase = "scanned"
	// Cancelled: the phone refused; a new code needs NewCode.
	Cancelled Phase = "cancelled"
	// Expired: codes expired unattended MaxRenewals times in a row; the
	// next one needs NewCode, so an idle app does not poll forever.
	Expired Phase = "expired"
	// SignedIn: tokens are held and the account is shown.
	SignedIn Phase = "signed-in"
)

// Code is the QR code currently offered.
type Code struct {
	ID        string
	VerifyURL string // what the QR encodes
	UserCode  string // XXXX-XXXX, typed at the phone page when the camera fails
	// ExpiresAt is in the local clock (creation time plus the lifetime the
	// server gave), so a skewed system clock does not break the countdown.
	ExpiresAt time.Time
}

// Account is the signed-in user and this computer's sign-in.
type Account struct {
	User            api.User
	MemberSince     time.Time // from /me; zero until known
	SignedInAt      time.Time
	Device          string
	AccessExpiresAt time.Time // refreshed automatically before this
}

// Problem is a failure the flow is retrying.
type Problem struct {
	Text    string    // e.g. "Can't reach the server at http://…"
	RetryAt time.Time // when the next try is due
}

// State is what the user should see. Values are copies; the pointers are
// never changed after a State is reported.
type State struct {
	Phase     Phase
	Server    string
	Code      *Code    // Waiting, Scanned (and while a problem interrupts them)
	ScannedBy string   // Scanned: the phone user's display name
	Account   *Account // SignedIn
	Problem   *Problem // set while retrying after an error
	// Notice explains something that just happened ("You signed out.").
	Notice string
}

// Idle is returned by Step when nothing happens until an action (NewCode,
// SignOut, Retry).
const Idle time.Duration = -1

// Config configures a Flow.
type Config struct {
	// Server is the server's base URL: the key of the saved sign-in and
	// the name shown in messages.
	Server string
	API    API
	Tokens TokenStore
	// Device describes this computer to the phone.
	Device api.CreateSessionRequest
	Logger *slog.Logger
	// OnChange receives every new State, on the goroutine running Step.
	OnChange func(State)

	// Now and After are the clock; nil means the real one.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Jitter spreads a backoff delay so that many desktops do not retry in
	// step; nil means a random delay between d/2 and d.
	Jitter func(d time.Duration) time.Duration

	// MaxRenewals is how many expired codes are replaced automatically in
	// a row while nobody scans; 0 means 3.
	MaxRenewals int
	// PollWait is the long-poll wait (on a server without event
	// streams); 0 means api.MaxWait seconds.
	PollWait time.Duration
	// RequestTimeout bounds each request beyond its long-poll wait; 0
	// means 15 seconds.
	RequestTimeout time.Duration
	// Backoff is the retry delay after errors; zero means 1s doubling to
	// 30s. The account's event stream reconnects with it too.
	Backoff Backoff
}

// Backoff is an exponential retry delay.
type Backoff struct {
	Min, Max time.Duration
}

// Delay is the wait before retry number attempt (1 is the first retry):
// Min doubled attempt-1 times, at most Max.
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Min
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

type stage int

const (
	stageRestore  stage = iota // a saved refresh token may sign us in
	stageCreate                // ask for a new code
	stagePoll                  // wait for the phone
	stageIdle                  // wait for NewCode
	stageSignedIn              // keep the tokens fresh
)

// saved is what the keychain holds for a server. Only the refresh token is
// secret; the rest lets the signed-in window say when and where.
type saved struct {
	RefreshToken string    `json:"refresh_token"`
	SignedInAt   time.Time `json:"signed_in_at"`
	Device       string    `json:"device,omitempty"`
}

// Flow is one server's sign-in flow. Step (and so Run) must be called from
// one goroutine at a time; NewCode, SignOut, Retry and State may be called
// from any.
type Flow struct {
	cfg Config
	log *slog.Logger

	// Owned by the goroutine calling Step.
	stage     stage
	st        State
	saved     saved
	access    string
	accessTTL time.Duration
	refreshAt time.Time
	needMe    bool
	session   *api.CreateSessionResponse
	last      api.Status // last status seen for session
	renewals  int        // codes replaced in a row without a scan
	failures  int        // errors in a row
	retryAt   time.Time  // backoff: no request before this
	longPoll  bool       // the server has no event streams
	events    Events     // open stream of session, or nil
	eventsCtx context.Context
	eventsAt  time.Time // when events was opened
	// The watcher: a goroutine holding the account's event stream while
	// signed in (see watch).
	watchGen          int                // of the latest watcher
	watchStop         context.CancelFunc // nil when none was started for this token
	watchDone         chan struct{}
	watchAfterRefusal bool // the watcher's token was refreshed because the stream refused the last one
	refreshForStream  bool // the next refresh is because the stream refused the token

	mu        sync.Mutex
	published State
	newCode   bool
	signOut   bool
	retry     bool
	news      *watchNews // what a watcher found, for Step
	wake      chan struct{}
	interrupt context.CancelFunc // ends the open stream's wait
}

// New returns a Flow that starts by trying the saved sign-in.
func New(cfg Config) *Flow {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration {
			return d/2 + rand.N(d/2+1)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxRenewals <= 0 {
		cfg.MaxRenewals = 3
	}
	if cfg.PollWait <= 0 {
		cfg.PollWait = api.MaxWait * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 15 * time.Second
	}
	if cfg.Backoff.Min <= 0 {
		cfg.Backoff.Min = time.Second
	}
	if cfg.Backoff.Max < cfg.Backoff.Min {
		cfg.Backoff.Max = max(30*time.Second, cfg.Backoff.Min)
	}
	f := &Flow{
		cfg:  cfg,
		log:  cfg.Logger.With("server", cfg.Server),
		wake: make(chan struct{}, 1),
		st:   State{Phase: Starting, Server: cfg.Server},
	}
	f.published = f.st
	return f
}

// State returns the last reported State.
func (f *Flow) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.published
}

// NewCode asks for a fresh QR code (after a cancel or the renewal limit,
// or to replace the current one).
func (f *Flow) NewCode() {
	f.act(func() {
		f.newCode = true
		// The flow may be waiting on the stream; it acts on this at once.
		if f.interrupt != nil {
			f.interrupt()
		}
	})
}

// SignOut revokes the sign-in on the server, forgets it here and shows a
// new code.
func (f *Flow) SignOut() { f.act(func() { f.signOut = true }) }

// Retry skips the rest of a backoff wait.
func (f *Flow) Retry() { f.act(func() { f.retry = true }) }

func (f *Flow) act(set func()) {
	f.mu.Lock()
	set()
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

type actions struct {
	newCode, signOut, retry bool
	news                    *watchNews
}

func (f *Flow) takeActions() actions {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := actions{f.newCode, f.signOut, f.retry, f.news}
	f.newCode, f.signOut, f.retry, f.news = false, false, false, nil
	return a
}

// Run drives the flow until ctx ends, then withdraws a code still waiting
// for the phone, so that closing the app leaves nothing to confirm.
func (f *Flow) Run(ctx context.Context) {
	defer f.withdraw()
	defer f.closeEvents()
	defer f.stopWatch()
	for ctx.Err() == nil {
		d := f.Step(ctx)
		if d == 0 {
			continue
		}
		var timer <-chan time.Time
		if d > 0 {
			timer = f.cfg.After(d)
		}
		select {
		case <-ctx.Done():
		case <-timer:
		case <-f.wake:
		}
	}
}

// Step does the next unit of work and returns how long to wait before
// calling it again: 0 for at once, Idle for until an action.
func (f *Flow) Step(ctx context.Context) time.Duration {
	if ctx.Err() != nil {
		return Idle
	}
	a := f.takeActions()
	now := f.cfg.Now()
	switch {
	case a.signOut && f.stage == stageSignedIn:
		f.doSignOut(ctx)
		return 0
	case a.news != nil && a.news.gen == f.watchGen && f.stage == stageSignedIn:
		if a.news.revoked {
			f.revoked(a.news.reason)
			return 0
		}
		f.streamRefused()
	case a.newCode && f.stage != stageSignedIn && f.stage != stageRestore:
		f.withdrawCtx(ctx)
		f.renewals, f.failures, f.retryAt = 0, 0, time.Time{}
		f.st.Notice, f.st.Problem = "", nil
		f.stage = stageCreate
	}
	if f.stage != stagePoll {
		f.closeEvents()
	}
	if f.stage != stageSignedIn {
		f.stopWatch()
	}
	if f.stage != stageIdle && !a.retry && now.Before(f.retryAt) {
		return f.retryAt.Sub(now)
	}
	switch f.stage {
	case stageRestore:
		return f.restore(ctx)
	case stageCreate:
		return f.create(ctx)
	case stagePoll:
		return f.poll(ctx)
	case stageSignedIn:
		return f.keepSignedIn(ctx)
	default:
		return Idle
	}
}

func (f *Flow) restore(ctx context.Context) time.Duration {
	if f.saved.RefreshToken == "" {
		raw, err := f.cfg.Tokens.Load(f.cfg.Server)
		if err != nil {
			if !errors.Is(err, tokenstore.ErrNotFound) {
				f.log.Warn("could not read the saved sign-in", "err", err)
			}
			f.stage = stageCreate
			return 0
		}
		f.saved = decodeSaved(raw)
		if f.saved.RefreshToken == "" {
			f.stage = stageCreate
			return 0
		}
	}
	resp, wait, ok := f.refresh(ctx, "saved sign-in no longer valid",
		"Your saved sign-in has ended (it expired or was revoked). Scan the code to sign in again.")
	if !ok {
		return wait
	}
	f.log.Info("signed in with the saved sign-in", "user", resp.User.ID)
	f.signedIn(resp.Tokens, resp.User, f.saved.SignedInAt, f.saved.Device)
	return 0
}

func (f *Flow) create(ctx context.Context) time.Duration {
	if f.st.Code == nil && f.st.Phase != Starting {
		f.st.Phase = Starting
		f.emit()
	}
	rctx, cancel := context.WithTimeout(ctx, f.cfg.RequestTimeout)
	defer cancel()
	resp, err := f.cfg.API.CreateSession(rctx, f.cfg.Device)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		// The old code, if any, is dead: do not leave it on screen.
		f.st.Phase, f.st.Code, f.st.ScannedBy = Starting, nil, ""
		return f.fail(err)
	}
	f.ok()
	f.session, f.last = resp, api.StatusPending
	f.stage = stagePoll
	f.st.Phase = Waiting
	f.st.ScannedBy = ""
	f.st.Account = nil
	f.st.Code = &Code{
		ID:        resp.ID,
		VerifyURL: resp.VerifyURL,
		UserCode:  resp.UserCode,
		ExpiresAt: f.cfg.Now().Add(time.Duration(resp.ExpiresIn) * time.Second),
	}
	f.log.Info("new sign-in code", "session", resp.ID, "expires_in", resp.ExpiresIn)
	f.emit()
	return 0
}

func (f *Flow) poll(ctx context.Context) time.Duration {
	if !f.longPoll {
		return f.stream(ctx)
	}
	// Wake up around expiry rather than a whole long-poll later.
	wait := f.cfg.PollWait
	if left := f.st.Code.ExpiresAt.Sub(f.cfg.Now()) + time.Second; left < wait {
		wait = max(left, time.Second)
	}
	rctx, cancel := context.WithTimeout(ctx, wait+f.cfg.RequestTimeout)
	defer cancel()
	start := f.cfg.Now()
	resp, err := f.cfg.API.SessionStatus(rctx, f.session.ID, f.session.PollToken, f.last, wait)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		return f.pollFailed(err)
	}
	f.ok()
	if resp.Status == f.last && (resp.Status == api.StatusPending || resp.Status == api.StatusScanned) {
		// Nothing changed. A server (or proxy) that does not hold the
		// request gets polled at its interval, not in a busy loop.
		return f.untilInterval(start)
	}
	return f.report(resp)
}

// untilInterval is what is left of the session's polling interval since
// start: a wait that came back early is not repeated in a busy loop.
func (f *Flow) untilInterval(start time.Time) time.Duration {
	interval := time.Duration(max(f.session.Interval, 1)) * time.Second
	if elapsed := f.cfg.Now().Sub(start); elapsed < interval {
		return interval - elapsed
	}
	return 0
}

// stream waits on the session's event stream, opening it when needed,
// until the status changes.
func (f *Flow) stream(ctx context.Context) time.Duration {
	if f.events == nil {
		if d, ok := f.openEvents(ctx); !ok {
			return d
		}
	}
	for {
		resp, err := f.events.Next()
		if err != nil {
			return f.streamEnded(ctx, err)
		}
		f.ok()
		if resp.Status == f.last && resp.Tokens == nil {
			continue // the first event after connecting again
		}
		d := f.report(resp)
		if f.stage != stagePoll {
			f.closeEvents()
		}
		return d
	}
}

func (f *Flow) openEvents(ctx context.Context) (time.Duration, bool) {
	sctx, cancel := context.WithCancel(ctx)
	f.mu.Lock()
	f.interrupt = cancel
	f.mu.Unlock()
	es, err := f.cfg.API.Events(sctx, f.session.ID, f.session.PollToken)
	if err != nil {
		interrupted := sctx.Err() != nil
		f.dropInterrupt()
		switch {
		case ctx.Err() != nil || interrupted:
			return 0, false
		case client.IsCode(err, api.ErrNotFound):
			return f.eventsMissing(ctx), false
		}
		return f.pollFailed(err), false
	}
	f.events, f.eventsCtx, f.eventsAt = es, sctx, f.cfg.Now()
	f.log.Debug("waiting on the event stream", "session", f.session.ID)
	return 0, true
}

// eventsMissing follows a 404 for the event stream: either the session is
// gone, or the server is older than event streams and is long-polled from
// now on.
func (f *Flow) eventsMissing(ctx context.Context) time.Duration {
	rctx, cancel := context.WithTimeout(ctx, f.cfg.RequestTimeout)
	defer cancel()
	resp, err := f.cfg.API.SessionStatus(rctx, f.session.ID, f.session.PollToken, "", 0)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		return f.pollFailed(err)
	}
	f.log.Info("the server has no event streams; long-polling instead")
	f.longPoll = true
	f.ok()
	if resp.Status == f.last && resp.Tokens == nil {
		return 0
	}
	return f.report(resp)
}

// streamEnded handles the end of the event stream before the session's.
func (f *Flow) streamEnded(ctx context.Context, err error) time.Duration {
	interrupted := f.eventsCtx.Err() != nil
	opened := f.eventsAt
	f.closeEvents()
	var ce *client.Error
	switch {
	case ctx.Err() != nil || interrupted:
		return 0
	case errors.Is(err, io.EOF):
		// The server ended it early (it shut down, a newer wait took
		// over, a proxy's timeout): connect again, at most once per
		// polling interval.
		return f.untilInterval(opened)
	case errors.As(err, &ce):
		return f.pollFailed(err)
	case f.cfg.Now().Sub(opened) >= time.Duration(max(f.session.Interval, 1))*time.Second:
		// A stream that had been up a while dropped: connect again at
		// once; if that fails, the backoff takes over.
		f.log.Info("event stream dropped; connecting again", "session", f.session.ID, "err", err)
		return 0
	default:
		return f.fail(err)
	}
}

func (f *Flow) dropInterrupt() {
	f.mu.Lock()
	if f.interrupt != nil {
		f.interrupt()
		f.interrupt = nil
	}
	f.mu.Unlock()
}

// closeEvents closes the open event stream, if any.
func (f *Flow) closeEvents() {
	f.dropInterrupt()
	if f.events != nil {
		_ = f.events.Close()
		f.events, f.eventsCtx = nil, nil
	}
}

// pollFailed handles an error from a status request or the event stream.
func (f *Flow) pollFailed(err error) time.Duration {
	var ce *client.Error
	switch {
	case client.IsCode(err, api.ErrExpired):
		return f.expired()
	case errors.As(err, &ce) && (ce.StatusCode == http.StatusTooManyRequests || ce.StatusCode >= 500):
		return f.fail(err)
	case errors.As(err, &ce):
		// consumed (the answer with our tokens was lost), not found
		// (swept) or refused: this code cannot sign us in any more.
		f.log.Warn("sign-in code stopped working", "session", f.session.ID, "err", err)
		f.ok()
		f.session = nil
		f.st.Notice = "That code stopped working, so here is a new one."
		return f.renew()
	default:
		return f.fail(err)
	}
}

// report shows a status of the session that differs from the last one.
func (f *Flow) report(resp *api.SessionStatusResponse) time.Duration {
	f.last = resp.Status
	switch resp.Status {
	case api.StatusPending:
		f.set(Waiting, "")
	case api.StatusScanned:
		f.renewals = 0 // someone is there
		name := ""
		if resp.ScannedBy != nil {
			name = resp.ScannedBy.DisplayName
		}
		f.st.Notice = ""
		f.set(Scanned, name)
	case api.StatusConfirmed:
		if resp.Tokens == nil || resp.User == nil {
			// Not ours to have: the next poll answers consumed.
			return 0
		}
		f.log.Info("signed in by phone", "session", f.session.ID, "user", resp.User.ID)
		f.session = nil
		f.signedIn(*resp.Tokens, *resp.User, f.cfg.Now(), deviceLabel(f.cfg.Device))
	case api.StatusCancelled:
		f.log.Info("sign-in cancelled on the phone", "session", f.session.ID)
		f.session = nil
		f.stage = stageIdle
		f.st.Phase, f.st.Code, f.st.ScannedBy = Cancelled, nil, ""
		f.st.Notice = ""
		f.emit()
		return Idle
	case api.StatusExpired:
		return f.expired()
	}
	return 0
}

// set reports phase p for the current code, if anything changed.
func (f *Flow) set(p Phase, scannedBy string) {
	if f.st.Phase == p && f.st.ScannedBy == scannedBy && f.st.Problem == nil {
		return
	}
	f.st.Phase, f.st.ScannedBy = p, scannedBy
	f.emit()
}

func (f *Flow) expired() time.Duration {
	f.session = nil
	return f.renew()
}

// renew replaces a dead code, unless that has happened MaxRenewals times
// in a row without anyone scanning.
func (f *Flow) renew() time.Duration {
	if f.renewals < f.cfg.MaxRenewals {
		f.renewals++
		f.stage = stageCreate
		return 0
	}
	f.log.Info("stopped renewing sign-in codes; waiting for the user", "renewals", f.renewals)
	f.stage = stageIdle
	f.st.Phase, f.st.Code, f.st.ScannedBy = Expired, nil, ""
	f.emit()
	return Idle
}

func (f *Flow) signedIn(t api.Tokens, u api.User, at time.Time, device string) {
	now := f.cfg.Now()
	f.access = t.AccessToken
	f.accessTTL = time.Duration(t.ExpiresIn) * time.Second
	f.refreshAt = now.Add(refreshLead(f.accessTTL))
	f.saved = saved{RefreshToken: t.RefreshToken, SignedInAt: at, Device: device}
	f.needMe = true
	f.renewals, f.failures, f.retryAt = 0, 0, time.Time{}
	f.stage = stageSignedIn
	f.st.Problem = nil
	if err := f.store(); err != nil {
		f.log.Error("could not save the sign-in", "err", err)
		f.st.Notice = "Signed in, but the sign-in could not be saved: you will need to scan again next time."
	} else {
		f.st.Notice = ""
	}
	acct := &Account{User: u, SignedInAt: at, Device: device, AccessExpiresAt: now.Add(f.accessTTL)}
	if f.st.Account != nil && f.st.Account.User.ID == u.ID {
		acct.MemberSince = f.st.Account.MemberSince
	}
	f.st.Phase, f.st.Code, f.st.ScannedBy, f.st.Account = SignedIn, nil, "", acct
	f.emit()
}

// refreshLead is when, after issue, an access token of lifetime ttl is
// replaced: at three quarters of its life, so a slow network has time.
func refreshLead(ttl time.Duration) time.Duration {
	return max(ttl*3/4, time.Second)
}

func (f *Flow) keepSignedIn(ctx context.Context) time.Duration {
	if f.watchStop == nil {
		f.watchAfterRefusal, f.refreshForStream = f.refreshForStream, false
		f.startWatch(ctx)
	}
	if f.needMe {
		rctx, cancel := context.WithTimeout(ctx, f.cfg.RequestTimeout)
		me, err := f.cfg.API.Me(rctx, f.access)
		cancel()
		switch {
		case ctx.Err() != nil:
			return 0
		case err == nil:
			f.needMe = false
			f.ok()
			a := *f.st.Account
			a.User = api.User{ID: me.ID, Username: me.Username, DisplayName: me.DisplayName}
			a.MemberSince = me.CreatedAt
			f.st.Account = &a
			f.emit()
		case authFailed(err):
			// The access token is refused: refresh now, then ask again.
			f.refreshAt = f.cfg.Now()
		default:
			return f.fail(err)
		}
	}
	now := f.cfg.Now()
	if now.Before(f.refreshAt) {
		return f.refreshAt.Sub(now)
	}
	resp, wait, ok := f.refresh(ctx, "sign-in ended by the server",
		"Your sign-in has ended (it expired or was revoked). Scan the code to sign in again.")
	if !ok {
		return wait
	}
	f.log.Debug("access token refreshed")
	// The next step holds the stream again with the new token.
	f.stopWatch()
	f.signedIn(resp.Tokens, resp.User, f.saved.SignedInAt, f.saved.Device)
	f.needMe = false
	return 0
}

// refresh trades the saved refresh token for new tokens. If the server
// refuses it, the saved sign-in is forgotten (logged as ended) and the flow
// returns to a new code showing notice. ok is false whenever the caller
// should return wait instead of using resp.
func (f *Flow) refresh(ctx context.Context, ended, notice string) (resp *api.LoginResponse, wait time.Duration, ok bool) {
	rctx, cancel := context.WithTimeout(ctx, f.cfg.RequestTimeout)
	defer cancel()
	resp, err := f.cfg.API.Refresh(rctx, f.saved.RefreshToken)
	switch {
	case err == nil:
		return resp, 0, true
	case ctx.Err() != nil:
		return nil, 0, false
	case authFailed(err):
		f.log.Info(ended, "err", err)
		f.forget()
		f.st.Notice = notice
		f.st.Account = nil
		f.stage = stageCreate
		return nil, 0, false
	}
	return nil, f.fail(err), false
}

func (f *Flow) doSignOut(ctx context.Context) {
	// Our own logout ends the sign-in too: that is not news.
	f.stopWatch()
	rctx, cancel := context.WithTimeout(ctx, f.cfg.RequestTimeout)
	defer cancel()
	access := f.access
	if !f.cfg.Now().Before(f.st.Account.AccessExpiresAt) {
		// Logout needs a live access token; get one with the refresh token.
		if resp, err := f.cfg.API.Refresh(rctx, f.saved.RefreshToken); err == nil {
			access, f.saved.RefreshToken = resp.AccessToken, resp.RefreshToken
		}
	}
	err := f.cfg.API.Logout(rctx, access, f.saved.RefreshToken)
	switch {
	case err == nil || authFailed(err):
		f.log.Info("signed out")
		f.st.Notice = "You have signed out."
	default:
		f.log.Warn("could not revoke the sign-in on the server", "err", err)
		f.st.Notice = "Signed out on this computer, but the server could not be reached to end the sign-in there."
	}
	f.signedOut()
}

// signedOut forgets the sign-in and starts over with a new code, keeping
// the notice that says why.
func (f *Flow) signedOut() {
	f.forget()
	f.st.Account = nil
	f.renewals, f.failures, f.retryAt = 0, 0, time.Time{}
	f.st.Problem = nil
	f.st.Phase = Starting
	f.stage = stageCreate
	f.emit()
}

// forget drops the tokens from memory and storage.
func (f *Flow) forget() {
	f.stopWatch()
	f.watchAfterRefusal, f.refreshForStream = false, false
	f.access, f.saved = "", saved{}
	if err := f.cfg.Tokens.Delete(f.cfg.Server); err != nil {
		f.log.Error("could not delete the saved sign-in", "err", err)
	}
}

func (f *Flow) store() error {
	b, err := json.Marshal(f.saved)
	if err != nil {
		return fmt.Errorf("encode sign-in: %w", err)
	}
	if err := f.cfg.Tokens.Save(f.cfg.Server, string(b)); err != nil {
		return fmt.Errorf("save sign-in: %w", err)
	}
	return nil
}

func decodeSaved(raw string) saved {
	var s saved
	if json.Unmarshal([]byte(raw), &s) != nil {
		// A bare token, as an older or hand-made entry would be.
		return saved{RefreshToken: raw}
	}
	return s
}

// fail records an error and schedules the retry.
func (f *Flow) fail(err error) time.Duration {
	f.failures++
	d := f.cfg.Backoff.Delay(f.failures)
	var ce *client.Error
	if errors.As(err, &ce) && ce.RetryAfter > d {
		d = ce.RetryAfter
	} else {
		d = f.cfg.Jitter(d)
	}
	f.retryAt = f.cfg.Now().Add(d)
	f.log.Warn("request failed; retrying", "err", err, "attempt", f.failures, "retry_in", d.Round(time.Millisecond))
	f.st.Problem = &Problem{Text: f.describe(err), RetryAt: f.retryAt}
	f.emit()
	return d
}

// ok clears the error count after a success.
func (f *Flow) ok() {
	f.failures, f.retryAt = 0, time.Time{}
	if f.st.Problem != nil {
		f.st.Problem = nil
		f.emit()
	}
}

// describe turns an error into a sentence for the window: never a stack
// trace, never a token.
func (f *Flow) describe(err error) string {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return "Can't reach the server at " + f.cfg.Server
	}
	switch {
	case ce.StatusCode == http.StatusTooManyRequests:
		return "The server at " + f.cfg.Server + " is busy"
	case ce.Message != "" && len(ce.Message) <= 120:
		return fmt.Sprintf("The server at %s answered %d: %s", f.cfg.Server, ce.StatusCode, ce.Message)
	default:
		return fmt.Sprintf("The server at %s answered %d", f.cfg.Server, ce.StatusCode)
	}
}

// withdraw cancels a code still waiting for the phone; used on close.
func (f *Flow) withdraw() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	f.withdrawCtx(ctx)
}

func (f *Flow) withdrawCtx(ctx context.Context) {
	f.closeEvents()
	if f.session == nil || (f.last != api.StatusPending && f.last != api.StatusScanned) {
		return
	}
	s := f.session
	f.session = nil
	if err := f.cfg.API.WithdrawSession(ctx, s.ID, s.PollToken); err != nil {
		f.log.Warn("could not withdraw the sign-in code", "session", s.ID, "err", err)
		return
	}
	f.log.Info("withdrew the sign-in code", "session", s.ID)
}

func (f *Flow) emit() {
	st := f.st
	f.mu.Lock()
	f.published = st
	f.mu.Unlock()
	if f.cfg.OnChange != nil {
		f.cfg.OnChange(st)
	}
}

// authFailed reports whether the server refused the credentials (as
// opposed to being unreachable or overloaded).
func authFailed(err error) bool {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

func deviceLabel(d api.CreateSessionRequest) string {
	switch {
	case d.DeviceName != "" && d.Platform != "":
		return d.DeviceName + " (" + d.Platform + ")"
	case d.DeviceName != "":
		return d.DeviceName
	default:
		return d.Platform
	}
}
