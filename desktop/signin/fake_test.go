package signin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/desktop/signin"
	"github.com/qrlogin/qrlogin/desktop/tokenstore"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

// newClock is the clock shared by a test, its fake server and the flow.
func newClock() *testclock.Clock { return testclock.New(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)) }

// fakeServer is an in-memory qrlogin server behind the signin.API
// interface: it keeps the session states and token rules of the real one,
// without long-polls. Its event streams send what changed and then end,
// as a server (or a proxy) may end a stream at any time.
type fakeServer struct {
	now func() time.Time
	// noEvents makes it a server older than event streams: /events is
	// not found.
	noEvents bool
	// dropStream, when set, is how a stream with nothing more to send
	// ends (under mu), instead of io.EOF.
	dropStream func() error

	mu        sync.Mutex
	down      error // when set, every call fails with it, as a dead network would
	createErr error // when set, CreateSession fails with it
	ttl       time.Duration
	accessTTL time.Duration
	n         int
	sessions  map[string]*fakeSession
	refresh   map[string]bool // refresh token → still valid
	access    map[string]bool
	calls     map[string]int
	withdrawn []string

	// The account's event streams.
	noAccountEvents bool              // a server without them: 404
	ended           map[string]string // access token → why its sign-in ended
	endedNow        chan struct{}     // closed (and replaced) when sign-ins end
	watchErr        []error           // answers for the next streams, in turn
	holding         int               // streams held now
}

type fakeSession struct {
	poll      string
	status    api.Status
	expires   time.Time
	scannedBy string
	delivered bool
}

var alice = api.User{ID: "u-alice", Username: "alice", DisplayName: "Alice Example"}

func newFakeServer(now func() time.Time) *fakeServer {
	return &fakeServer{
		now:       now,
		ttl:       2 * time.Minute,
		accessTTL: 15 * time.Minute,
		sessions:  map[string]*fakeSession{},
		refresh:   map[string]bool{},
		access:    map[string]bool{},
		calls:     map[string]int{},
		ended:     map[string]string{},
		endedNow:  make(chan struct{}),
	}
}

var errNetwork = errors.New("dial tcp 127.0.0.1:9: connect: connection refused")

func apiErr(status int, code string) error {
	return &client.Error{StatusCode: status, Code: code, Message: code}
}

func (s *fakeServer) enter(name string) error {
	s.mu.Lock()
	s.calls[name]++
	return s.down
}

