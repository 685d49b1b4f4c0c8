package signin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// watchNews is what a watcher tells Step: the sign-in was ended, or the
// stream refused the access token.
type watchNews struct {
	gen     int // the watcher's; news of an older one is stale
	revoked bool
	reason  string // with revoked: an api.Reason* value, or a newer one
	refused bool   // 401: the access token expired or is refused
}

// heldLong is how long a stream must have been held for its drop to count
// as a drop rather than a failure: the next try is then at once (after
// the jitter), not after a growing backoff.
const heldLong = time.Minute

// startWatch holds the account's event stream with the current access
// token on a goroutine, until ctx ends or stopWatch. It replaces the
// refresh timer as the way this desktop learns that its sign-in was ended
// elsewhere: within moments, not at the next refresh.
func (f *Flow) startWatch(ctx context.Context) {
	f.watchGen++
	gen, token := f.watchGen, f.access
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	f.watchStop, f.watchDone = cancel, done
	go func() {
		defer close(done)
		f.watch(wctx, gen, token)
	}()
}

// stopWatch ends the watcher, if any, waits for it, and drops news it
// left behind.
func (f *Flow) stopWatch() {
	if f.watchStop == nil {
		return
	}
	f.watchStop()
	<-f.watchDone
	f.watchStop, f.watchDone = nil, nil
	f.mu.Lock()
	f.news = nil
	f.mu.Unlock()
}

// watch holds the stream, reconnecting after network errors with a
// jittered backoff, until the server says the sign-in ended or refuses
// the token (both reported to Step), the server turns out not to offer
// the stream, or ctx ends. Being offline is not shown: the refresh timer
// reports a server it cannot reach.
func (f *Flow) watch(ctx context.Context, gen int, token string) {
	failures := 0
	for {
		start := f.cfg.Now()
		rev, err := f.cfg.API.WaitRevoked(ctx, token)
		if ctx.Err() != nil {
			return
		}
		var ce *client.Error
		switch {
		case err == nil:
			f.tell(watchNews{gen: gen, revoked: true, reason: rev.Reason})
			return
		case errors.As(err, &ce) && ce.StatusCode == http.StatusUnauthorized:
			f.tell(watchNews{gen: gen, refused: true})
			return
		case errors.As(err, &ce) && ce.StatusCode != http.StatusTooManyRequests && ce.StatusCode < 500:
			// An older server, without the stream: the refresh timer
			// still notices an ended sign-in, later.
			f.log.Info("the server offers no account event stream", "err", err)
			return
		}
		if f.cfg.Now().Sub(start) >= heldLong {
			failures = 0
		}
		failures++
		d := f.cfg.Jitter(f.cfg.Backoff.Delay(failures))
		if ce != nil && ce.RetryAfter > d {
			d = ce.RetryAfter
		}
		f.log.Debug("account event stream lost; connecting again", "err", err, "attempt", failures, "in", d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-f.cfg.After(d):
		}
	}
}

// tell hands news to Step and wakes Run.
func (f *Flow) tell(n watchNews) {
	f.act(func() { f.news = &n })
}

// revoked follows the server's word that this sign-in has ended: forget
// it and show a new code, saying why.
func (f *Flow) revoked(reason string) {
	f.log.Info("sign-in ended by the server", "reason", reason)
	f.st.Notice = revokedNotice(reason)
	f.signedOut()
}

// streamRefused follows a 401 from the stream: the access token expired
// (a computer waking from sleep) or its sign-in ended while this one was
// offline. A refresh tells which; the stream is held again with the new
// token. A stream that refuses a freshly refreshed token too is left
// alone until the next scheduled refresh, so the two never loop.
func (f *Flow) streamRefused() {
	if f.watchAfterRefusal {
		f.log.Warn("the account event stream refused a fresh access token; trying again at the next refresh")
		return
	}
	f.log.Info("the account event stream refused the access token; refreshing it")
	f.refreshForStream = true
	f.refreshAt = f.cfg.Now()
}

// revokedNotice says why the server ended this sign-in.
func revokedNotice(reason string) string {
	switch reason {
	case api.ReasonSignedOut:
		return "You were signed out from your phone."
	case api.ReasonLogoutAll:
		return "You signed out everywhere from your phone."
	case api.ReasonPasswordChanged:
		return "Your password was changed; sign in again."
	case api.ReasonUserDeleted:
		return "Your account was deleted."
	case api.ReasonReuseDetected:
		return "This sign-in was ended because its token was used twice; sign in again."
	}
	// A reason this version does not know: shown as the server sent it,
	// but only as a short, printable word.
	r := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, reason)
	if rs := []rune(r); len(rs) > 40 {
		r = string(rs[:40]) + "…"
	}
	if r = strings.TrimSpace(r); r == "" {
		return "The server ended this sign-in; sign in again."
	}
	return "The server ended this sign-in (" + r + "); sign in again."
}
