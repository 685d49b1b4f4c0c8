package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/store"
)

// keyRing is the server's access-token issuer over the signing keys in the
// store, re-read periodically so that a key added by `qrlogin-server keys
// rotate` (or by another server) is picked up without a restart.
//
// A key signs from its CreatedAt on; `keys rotate` dates a new key a few
// minutes ahead, so every server trusts it, and lists it in its JWKS,
// before any server signs with it. Verification accepts every stored key,
// so tokens signed with an older key stay valid until they expire. A token
// naming a key that is not loaded yet (one that another server created a
// moment ago) makes the ring reload at once, at most once a second.
type keyRing struct {
	store auth.KeyStore
	cfg   auth.IssuerConfig
	log   *slog.Logger
	cur   atomic.Pointer[keySet]

	loadMu  sync.Mutex // one load at a time, so an older read never wins
	forceMu sync.Mutex
	forced  time.Time // the last reload an unknown key caused
}

// forcedReloadEvery bounds the reloads that tokens naming unknown keys
// cause, so that forged kids cannot hammer the store.
const forcedReloadEvery = time.Second

// keySet is the keys as last loaded.
type keySet struct {
	all     *auth.Issuer // every key: verifies and publishes
	signer  *auth.Issuer // the keys active at load time: signs with the newest
	signKID string
	kids    map[string]bool // every key's id
	next    time.Time       // when the next pending key starts signing; zero if none
}

// newKeyRing loads the keys, creating the first one on a server's first
// start.
func newKeyRing(ctx context.Context, ks auth.KeyStore, cfg auth.IssuerConfig, log *slog.Logger) (*keyRing, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// NewIssuer stores a key if there is none (and copes with servers
	// racing to do so).
	if _, err := auth.NewIssuer(ctx, ks, cfg); err != nil {
		return nil, err
	}
	r := &keyRing{store: ks, cfg: cfg, log: log}
	if err := r.load(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// load reads the keys and swaps in issuers built from them.
func (r *keyRing) load(ctx context.Context) error {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	keys, err := r.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	if len(keys) == 0 {
		return errors.New("load signing keys: there are none")
	}
	now := r.cfg.Now()
	var active []store.SigningKey
	var next time.Time
	for _, k := range keys {
		if !k.CreatedAt.After(now) {
			active = append(active, k)
		} else if next.IsZero() || k.CreatedAt.Before(next) {
			next = k.CreatedAt
		}
	}
	if len(active) == 0 {
		// Only keys dated in the future (a clock set back?): signing with
		// one beats not signing at all.
		active = keys[len(keys)-1:]
	}
	set := &keySet{kids: make(map[string]bool, len(keys)), next: next}
	for _, k := range keys {
		set.kids[k.ID] = true
	}
	if set.all, err = auth.NewIssuer(ctx, fixedKeys(keys), r.cfg); err != nil {
		return err
	}
	if set.signer, err = auth.NewIssuer(ctx, fixedKeys(active), r.cfg); err != nil {
		return err
	}
	// SigningKeys lists the newest first, and the Issuer signs with the
	// first of the newest.
	set.signKID = active[0].ID
	if old := r.cur.Swap(set); old != nil && old.signKID != set.signKID {
		r.log.Info("signing access tokens with a new key", "kid", set.signKID)
	}
	return nil
}

// reload calls load every interval (a minute when zero), and as soon as a
// pending key's time comes, until ctx ends. A failed reload keeps the keys
// it has.
func (r *keyRing) reload(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	failed := false
	for {
		wait := interval
		if next := r.cur.Load().next; !next.IsZero() && !failed {
			wait = max(time.Millisecond, min(wait, next.Sub(r.cfg.Now())))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		err := r.load(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("reload signing keys", "err", err)
		}
		failed = err != nil
	}
}

// Sign implements httpapi.AccessTokens.
func (r *keyRing) Sign(userID, amr, sid string) (string, time.Time, error) {
	return r.cur.Load().signer.Sign(userID, amr, sid)
}

// Verify implements httpapi.AccessTokens.
func (r *keyRing) Verify(token string) (auth.Claims, error) {
	return r.verify(token, (*auth.Issuer).Verify)
}

// VerifyClient implements oauth.Tokens.
func (r *keyRing) VerifyClient(token, issuer string) (auth.Claims, error) {
	return r.verify(token, func(i *auth.Issuer, tok string) (auth.Claims, error) { return i.VerifyClient(tok, issuer) })
}

// SignClient implements oauth.Tokens.
func (r *keyRing) SignClient(issuer, clientID, userID, amr, scope, sid string) (string, time.Time, error) {
	return r.cur.Load().signer.SignClient(issuer, clientID, userID, amr, scope, sid)
}

// SignIDToken implements oauth.Tokens.
func (r *keyRing) SignIDToken(t auth.IDToken) (string, error) {
	return r.cur.Load().signer.SignIDToken(t)
}

// verify checks token with every loaded key, reloading the keys first if
// it names one not loaded yet.
func (r *keyRing) verify(token string, check func(*auth.Issuer, string) (auth.Claims, error)) (auth.Claims, error) {
	set := r.cur.Load()
	c, err := check(set.all, token)
	kid, ok := tokenKID(token)
	if err == nil || !ok || set.kids[kid] {
		return c, err
	}
	r.forceMu.Lock()
	defer r.forceMu.Unlock()
	if set = r.cur.Load(); !set.kids[kid] { // nobody reloaded meanwhile
		if time.Since(r.forced) < forcedReloadEvery {
			return c, err
		}
		r.forced = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if lerr := r.load(ctx); lerr != nil {
			r.log.Warn("reload signing keys for a token with an unknown key id", "err", lerr)
			return c, err
		}
		if set = r.cur.Load(); !set.kids[kid] {
			return c, err
		}
	}
	return check(set.all, token)
}

// tokenKID is the "kid" in a JWT's header, unverified.
func tokenKID(token string) (string, bool) {
	head, _, ok := strings.Cut(token, ".")
	if !ok || len(head) > 512 {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", false
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal(raw, &h) != nil || h.Kid == "" {
		return "", false
	}
	return h.Kid, true
}

// JWKS implements httpapi.AccessTokens.
func (r *keyRing) JWKS() auth.JWKS { return r.cur.Load().all.JWKS() }

// TTL implements httpapi.AccessTokens.
func (r *keyRing) TTL() time.Duration { return r.cfg.TTL }

// fixedKeys is a read-only auth.KeyStore over keys already loaded.
type fixedKeys []store.SigningKey

func (k fixedKeys) SigningKeys(context.Context) ([]store.SigningKey, error) { return k, nil }

func (k fixedKeys) CreateSigningKey(context.Context, store.SigningKey) error {
	return errors.New("the loaded key set is read-only")
}

// firstKeyRecorder is the store as the key ring sees it: a server's first
// start stores the first signing key (auth.NewIssuer), and that is
// recorded in the audit log like a rotation.
type firstKeyRecorder struct {
	store.Store
	audit interface {
		Record(ctx context.Context, e audit.Entry)
	}
}

// CreateSigningKey stores k and records it.
func (s firstKeyRecorder) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	if err := s.Store.CreateSigningKey(ctx, k); err != nil {
		return err
	}
	s.audit.Record(ctx, audit.Entry{Event: audit.KeyRotated,
		Detail: map[string]string{"kid": k.ID, "signs_from": k.CreatedAt.UTC().Format(time.RFC3339), "by": "first start"}})
	return nil
}
