package signin_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/desktop/signin"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// signedInHolding signs a fresh flow in and waits until it holds the
// account's stream.
func (h *harness) signedInHolding() {
	h.t.Helper()
	h.signIn()
	h.settle()
	h.until("the account stream held", func() bool { return h.srv.Holding() == 1 })
}

func TestEndedElsewhereReturnsToCode(t *testing.T) {
	tests := []struct {
		reason, notice string
	}{
		{api.ReasonSignedOut, "You were signed out from your phone."},
		{api.ReasonLogoutAll, "You signed out everywhere from your phone."},
		{api.ReasonPasswordChanged, "Your password was changed; sign in again."},
		{api.ReasonUserDeleted, "Your account was deleted."},
		{api.ReasonReuseDetected, "This sign-in was ended because its token was used twice; sign in again."},
		{"moon_phase", "The server ended this sign-in (moon_phase); sign in again."},
		{"", "The server ended this sign-in; sign in again."},
		{"x\x1b[31m\n" + strings.Repeat("y", 60), "The server ended this sign-in (x[31m" + strings.Repeat("y", 35) + "…); sign in again."},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			h := newHarness(t)
			h.signedInHolding()
			h.srv.End(tt.reason)
			h.stepUntil("the sign-in to end", func() bool { return h.flow.State().Phase != signin.SignedIn })
			st := h.want(signin.Starting)
			if st.Notice != tt.notice || st.Account != nil {
				t.Errorf("state %+v, want notice %q", st, tt.notice)
			}
			if h.tokens.Len() != 0 {
				t.Errorf("the ended sign-in is still saved")
			}
			// A new code, the notice still beside it, without a refresh.
			st = h.stepTo(signin.Waiting)
			if st.Notice != tt.notice || st.Code == nil {
				t.Errorf("code screen %+v, want notice %q", st, tt.notice)
			}
			if n := h.srv.Calls("refresh"); n != 0 {
				t.Errorf("%d refreshes; the stream's word is enough", n)
			}
			if n := h.srv.Holding(); n != 0 {
				t.Errorf("%d streams still held after the sign-in ended", n)
			}
		})
	}
}

// Under Run, news from the stream wakes the flow at once: the refresh is
// 11 minutes away, yet the code screen follows the revocation.
func TestRunWakesOnRevocation(t *testing.T) {
	states := make(chan signin.State, 100)
	h := newHarness(t, func(c *signin.Config) {
		c.OnChange = func(s signin.State) { states <- s }
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		h.flow.Run(ctx)
		close(done)
	}()
	next := func(p signin.Phase) signin.State {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case st := <-states:
				if st.Phase == p {
					return st
				}
			case <-timeout:
				t.Fatalf("no %s state within 10s", p)
			}
		}
	}
	code := next(signin.Waiting).Code
	h.srv.phone(t, code.ID, api.StatusConfirmed, "")
	next(signin.SignedIn)
	h.until("the account stream held", func() bool { return h.srv.Holding() == 1 })

	h.srv.End(api.ReasonSignedOut)
	if st := next(signin.Waiting); st.Notice != "You were signed out from your phone." {
		t.Errorf("notice %q", st.Notice)
	}
	// Signed in again, then quit: the stream is let go.
	code = h.flow.State().Code
	h.srv.phone(t, code.ID, api.StatusConfirmed, "")
	next(signin.SignedIn)
	h.until("the account stream held", func() bool { return h.srv.Holding() == 1 })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if n := h.srv.Holding(); n != 0 {
		t.Errorf("%d streams held after Run returned", n)
	}
}

func TestSignOutLetsGoOfStream(t *testing.T) {
	h := newHarness(t)
	h.signedInHolding()
	h.flow.SignOut()
	h.step()
	if n := h.srv.Holding(); n != 0 {
		t.Errorf("%d streams held after signing out", n)
	}
	// The server tells the stream of our own logout; that is not shown.
	st := h.stepTo(signin.Waiting)
	if st.Notice != "You have signed out." {
		t.Errorf("notice %q", st.Notice)
	}
}