func (s *fakeServer) Calls(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

func (s *fakeServer) SetDown(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = err
}

func (s *fakeServer) CreateSession(_ context.Context, req api.CreateSessionRequest) (*api.CreateSessionResponse, error) {
	err := s.enter("create")
	defer s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if s.createErr != nil {
		return nil, s.createErr
	}
	s.n++
	id := fmt.Sprintf("sess%d", s.n)
	s.sessions[id] = &fakeSession{poll: "poll-" + id, status: api.StatusPending, expires: s.now().Add(s.ttl)}
	return &api.CreateSessionResponse{
		ID: id, PollToken: "poll-" + id,
		VerifyURL: "http://phone.test:8080/m/" + id,
		UserCode:  fmt.Sprintf("BCDF-GH%02d", s.n),
		ExpiresAt: s.now().Add(s.ttl), ExpiresIn: int(s.ttl / time.Second), Interval: 2,
	}, nil
}

func (s *fakeServer) statusOf(fs *fakeSession) api.Status {
	if (fs.status == api.StatusPending || fs.status == api.StatusScanned || fs.status == api.StatusConfirmed) &&
		!s.now().Before(fs.expires) {
		return api.StatusExpired
	}
	return fs.status
}

func (s *fakeServer) SessionStatus(_ context.Context, id, pollToken string, _ api.Status, _ time.Duration) (*api.SessionStatusResponse, error) {
	err := s.enter("status")
	defer s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.answer(id, pollToken)
}

// answer is a status answer, under s.mu.
func (s *fakeServer) answer(id, pollToken string) (*api.SessionStatusResponse, error) {
	fs, ok := s.sessions[id]
	if !ok {
		return nil, apiErr(http.StatusNotFound, api.ErrNotFound)
	}
	if fs.poll != pollToken {
		return nil, apiErr(http.StatusUnauthorized, api.ErrUnauthorized)
	}
	if fs.delivered {
		return nil, apiErr(http.StatusGone, api.ErrConsumed)
	}
	st := s.statusOf(fs)
	resp := &api.SessionStatusResponse{Status: st, ExpiresAt: fs.expires}
	if fs.scannedBy != "" {
		resp.ScannedBy = &api.ScannedBy{DisplayName: fs.scannedBy}
	}
	if st == api.StatusConfirmed {
		fs.delivered = true
		t := s.issue()
		u := alice
		resp.Tokens, resp.User = &t, &u
	}
	return resp, nil
}

func (s *fakeServer) Events(_ context.Context, id, pollToken string) (signin.Events, error) {
	err := s.enter("events")
	defer s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if s.noEvents {
		return nil, &client.Error{StatusCode: http.StatusNotFound, Code: api.ErrNotFound, Message: "No such endpoint."}
	}
	fs, ok := s.sessions[id]
	switch {
	case !ok:
		return nil, apiErr(http.StatusNotFound, api.ErrNotFound)
	case fs.poll != pollToken:
		return nil, apiErr(http.StatusUnauthorized, api.ErrUnauthorized)
	case fs.delivered:
		return nil, apiErr(http.StatusGone, api.ErrConsumed)
	}
	return &fakeStream{s: s, id: id, poll: pollToken}, nil
}

// fakeStream is an event stream of the fake server.
type fakeStream struct {
	s        *fakeServer
	id, poll string
	sent     bool
	last     api.Status
	ended    bool
}

// Next sends the current status, unless it was sent already: then the
// stream ends. A stream that lost the network (SetDown) fails.
func (e *fakeStream) Next() (*api.SessionStatusResponse, error) {
	err := e.s.enter("next")
	defer e.s.mu.Unlock()
	if err != nil {
		e.ended = true
		return nil, err
	}
	if e.ended {
		return nil, io.EOF
	}
	fs := e.s.sessions[e.id]
	if st := e.s.statusOf(fs); e.sent && st == e.last && !fs.delivered {
		e.ended = true
		if e.s.dropStream != nil {
			return nil, e.s.dropStream()
		}
		return nil, io.EOF
	}
	resp, err := e.s.answer(e.id, e.poll)
	if err != nil {
		e.ended = true
		return nil, err
	}
	e.sent, e.last = true, resp.Status
	if resp.Status != api.StatusPending && resp.Status != api.StatusScanned {
		e.ended = true
	}
	return resp, nil
}

func (e *fakeStream) Close() error { return nil }

func (s *fakeServer) issue() api.Tokens {
	s.n++
	t := api.Tokens{
		AccessToken:  fmt.Sprintf("access%d", s.n),
		TokenType:    "Bearer",
		ExpiresIn:    int(s.accessTTL / time.Second),
		RefreshToken: fmt.Sprintf("refresh%d", s.n),
	}
	s.access[t.AccessToken] = true
	s.refresh[t.RefreshToken] = true
	return t
}

func (s *fakeServer) WithdrawSession(_ context.Context, id, pollToken string) error {
	err := s.enter("withdraw")
	defer s.mu.Unlock()
	if err != nil {
		return err
	}
	fs, ok := s.sessions[id]
	if !ok || fs.poll != pollToken {
		return apiErr(http.StatusNotFound, api.ErrNotFound)
	}
	fs.status = api.StatusCancelled
	s.withdrawn = append(s.withdrawn, id)
	return nil
}

func (s *fakeServer) Refresh(_ context.Context, refreshToken string) (*api.LoginResponse, error) {
	err := s.enter("refresh")
	defer s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !s.refresh[refreshToken] {
		return nil, apiErr(http.StatusUnauthorized, api.ErrUnauthorized)
	}
	s.refresh[refreshToken] = false // rotated
	return &api.LoginResponse{Tokens: s.issue(), User: alice}, nil
}

func (s *fakeServer) Logout(_ context.Context, accessToken, refreshToken string) error {
	err := s.enter("logout")
	defer s.mu.Unlock()
	if err != nil {
		return err
	}
	if !s.access[accessToken] {
		return apiErr(http.StatusUnauthorized, api.ErrUnauthorized)
	}
	s.refresh[refreshToken] = false
	// Its stream hears of it, like any other end of the sign-in.
	s.access[accessToken] = false
	s.ended[accessToken] = api.ReasonSignedOut
	s.wakeHolders()
	return nil
}

func (s *fakeServer) Me(_ context.Context, accessToken string) (*api.Me, error) {
	err := s.enter("me")
	defer s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !s.access[accessToken] {
		return nil, apiErr(http.StatusUnauthorized, api.ErrUnauthorized)
	}
	return &api.Me{ID: alice.ID, Username: alice.Username, DisplayName: alice.DisplayName,
		CreatedAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}, nil
}

// phone acts on a session as the phone would.
func (s *fakeServer) phone(t *testing.T, id string, to api.Status, name string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	fs, ok := s.sessions[id]
	if !ok {
		t.Fatalf("phone: no session %q", id)
	}
	fs.status = to
	if to == api.StatusScanned {
		fs.scannedBy = name
	}
}

// RevokeAll revokes every refresh and access token, as a password change
// would.
func (s *fakeServer) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.refresh {
		s.refresh[k] = false
	}
	for k := range s.access {
		s.access[k] = false
	}
}

