package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/qrlogin/qrlogin/server/auth"
)

// cheap are parameters that make a hash take microseconds, for tests.
var cheap = auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newHasher(tb testing.TB, p auth.Params) *auth.Hasher {
	tb.Helper()
	return auth.NewHasher(p, 2)
}

func mustHash(tb testing.TB, h *auth.Hasher, password string) string {
	tb.Helper()
	enc, err := h.Hash(context.Background(), password)
	if err != nil {
		tb.Fatalf("Hash: %v", err)
	}
	return enc
}

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$`)

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, cheap)
	tests := []struct {
		name     string
		password string
		attempt  string
		want     bool
	}{
		{"same", "correct horse", "correct horse", true},
		{"wrong", "correct horse", "correct horsE", false},
		{"prefix", "correct horse", "correct", false},
		{"empty password", "", "", true},
		{"empty attempt", "secret", "", false},
		{"unicode", "pässwörd 🔑", "pässwörd 🔑", true},
		{"long", strings.Repeat("x", 10000), strings.Repeat("x", 10000), true},
		{"long differs at end", strings.Repeat("x", 10000), strings.Repeat("x", 9999) + "y", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := mustHash(t, h, tt.password)
			if !phc.MatchString(enc) {
				t.Fatalf("Hash = %q, not a PHC argon2id string", enc)
			}
			ok, err := h.Verify(ctx, tt.attempt, enc)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ok != tt.want {
				t.Errorf("Verify = %v, want %v", ok, tt.want)
			}
		})
	}
}

func TestHashIsSalted(t *testing.T) {
	h := newHasher(t, cheap)
	a, b := mustHash(t, h, "same"), mustHash(t, h, "same")
	if a == b {
		t.Fatalf("two hashes of one password are equal: %q", a)
	}
}

func TestDefaultParams(t *testing.T) {
	p := auth.DefaultParams()
	want := auth.Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	if p != want {
		t.Fatalf("DefaultParams = %+v, want %+v", p, want)
	}
	h := auth.NewHasher(p, 1)
	enc := mustHash(t, h, "hunter2")
	m := phc.FindStringSubmatch(enc)
	if m == nil {
		t.Fatalf("Hash = %q, not a PHC argon2id string", enc)
	}
	if got := strings.Join(m[1:4], ","); got != "19456,2,1" {
		t.Errorf("m,t,p = %s, want 19456,2,1", got)
	}
	salt, err := base64.RawStdEncoding.DecodeString(m[4])
	if err != nil || len(salt) != 16 {
		t.Errorf("salt %q: %d bytes, err %v; want 16 bytes", m[4], len(salt), err)
	}
	key, err := base64.RawStdEncoding.DecodeString(m[5])
	if err != nil || len(key) != 32 {
		t.Errorf("key %q: %d bytes, err %v; want 32 bytes", m[5], len(key), err)
	}
	ok, err := h.Verify(context.Background(), "hunter2", enc)
	if !ok || err != nil {
		t.Errorf("Verify(right password) = %v, %v", ok, err)
	}
	if h.NeedsRehash(enc) {
		t.Errorf("NeedsRehash(fresh hash) = true")
	}
}

// TestVerifyForeignHash checks interoperability with the reference C
// implementation: hashes made by its argon2 command-line tool, e.g.
//
//	echo -n "correct horse battery staple" | argon2 qrlogin-saltsalt -id -t 2 -m 6 -p 1 -l 32 -e
func TestVerifyForeignHash(t *testing.T) {
	tests := []struct {
		enc, password string
	}{
		{"$argon2id$v=19$m=64,t=2,p=1$cXJsb2dpbi1zYWx0c2FsdA$vYKVW3QfwKlzrPADnE3O9iS3O0VMzgTdirNbLX9L534", "correct horse battery staple"},
		{"$argon2id$v=19$m=128,t=1,p=2$YW5vdGhlciBzYWx0IDEyMw$tI0x4RUnBdTOBYZFJQ3smw", "pässwörd 🔑"},
	}
	h := newHasher(t, auth.Params{Memory: 64, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32})
	for _, tt := range tests {
		for pw, want := range map[string]bool{tt.password: true, tt.password + " ": false, "": false} {
			ok, err := h.Verify(context.Background(), pw, tt.enc)
			if err != nil || ok != want {
				t.Errorf("Verify(%q, %s) = %v, %v; want %v", pw, tt.enc, ok, err, want)
			}
		}
	}
	if h.NeedsRehash(tests[0].enc) {
		t.Errorf("NeedsRehash(hash with the hasher's own params) = true")
	}
	if !h.NeedsRehash(tests[1].enc) {
		t.Errorf("NeedsRehash(hash with other params) = false")
	}
}

// TestVerifyUsesStoredParams checks that raising the parameters later does
// not lock out users whose hashes were made with the old ones.
func TestVerifyUsesStoredParams(t *testing.T) {
	ctx := context.Background()
	old := newHasher(t, cheap)
	raised := cheap
	raised.Memory, raised.Time = 128, 2
	cur := newHasher(t, raised)

	enc := mustHash(t, old, "pw")
	ok, err := cur.Verify(ctx, "pw", enc)
	if !ok || err != nil {
		t.Fatalf("Verify(old hash) with raised params = %v, %v; want true", ok, err)
	}
	if !cur.NeedsRehash(enc) {
		t.Errorf("NeedsRehash(old hash) = false, want true")
	}
	if old.NeedsRehash(enc) {
		t.Errorf("NeedsRehash by the hasher that made it = true")
	}
	if !strings.Contains(mustHash(t, cur, "pw"), "$m=128,t=2,p=1$") {
		t.Errorf("new hash does not carry the raised params")
	}
	for _, change := range []func(*auth.Params){
		func(p *auth.Params) { p.SaltLen = 32 },
		func(p *auth.Params) { p.KeyLen = 16 },
		func(p *auth.Params) { p.Threads = 2 },
	} {
		p := cheap
		change(&p)
		if !old.NeedsRehash(mustHash(t, newHasher(t, p), "pw")) {
			t.Errorf("NeedsRehash(hash with %+v) by hasher with %+v = false", p, cheap)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, cheap)
	good := mustHash(t, h, "pw")
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	tests := []struct {
		name, enc string
	}{
		{"empty", ""},
		{"dollar", "$"},
		{"plain text password", "pw"},
		{"too few fields", "$argon2id$v=19$m=64,t=1,p=1$" + salt},
		{"too many fields", good + "$x"},
		{"leading text", "x" + good},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key + "$"},
		{"params out of order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"missing param", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{"extra param", "$argon2id$v=19$m=64,t=1,p=1,x=2$" + salt + "$" + key},
		{"non-numeric", "$argon2id$v=19$m=abc,t=1,p=1$" + salt + "$" + key},
		{"negative", "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key},
		{"overflow", "$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key},
		{"memory huge", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"memory tiny", "$argon2id$v=19$m=1,t=1,p=1$" + salt + "$" + key},
		{"time zero", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"time huge", "$argon2id$v=19$m=64,t=100000,p=1$" + salt + "$" + key},
		{"threads zero", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"threads 256", "$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key},
		{"salt not base64", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key},
		{"salt padded", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"salt short", "$argon2id$v=19$m=64,t=1,p=1$AAAA$" + key},
		{"salt empty", "$argon2id$v=19$m=64,t=1,p=1$$" + key},
		{"key empty", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$"},
		{"key short", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAAAAAAA"},
		{"key url alphabet", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.NewReplacer("+", "-", "/", "_").Replace(key) + "-_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify(ctx, "pw", tt.enc)
			if ok {
				t.Errorf("Verify = true")
			}
			if !errors.Is(err, auth.ErrMalformedHash) {
				t.Errorf("Verify error = %v, want ErrMalformedHash", err)
			}
			if !h.NeedsRehash(tt.enc) {
				t.Errorf("NeedsRehash = false")
			}
		})
	}
}

func TestVerifyDummy(t *testing.T) {
	h := newHasher(t, cheap)
	if err := h.VerifyDummy(context.Background(), "anything"); err != nil {
		t.Fatalf("VerifyDummy: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.VerifyDummy(ctx, "anything"); !errors.Is(err, context.Canceled) {
		t.Fatalf("VerifyDummy(cancelled) = %v, want context.Canceled", err)
	}
}

func TestCancelledContext(t *testing.T) {
	h := newHasher(t, cheap)
	enc := mustHash(t, h, "pw")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash(cancelled) = %v, want context.Canceled", err)
	}
	if ok, err := h.Verify(ctx, "pw", enc); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Verify(cancelled) = %v, %v, want false, context.Canceled", ok, err)
	}
}

func TestNewHasherRejectsBadParams(t *testing.T) {
	for _, p := range []auth.Params{
		{},
		{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewHasher(%+v) did not panic", p)
				}
			}()
			auth.NewHasher(p, 1)
		}()
	}
}

func TestHasherConcurrent(t *testing.T) {
	h := auth.NewHasher(cheap, 2)
	enc := mustHash(t, h, "pw")
	errc := make(chan error, 16)
	for i := range 16 {
		go func() {
			pw := "pw"
			if i%2 == 1 {
				pw = "nope"
			}
			ok, err := h.Verify(context.Background(), pw, enc)
			if err == nil && ok != (i%2 == 0) {
				err = errors.New("wrong result")
			}
			errc <- err
		}()
	}
	for range 16 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}

func BenchmarkHashDefault(b *testing.B) {
	h := auth.NewHasher(auth.DefaultParams(), 1)
	for b.Loop() {
		if _, err := h.Hash(context.Background(), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
