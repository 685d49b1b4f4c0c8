package mobileweb_test

// pageDouble is a TEST DOUBLE of qrlogin-server for the phone page. It
// serves the real embedded page (with the server's Content-Security-Policy)
// and answers, from memory and per docs/API.md, the calls the page makes:
// the cookie sign-in, /me, login sessions (scan, confirm, cancel), the
// account's signed-in devices (GET/DELETE /api/v1/devices) and sign out
// everywhere. It lets the browser tests put the page in every state on
// purpose (each error, each result screen, devices of every kind and age),
// and it stood in for the devices API while the server had none. Tests
// that must hold against the real server use apptest instead.

import (
	"crypto/rand"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	mobileweb "github.com/qrlogin/qrlogin/mobile-web"
	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/shared/api"
)

const doubleCookie = "qrlogin_phone"

// signInBody is the body of the page's POST /api/v1/auth/cookie, with the
// optional description of the phone: the server's own wire type.
type signInBody = api.LoginRequest

// doubleSession is a login session of the double: what scan answers, and
// the status confirm and cancel move it to.
type doubleSession struct {
	info   api.SessionInfo
	status int    // the answer to scan when not 200
	code   string // its error code
	retry  int    // Retry-After for a 429
}

type pageDouble struct {
	URL string

	mu       sync.Mutex
	user     api.User
	devices  []api.SignedInDevice // newest first
	cookies  map[string]string    // cookie value → device id
	sessions map[string]*doubleSession
	signIns  []signInBody
	fail     map[string]int // "METHOD /path" → status answered once (0: connections drop until clearFail)
	calls    []string       // "METHOD /path" of every API call
}

// newPageDouble starts the double on 127.0.0.1 with alice's account.
func newPageDouble(t *testing.T) *pageDouble {
	t.Helper()
	d := &pageDouble{
		user:     api.User{ID: "u-alice", Username: "alice", DisplayName: "Alice Chen"},
		cookies:  map[string]string{},
		sessions: map[string]*doubleSession{},
		fail:     map[string]int{},
	}
	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", httpapi.PageCSP)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(mobileweb.Index(mobileweb.Language(r.Header.Get("Accept-Language"))))
	}
	mux.HandleFunc("GET /m", page)
	mux.HandleFunc("GET /m/{id}", page)
	mux.Handle("GET /m/static/", http.StripPrefix("/m/static/", http.FileServerFS(mobileweb.Static())))
	mux.HandleFunc("POST /api/v1/auth/cookie", d.signIn)
	mux.HandleFunc("DELETE /api/v1/auth/cookie", d.signOut)
	mux.HandleFunc("GET /api/v1/me", d.authed(func(w http.ResponseWriter, _ *http.Request, _ string) {
		writeJSON(w, http.StatusOK, d.user)
	}))
	mux.HandleFunc("GET /api/v1/devices", d.authed(d.list))
	mux.HandleFunc("DELETE /api/v1/devices/{id}", d.authed(d.delete))
	mux.HandleFunc("POST /api/v1/auth/logout-all", d.authed(d.logoutAll))
	mux.HandleFunc("GET /api/v1/login-sessions/{id}", d.authed(d.session("")))
	mux.HandleFunc("POST /api/v1/login-sessions/{id}/scan", d.authed(d.session("scan")))
	mux.HandleFunc("POST /api/v1/login-sessions/{id}/confirm", d.authed(d.session("confirm")))
	mux.HandleFunc("POST /api/v1/login-sessions/{id}/cancel", d.authed(d.session("cancel")))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.Path
		d.mu.Lock()
		d.calls = append(d.calls, key)
		status, failing := d.fail[key]
		if status != 0 {
			delete(d.fail, key)
		}
		d.mu.Unlock()
		if failing && status == 0 {
			// The connection drops: the page's fetch fails.
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		if failing {
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "7")
			}
			writeError(w, status, "unavailable")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	d.URL = srv.URL
	if _, err := fs.Stat(mobileweb.Static(), "app.js"); err != nil {
		t.Fatal(err)
	}
	return d
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, api.Error{Code: code, Message: http.StatusText(status)})
}

// addDevice adds a sign-in of alice, made ago and last used lastUsed ago.
func (d *pageDouble) addDevice(dev api.SignedInDevice, ago, lastUsed time.Duration) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	dev.ID = rand.Text()
	dev.CreatedAt = now.Add(-ago).UTC()
	dev.LastUsedAt = now.Add(-lastUsed).UTC()
	d.devices = append(d.devices, dev)
	return dev.ID
}

// endDevice ends a sign-in behind the page's back (another phone signed it
// out).
func (d *pageDouble) endDevice(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removeLocked(id)
}

