package app_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*app.Config)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults", func(*app.Config) {}, nil},
		{"bad addr", func(c *app.Config) { c.Addr = "8080" }, []string{"addr"}},
		{"no db", func(c *app.Config) { c.DB = "" }, []string{"db"}},
		{"relative public url", func(c *app.Config) { c.PublicURL = "example.com" }, []string{"public-url"}},
		{"ftp public url", func(c *app.Config) { c.PublicURL = "ftp://example.com" }, []string{"public-url"}},
		{"zero ttl", func(c *app.Config) { c.SessionTTL = 0 }, []string{"session-ttl"}},
		{"long ttl", func(c *app.Config) { c.SessionTTL = 2 * time.Hour }, []string{"session-ttl"}},
		{"cert without key", func(c *app.Config) { c.TLSCert = "x.pem" }, []string{"tls-cert"}},
		{"TLS with an http public url", func(c *app.Config) {
			c.TLSCert, c.TLSKey, c.PublicURL = "x.pem", "x.key", "http://login.example.test"
		}, []string{"must be https://"}},
		{"bad proxy", func(c *app.Config) { c.TrustedProxies = []string{"10.0.0.0/8", "nope"} }, []string{`"nope"`}},
		{"negative limit", func(c *app.Config) { c.LimitLogin = -1 }, []string{"limit-login"}},
		{"access tokens outliving ended sign-ins", func(c *app.Config) { c.AccessTTL = 8 * 24 * time.Hour }, []string{"access-ttl", "ended sign-in"}},
		{"every problem at once", func(c *app.Config) {
			c.Addr, c.AccessTTL, c.HashConcurrency = "", -time.Second, 0
		}, []string{"addr", "access-ttl", "hash-concurrency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := app.DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSweeperRemovesEndedSessions(t *testing.T) {
	clk := testclock.New(time.Now())
	srv := apptest.Start(t, func(c *app.Config) {
		c.Now = clk.Now
		c.SweepInterval = 20 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := srv.Client()
	ended, err := c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WithdrawSession(ctx, ended.ID, ended.PollToken); err != nil {
		t.Fatal(err)
	}
	clk.Advance(9 * time.Minute) // the first session is long expired, but within retention
	live, err := c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // several sweeps; none may remove anything yet
	if st, err := c.SessionStatus(ctx, ended.ID, ended.PollToken, "", 0); err != nil || st.Status != api.StatusCancelled {
		t.Fatalf("ended session within retention: %+v %v", st, err)
	}
	clk.Advance(2 * time.Minute) // now 11 minutes after it ended
	for i := 0; ; i++ {
		_, err := c.SessionStatus(ctx, ended.ID, ended.PollToken, "", 0)
		if client.IsCode(err, api.ErrNotFound) {
			break
		}
		if i == 500 {
			t.Fatalf("ended session not swept: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The live one expired 2 minutes ago: still answers "expired".
	if st, err := c.SessionStatus(ctx, live.ID, live.PollToken, "", 0); err != nil || st.Status != api.StatusExpired {
		t.Fatalf("recently expired session: %+v %v", st, err)
	}
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := apptest.SelfSigned(t)
	srv := apptest.Start(t, func(c *app.Config) {
		c.TLSCert, c.TLSKey = certFile, keyFile
		c.PublicURL = "" // derived: https because TLS is on
	})
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("URL %s: want https", srv.URL)
	}
	c := client.New(srv.URL)
	c.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ctx := context.Background()
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	srv.AddUser(t, "alice", "Alice", "alice-password")
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/api/v1/auth/cookie", strings.NewReader(`{"username":"alice","password":"alice-password"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cks := resp.Cookies(); len(cks) != 1 || !cks[0].Secure || cks[0].Name != "__Host-qrlogin_phone" {
		t.Fatalf("cookies over TLS %+v: want one Secure cookie named __Host-qrlogin_phone", cks)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security %q over TLS", got)
	}

	// The desktop's event stream goes over HTTP/2, which TLS offers, and
	// wakes on the scan.
	var proto atomic.Value
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if tc, ok := i.Conn.(*tls.Conn); ok {
			proto.Store(tc.ConnectionState().NegotiatedProtocol)
		}
	}}
	tctx := httptrace.WithClientTrace(ctx, trace)
	c.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	sess, err := c.CreateSession(tctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	es, err := c.Events(tctx, sess.ID, sess.PollToken)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	if st, err := es.Next(); err != nil || st.Status != api.StatusPending {
		t.Fatalf("first event %+v, %v", st, err)
	}
	if p, _ := proto.Load().(string); p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	phone := client.New(srv.URL) // its own connections
	phone.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	login, err := phone.Login(ctx, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Scan(ctx, login.AccessToken, sess.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := es.Next(); err != nil || st.Status != api.StatusScanned {
		t.Fatalf("after scan %+v, %v", st, err)
	}
}

func TestDemoAccounts(t *testing.T) {
	srv := apptest.Start(t, func(c *app.Config) { c.Demo = true })
	var banner strings.Builder
	srv.App.PrintBanner(&banner)
	for _, want := range []string{srv.URL + "/m", "DEMO ONLY", "alice", "alice-demo", "bob-demo"} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, banner.String())
		}
	}
	if _, err := srv.Client().Login(context.Background(), "alice", "alice-demo"); err != nil {
		t.Fatal(err)
	}
}

// TestPlainHTTPWarning: starting with an http:// public URL that leaves
// this machine logs one warning saying how to fix it; loopback and
// https:// do not.
func TestPlainHTTPWarning(t *testing.T) {
	for _, tt := range []struct {
		publicURL string
		warnings  int
	}{
		{"http://192.0.2.10:8080", 1},
		{"http://login.example.test", 1},
		{"http://127.0.0.1:8080", 0},
		{"http://[::1]:8080", 0},
		{"http://localhost:8080", 0},
		{"https://login.example.test", 0},
		{"", 0}, // derived from the loopback listen address
	} {
		t.Run(tt.publicURL, func(t *testing.T) {
			var buf strings.Builder
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
			cfg := apptest.Config(t.TempDir())
			cfg.PublicURL = tt.publicURL
			a, err := app.New(context.Background(), cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			a.Close()
			var warns []string
			for l := range strings.Lines(buf.String()) {
				if strings.Contains(l, "level=WARN") {
					warns = append(warns, l)
				}
			}
			if len(warns) != tt.warnings {
				t.Fatalf("%d warnings, want %d:\n%s", len(warns), tt.warnings, buf.String())
			}
			for _, w := range warns {
				for _, want := range []string{"unencrypted", "--tls-cert", "--tls-key", "--public-url https://"} {
					if !strings.Contains(w, want) {
						t.Errorf("warning lacks %q: %s", want, w)
					}
				}
			}
		})
	}
}