// An access token that expired while the computer slept is refreshed
// once, and the stream held again with the new one.
func TestStreamRefusedRefreshesOnce(t *testing.T) {
	h := newHarness(t)
	h.signedInHolding()
	watches := h.srv.Calls("watch")
	h.srv.ExpireAccess()
	h.stepUntil("a refresh", func() bool { return h.srv.Calls("refresh") == 1 })
	h.stepUntil("the stream held again", func() bool { return h.srv.Holding() == 1 })
	st := h.want(signin.SignedIn)
	if st.Problem != nil || st.Notice != "" {
		t.Errorf("state %+v: a refreshed token is nothing to tell", st)
	}
	if n := h.srv.Calls("watch") - watches; n != 1 {
		t.Errorf("%d more stream requests, want 1 (with the new token)", n)
	}
	if h.tokens.Len() != 1 {
		t.Errorf("the sign-in is no longer saved")
	}

	// The stream ends elsewhere while it is held with the new token.
	h.srv.End(api.ReasonLogoutAll)
	h.stepUntil("the sign-in to end", func() bool { return h.flow.State().Phase != signin.SignedIn })
	if st := h.flow.State(); st.Notice != "You signed out everywhere from your phone." {
		t.Errorf("notice %q", st.Notice)
	}
}

// A sign-in ended while the computer was off: the stream refuses the old
// access token and the refresh fails, so the code screen says so.
func TestStreamRefusedAndRefreshFails(t *testing.T) {
	h := newHarness(t)
	h.signedInHolding()
	h.srv.RevokeAll()
	h.srv.ExpireAccess()
	h.stepUntil("the sign-in to end", func() bool { return h.flow.State().Phase != signin.SignedIn })
	st := h.stepTo(signin.Waiting)
	if st.Notice != "Your sign-in has ended (it expired or was revoked). Scan the code to sign in again." {
		t.Errorf("notice %q", st.Notice)
	}
	if h.tokens.Len() != 0 || h.srv.Holding() != 0 {
		t.Errorf("saved %d, holding %d after the sign-in ended", h.tokens.Len(), h.srv.Holding())
	}
}

// A stream that refuses even a fresh token is not retried in a loop: it is
// tried again at the next scheduled refresh.
func TestStreamRefusingFreshTokenDoesNotLoop(t *testing.T) {
	h := newHarness(t)
	h.signedInHolding()
	refused := apiErr(http.StatusUnauthorized, api.ErrUnauthorized)
	h.srv.mu.Lock()
	h.srv.watchErr = []error{refused, refused}
	h.srv.mu.Unlock()
	h.srv.Kick() // the server restarted
	h.stepUntil("both refusals", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		return len(h.srv.watchErr) == 0
	})
	// Give a looping flow the chance to show itself.
	for range 20 {
		h.step()
		time.Sleep(2 * time.Millisecond)
	}
	if n := h.srv.Calls("refresh"); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	st := h.want(signin.SignedIn)
	if st.Problem != nil {
		t.Errorf("problem %+v", st.Problem)
	}
	// The scheduled refresh holds the stream again.
	h.clock.Advance(15 * time.Minute)
	h.stepUntil("the stream held again", func() bool { return h.srv.Holding() == 1 })
	if n := h.srv.Calls("refresh"); n != 2 {
		t.Errorf("%d refreshes, want 2", n)
	}
}