func (d *pageDouble) removeLocked(id string) bool {
	for i, dev := range d.devices {
		if dev.ID == id {
			d.devices = append(d.devices[:i], d.devices[i+1:]...)
			for c, did := range d.cookies {
				if did == id {
					delete(d.cookies, c)
				}
			}
			return true
		}
	}
	return false
}

// failNext makes the next "METHOD /path" call answer status; with 0 every
// such call drops its connection until clearFail (browsers retry a dropped
// request once).
func (d *pageDouble) failNext(call string, status int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail[call] = status
}

func (d *pageDouble) clearFail(call string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.fail, call)
}

func (d *pageDouble) called(call string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.calls {
		if c == call {
			n++
		}
	}
	return n
}

func (d *pageDouble) deviceIDs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for _, dev := range d.devices {
		ids = append(ids, dev.ID)
	}
	return ids
}

// addSession adds a login session the phone can open at /m/<id>.
func (d *pageDouble) addSession(id string, s doubleSession) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s.info.ID = id
	if s.info.Status == "" {
		s.info.Status = api.StatusPending
	}
	if s.info.ExpiresAt.IsZero() {
		s.info.ExpiresAt = time.Now().Add(2 * time.Minute).UTC()
	}
	if s.info.Device.CreatedAt.IsZero() {
		s.info.Device.CreatedAt = time.Now().Add(-10 * time.Second).UTC()
	}
	if s.info.Network == "" {
		s.info.Network = api.NetworkUnknown
	}
	d.sessions[id] = &s
}

func (d *pageDouble) signIn(w http.ResponseWriter, r *http.Request) {
	var body signInBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, api.ErrInvalidRequest)
		return
	}
	if body.Username != "alice" || body.Password != alicePassword {
		writeError(w, http.StatusUnauthorized, api.ErrInvalidCredentials)
		return
	}
	d.mu.Lock()
	d.signIns = append(d.signIns, body)
	dev := api.SignedInDevice{ID: rand.Text(), Kind: api.DevicePhone, IP: "127.0.0.1", LastIP: "127.0.0.1",
		CreatedAt: time.Now().UTC(), LastUsedAt: time.Now().UTC(),
		Name: body.DeviceName, Platform: body.Platform, AppName: body.AppName}
	d.devices = append([]api.SignedInDevice{dev}, d.devices...)
	value := rand.Text()
	d.cookies[value] = dev.ID
	d.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: doubleCookie, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, map[string]any{"user": d.user})
}

func (d *pageDouble) signOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(doubleCookie); err == nil {
		d.mu.Lock()
		if id, ok := d.cookies[c.Value]; ok {
			d.removeLocked(id)
		}
		d.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: doubleCookie, Path: "/", MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// authed answers 401 unless the request carries a live phone cookie; h
// gets the cookie's device id.
func (d *pageDouble) authed(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(doubleCookie)
		d.mu.Lock()
		id, ok := "", false
		if err == nil {
			id, ok = d.cookies[c.Value]
		}
		d.mu.Unlock()
		if !ok {
			writeError(w, http.StatusUnauthorized, api.ErrUnauthorized)
			return
		}
		h(w, r, id)
	}
}

func (d *pageDouble) list(w http.ResponseWriter, _ *http.Request, self string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := api.DevicesResponse{Devices: []api.SignedInDevice{}}
	for _, dev := range d.devices {
		dev.Current = dev.ID == self
		dev.New = time.Since(dev.CreatedAt) < api.NewDeviceHours*time.Hour
		out.Devices = append(out.Devices, dev)
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *pageDouble) delete(w http.ResponseWriter, r *http.Request, _ string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.removeLocked(r.PathValue("id")) {
		writeError(w, http.StatusNotFound, api.ErrNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (d *pageDouble) logoutAll(w http.ResponseWriter, _ *http.Request, _ string) {
	d.mu.Lock()
	d.devices, d.cookies = nil, map[string]string{}
	d.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: doubleCookie, Path: "/", MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func (d *pageDouble) session(what string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, _ string) {
		d.mu.Lock()
		defer d.mu.Unlock()
		s, ok := d.sessions[r.PathValue("id")]
		switch {
		case !ok:
			writeError(w, http.StatusNotFound, api.ErrNotFound)
		case what == "scan" && s.status != 0:
			if s.retry > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(s.retry))
			}
			writeError(w, s.status, s.code)
		case what == "scan" || what == "":
			if what == "scan" {
				s.info.Status = api.StatusScanned
			}
			writeJSON(w, http.StatusOK, s.info)
		default:
			s.info.Status = map[string]api.Status{"confirm": api.StatusConfirmed, "cancel": api.StatusCancelled}[what]
			writeJSON(w, http.StatusOK, api.StatusResponse{Status: s.info.Status})
		}
	}
}