var _ signin.API = (*fakeServer)(nil)
var _ signin.API = signin.Client{Client: (*client.Client)(nil)}
var _ signin.TokenStore = (*tokenstore.Store)(nil)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// WaitRevoked holds the account's stream like the real server: a token
// whose sign-in has ended gets its reason at once, an unknown or refused
// one 401, a live one waits until End.
func (s *fakeServer) WaitRevoked(ctx context.Context, accessToken string) (*api.Revoked, error) {
	err := s.enter("watch")
	if err == nil && len(s.watchErr) > 0 {
		err, s.watchErr = s.watchErr[0], s.watchErr[1:]
	}
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if s.noAccountEvents {
		s.mu.Unlock()
		return nil, &client.Error{StatusCode: http.StatusNotFound, Code: api.ErrNotFound, Message: "No such endpoint."}
	}
	held := false
	for {
		if reason, ok := s.ended[accessToken]; ok {
			s.mu.Unlock()
			return &api.Revoked{Reason: reason}, nil
		}
		if !s.access[accessToken] {
			s.mu.Unlock()
			return nil, apiErr(http.StatusUnauthorized, api.ErrUnauthorized)
		}
		if held {
			// Woken, and the sign-in lives on: the server ended the
			// stream (it restarted).
			s.mu.Unlock()
			return nil, io.EOF
		}
		wake := s.endedNow
		s.holding++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.holding--
			s.mu.Unlock()
			return nil, ctx.Err()
		case <-wake:
		}
		s.mu.Lock()
		s.holding--
		held = true
	}
}

// End ends every sign-in for reason, as deleting the device (or the
// account, or changing the password) would: refresh and access tokens
// stop working and held streams hear why.
func (s *fakeServer) End(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.refresh {
		s.refresh[k] = false
	}
	for k, live := range s.access {
		if live {
			s.ended[k] = reason
		}
		s.access[k] = false
	}
	s.wakeHolders()
}

// Holding is the number of account streams held now.
func (s *fakeServer) Holding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holding
}

// ExpireAccess makes every access token fail as expired (401), leaving the
// refresh tokens alone, as a computer waking from a long sleep finds; held
// streams end.
func (s *fakeServer) ExpireAccess() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.access {
		s.access[k] = false
	}
	s.wakeHolders()
}

// Kick ends every held stream without a revocation, as a server restart
// would.
func (s *fakeServer) Kick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wakeHolders()
}

// wakeHolders wakes the held streams, under s.mu.
func (s *fakeServer) wakeHolders() {
	close(s.endedNow)
	s.endedNow = make(chan struct{})
}
