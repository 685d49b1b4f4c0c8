package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/store/sqlite"
	"github.com/qrlogin/qrlogin/shared/api"
)

// Benchmarks of the API's hot paths through the real router, with a real
// SQLite file: what one request costs the server, without the network.

type benchEnv struct {
	srv    *Server
	db     *sqlite.DB
	user   string // user id of the phone
	access string // its access token
}

func newBenchEnv(b *testing.B, opts ...func(*Config)) *benchEnv {
	b.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	issuer, err := auth.NewIssuer(ctx, db, auth.IssuerConfig{Issuer: "qrlogin", Audience: "qrlogin", TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	accts := &account.Service{
		Store:  db,
		Hasher: auth.NewHasher(auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2),
		NewID:  auth.NewID,
		Now:    time.Now,
	}
	cfg := Config{PublicURL: "http://192.168.1.23:8080", SessionTTL: time.Hour, RefreshTTL: 24 * time.Hour}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg, Deps{Store: db, Accounts: accts, Tokens: issuer})
	if err != nil {
		b.Fatal(err)
	}
	u, err := accts.Add(ctx, "alice", "Alice", "alice-password")
	if err != nil {
		b.Fatal(err)
	}
	access, _, err := issuer.Sign(u.ID, auth.AMRPassword, "")
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{srv: srv, db: db, user: u.ID, access: access}
}

// serve runs one request through the router and checks its status.
func (e *benchEnv) serve(b *testing.B, method, path, bearer, body string, want int) *httptest.ResponseRecorder {
	var req *http.Request
	if body != "" {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	w := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(w, req)
	if w.Code != want {
		b.Fatalf("%s %s: %d %s, want %d", method, path, w.Code, w.Body, want)
	}
	return w
}

// session creates a login session as the desktop would and returns it.
func (e *benchEnv) session(b *testing.B) api.CreateSessionResponse {
	w := e.serve(b, http.MethodPost, "/api/v1/login-sessions", "", `{"device_name":"Laptop"}`, http.StatusCreated)
	var s api.CreateSessionResponse
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		b.Fatal(err)
	}
	return s
}

const createBody = `{"device_name":"Alice's laptop","platform":"linux/amd64","app_name":"qrlogin-desktop 1.0.0"}`

// BenchmarkCreateSession is POST /login-sessions: ids, poll token, one
// INSERT and the JSON answer.
func BenchmarkCreateSession(b *testing.B) {
	e := newBenchEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		e.serve(b, http.MethodPost, "/api/v1/login-sessions", "", createBody, http.StatusCreated)
	}
}

// BenchmarkQRImage is GET /login-sessions/{id}/qr.png at the default
// size: one read, the QR matrix and the PNG.
func BenchmarkQRImage(b *testing.B) {
	e := newBenchEnv(b)
	s := e.session(b)
	path := "/api/v1/login-sessions/" + s.ID + "/qr.png"
	b.ReportAllocs()
	for b.Loop() {
		e.serve(b, http.MethodGet, path, "", "", http.StatusOK)
	}
}

// BenchmarkStatus is a status check that does not wait: poll token hash,
// one read and the JSON answer.
func BenchmarkStatus(b *testing.B) {
	e := newBenchEnv(b)
	s := e.session(b)
	path := "/api/v1/login-sessions/" + s.ID + "/status"
	b.ReportAllocs()
	for b.Loop() {
		e.serve(b, http.MethodGet, path, s.PollToken, "", http.StatusOK)
	}
}

// BenchmarkScanConfirm is the phone's two requests, each a verified
// access token and one read-modify-write transaction.
func BenchmarkScanConfirm(b *testing.B) {
	e := newBenchEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s := e.session(b)
		b.StartTimer()
		e.serve(b, http.MethodPost, "/api/v1/login-sessions/"+s.ID+"/scan", e.access, "", http.StatusOK)
		e.serve(b, http.MethodPost, "/api/v1/login-sessions/"+s.ID+"/confirm", e.access, "", http.StatusOK)
	}
}

// BenchmarkDeliver is the status request that hands over the tokens: a
// signed access token, a refresh token and one transaction.
func BenchmarkDeliver(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s := e.session(b)
		_, err := e.db.UpdateSession(ctx, s.ID, func(ls *login.Session) error {
			now := time.Now()
			if err := login.Scan(ls, e.user, "Alice", now); err != nil {
				return err
			}
			return login.Confirm(ls, e.user, now)
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		w := e.serve(b, http.MethodGet, "/api/v1/login-sessions/"+s.ID+"/status", s.PollToken, "", http.StatusOK)
		if !strings.Contains(w.Body.String(), `"access_token"`) {
			b.Fatalf("no tokens in %s", w.Body)
		}
	}
}