// A lost stream is connected again with a bounded, jittered backoff, and
// being offline is not shown while signed in.
func TestStreamReconnectsWithBackoff(t *testing.T) {
	var mu sync.Mutex
	var delays []time.Duration
	var jittered []time.Duration
	h := newHarness(t, func(c *signin.Config) {
		c.After = func(d time.Duration) <-chan time.Time {
			mu.Lock()
			delays = append(delays, d)
			mu.Unlock()
			ch := make(chan time.Time, 1)
			ch <- time.Time{}
			return ch
		}
		c.Jitter = func(d time.Duration) time.Duration {
			mu.Lock()
			jittered = append(jittered, d)
			mu.Unlock()
			return d * 3 / 4
		}
	})
	h.signedInHolding()
	h.srv.mu.Lock()
	h.srv.watchErr = []error{errNetwork, errNetwork, errNetwork, errNetwork, errNetwork, errNetwork,
		&client.Error{StatusCode: 503, Code: api.ErrUnavailable, RetryAfter: 45 * time.Second}}
	h.srv.mu.Unlock()
	h.srv.Kick()
	h.until("the stream held again", func() bool { return h.srv.Holding() == 1 && h.srv.Calls("watch") == 9 })
	mu.Lock()
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if !equal(jittered, want) {
		t.Errorf("backoff before jitter %v, want %v", jittered, want)
	}
	got := append([]time.Duration(nil), delays...)
	mu.Unlock()
	wantDelays := make([]time.Duration, len(want))
	for i := range want {
		wantDelays[i] = want[i] * 3 / 4
	}
	wantDelays[7] = 45 * time.Second // Retry-After
	if !equal(got, wantDelays) {
		t.Errorf("waits %v, want %v", got, wantDelays)
	}
	h.mu.Lock()
	for _, st := range h.states {
		if st.Problem != nil {
			t.Errorf("a lost stream was shown: %+v", st.Problem)
		}
	}
	h.mu.Unlock()

	// A stream held for a while that drops is a drop, not a failure: the
	// backoff starts again.
	h.clock.Advance(2 * time.Minute)
	h.srv.Kick()
	h.until("the stream held again", func() bool { return h.srv.Holding() == 1 && h.srv.Calls("watch") == 10 })
	mu.Lock()
	defer mu.Unlock()
	if last := delays[len(delays)-1]; last != 750*time.Millisecond {
		t.Errorf("after a long hold waited %v, want 750ms", last)
	}
}

// A server without the account stream is not asked again and again: the
// next try is after the next refresh.
func TestServerWithoutAccountStream(t *testing.T) {
	h := newHarness(t)
	h.srv.noAccountEvents = true
	h.signIn()
	wait := h.settle()
	h.until("the stream asked for", func() bool { return h.srv.Calls("watch") == 1 })
	for range 5 {
		h.step()
	}
	if n := h.srv.Calls("watch"); n != 1 {
		t.Errorf("asked for the stream %d times, want once", n)
	}
	h.clock.Advance(wait)
	h.settle()
	h.until("the stream asked for again", func() bool { return h.srv.Calls("watch") == 2 })
	if st := h.want(signin.SignedIn); st.Problem != nil {
		t.Errorf("problem %+v", st.Problem)
	}
}

// A refusal that ended in the sign-in ending is not held against the next
// sign-in: its stream's refusal is refreshed again.
func TestRefusalForgottenWithSignIn(t *testing.T) {
	h := newHarness(t)
	h.signedInHolding()
	h.srv.RevokeAll()
	h.srv.ExpireAccess()
	h.stepUntil("the sign-in to end", func() bool { return h.flow.State().Phase != signin.SignedIn })
	h.until("the stream let go", func() bool { return h.srv.Holding() == 0 })
	refreshes := h.srv.Calls("refresh")

	st := h.stepTo(signin.Waiting)
	h.srv.phone(t, st.Code.ID, api.StatusConfirmed, "")
	h.step()
	h.settle()
	h.until("the account stream held", func() bool { return h.srv.Holding() == 1 })
	h.srv.ExpireAccess()
	h.stepUntil("a refresh", func() bool { return h.srv.Calls("refresh") == refreshes+1 })
	h.stepUntil("the stream held again", func() bool { return h.srv.Holding() == 1 })
	h.want(signin.SignedIn)
}
