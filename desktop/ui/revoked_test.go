package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/qrlogin/qrlogin/desktop/signin"
	"github.com/qrlogin/qrlogin/desktop/tokenstore"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// accountServer is a test double of the qrlogin API for the app: codes
// that the test confirms, and the account's stream that the test ends.
type accountServer struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	n        int
	status   map[string]api.Status // session → status
	live     map[string]bool       // access token → its sign-in lives
	reason   string                // why the sign-ins ended
	holding  int                   // account streams held now
	accessed int                   // access tokens issued
}

func newAccountServer() *accountServer {
	return &accountServer{changed: make(chan struct{}), status: map[string]api.Status{}, live: map[string]bool{}}
}

func (s *accountServer) change(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

// confirm confirms every waiting code, as the phone would.
func (s *accountServer) confirm() {
	s.change(func() {
		for id, st := range s.status {
			if st == api.StatusPending {
				s.status[id] = api.StatusConfirmed
			}
		}
	})
}

// end ends every sign-in for reason, as the phone's "Sign out" would.
func (s *accountServer) end(reason string) {
	s.change(func() {
		s.reason = reason
		for k := range s.live {
			s.live[k] = false
		}
	})
}

func (s *accountServer) Holding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holding
}

func (s *accountServer) tokens() *api.Tokens {
	s.accessed++
	t := &api.Tokens{AccessToken: fmt.Sprintf("access%d", s.accessed), TokenType: "Bearer", ExpiresIn: 900,
		RefreshToken: fmt.Sprintf("refresh%d", s.accessed)}
	s.live[t.AccessToken] = true
	return t
}

var alice = api.User{ID: "u-7f3a", Username: "alice", DisplayName: "Alice Example"}

func (s *accountServer) CreateSession(context.Context, api.CreateSessionRequest) (*api.CreateSessionResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	id := fmt.Sprintf("s%d", s.n)
	s.status[id] = api.StatusPending
	return &api.CreateSessionResponse{ID: id, PollToken: "poll", VerifyURL: "http://192.168.1.20:8080/m/" + id,
		UserCode: "BCDF-GHJK", ExpiresIn: 120, ExpiresAt: time.Now().Add(2 * time.Minute), Interval: 2}, nil
}

func (s *accountServer) Events(ctx context.Context, id, _ string) (signin.Events, error) {
	return &sessionStream{s: s, ctx: ctx, id: id}, nil
}

type sessionStream struct {
	s    *accountServer
	ctx  context.Context
	id   string
	last api.Status
	done bool
}

func (e *sessionStream) Next() (*api.SessionStatusResponse, error) {
	if e.done {
		return nil, io.EOF
	}
	for {
		e.s.mu.Lock()
		st, wake := e.s.status[e.id], e.s.changed
		if st != e.last {
			e.last = st
			resp := &api.SessionStatusResponse{Status: st}
			if st == api.StatusConfirmed {
				e.done = true
				e.s.status[e.id] = "delivered"
				u := alice
				resp.Tokens, resp.User = e.s.tokens(), &u
			}
			e.s.mu.Unlock()
			return resp, nil
		}
		e.s.mu.Unlock()
		select {
		case <-e.ctx.Done():
			return nil, e.ctx.Err()
		case <-wake:
		}
	}
}

func (e *sessionStream) Close() error { return nil }

func (s *accountServer) SessionStatus(context.Context, string, string, api.Status, time.Duration) (*api.SessionStatusResponse, error) {
	return nil, errors.New("not used: the app waits on the event stream")
}

func (s *accountServer) WithdrawSession(_ context.Context, id, _ string) error {
	s.change(func() { s.status[id] = api.StatusCancelled })
	return nil
}

func (s *accountServer) Refresh(context.Context, string) (*api.LoginResponse, error) {
	return nil, &client.Error{StatusCode: http.StatusUnauthorized, Code: api.ErrUnauthorized}
}

func (s *accountServer) Logout(context.Context, string, string) error { return nil }

func (s *accountServer) Me(context.Context, string) (*api.Me, error) {
	return &api.Me{ID: alice.ID, Username: alice.Username, DisplayName: alice.DisplayName}, nil
}

func (s *accountServer) WaitRevoked(ctx context.Context, accessToken string) (*api.Revoked, error) {
	s.mu.Lock()
	s.holding++
	defer func() {
		s.holding--
		s.mu.Unlock()
	}()
	for s.live[accessToken] {
		wake := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			s.mu.Lock()
			return nil, ctx.Err()
		case <-wake:
		}
		s.mu.Lock()
	}
	return &api.Revoked{Reason: s.reason}, nil
}

var _ signin.API = (*accountServer)(nil)

// TestAppSignedOutElsewhere: a sign-in ended from the phone takes the
// window back to a code, saying why, and forgets the saved sign-in.
func TestAppSignedOutElsewhere(t *testing.T) {
	tests := []struct{ reason, notice string }{
		{api.ReasonSignedOut, "You were signed out from your phone."},
		{api.ReasonPasswordChanged, "Your password was changed; sign in again."},
		{"moon_phase", "The server ended this sign-in (moon_phase); sign in again."},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			srv := newAccountServer()
			tokens := &tokenstore.Memory{}
			q := make(queue, 1000)
			a := New(test.NewTempApp(t), Config{
				Server: testServer, Tokens: tokens, Do: q.Do, Tick: time.Hour,
				NewAPI: func(string) signin.API { return srv },
			})
			t.Cleanup(a.Stop)
			a.Start()
			w := a.Window()
			q.pump(t, "a code", func() bool { return a.view.state.Phase == signin.Waiting })
			srv.confirm()
			q.pump(t, "the account", func() bool { return visible(w, a.view.account) })
			if tokens.Len() != 1 {
				t.Fatalf("sign-in not saved")
			}
			q.pump(t, "the account stream held", func() bool { return srv.Holding() == 1 })

			srv.end(tt.reason)
			q.pump(t, "the code screen", func() bool {
				return visible(w, a.view.login) && visible(w, a.view.qr) && a.view.state.Code != nil
			})
			if !visibleTexts(w)[tt.notice] || !visible(w, a.view.notice) {
				t.Errorf("%q not shown: %q", tt.notice, keys(visibleTexts(w)))
			}
			if visible(w, a.view.account) || visible(w, a.view.problem) {
				t.Errorf("account view or a problem still shown")
			}
			if tokens.Len() != 0 {
				t.Errorf("the ended sign-in is still saved")
			}
			if w.Title() != "qrlogin — Sign in" {
				t.Errorf("title %q", w.Title())
			}
		})
	}
}

// Quitting lets go of the account's stream.
func TestAppStopLetsGoOfAccountStream(t *testing.T) {
	srv := newAccountServer()
	q := make(queue, 1000)
	a := New(test.NewTempApp(t), Config{
		Server: testServer, Tokens: &tokenstore.Memory{}, Do: q.Do, Tick: time.Hour,
		NewAPI: func(string) signin.API { return srv },
	})
	a.Start()
	q.pump(t, "a code", func() bool { return a.view.state.Phase == signin.Waiting })
	srv.confirm()
	q.pump(t, "the account stream held", func() bool { return srv.Holding() == 1 })
	a.Stop()
	if n := srv.Holding(); n != 0 {
		t.Errorf("%d account streams held after Stop", n)
	}
}
