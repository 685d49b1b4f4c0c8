package ratelimit_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qrlogin/qrlogin/server/ratelimit"
)

// step is one request: after advancing the clock, key asks; the answer
// must be ok with that retryAfter (0 when ok).
type step struct {
	advance time.Duration
	key     string
	ok      bool
	retry   time.Duration
}

func TestAllow(t *testing.T) {
	allow := func(key string) step { return step{key: key, ok: true} }
	refuse := func(key string, retry time.Duration) step { return step{key: key, retry: retry} }
	after := func(d time.Duration, s step) step { s.advance = d; return s }

	tests := []struct {
		name             string
		perMinute, burst int
		steps            []step
	}{
		{
			name: "burst then refuse", perMinute: 6, burst: 3,
			steps: []step{allow("a"), allow("a"), allow("a"), refuse("a", 10*time.Second), refuse("a", 10*time.Second)},
		},
		{
			name: "refill after time passes", perMinute: 6, burst: 2,
			steps: []step{
				allow("a"), allow("a"), refuse("a", 10*time.Second),
				after(4*time.Second, refuse("a", 6*time.Second)),
				after(5500*time.Millisecond, refuse("a", time.Second)), // 0.5s left rounds up
				after(500*time.Millisecond, allow("a")),
				refuse("a", 10*time.Second),
				after(time.Hour, allow("a")), allow("a"), refuse("a", 10*time.Second), // refills only to burst
			},
		},
		{
			name: "retry after rounds up to a whole second", perMinute: 7, burst: 1,
			// one token every 60/7 = 8.57s
			steps: []step{allow("a"), refuse("a", 9*time.Second), after(8*time.Second, refuse("a", time.Second))},
		},
		{
			name: "fast limit still says at least a second", perMinute: 6000, burst: 1,
			steps: []step{allow("a"), refuse("a", time.Second), after(10*time.Millisecond, allow("a"))},
		},
		{
			name: "one a minute", perMinute: 1, burst: 1,
			steps: []step{allow("a"), refuse("a", time.Minute), after(59*time.Second, refuse("a", time.Second)), after(time.Second, allow("a"))},
		},
		{
			name: "burst below one means one", perMinute: 60, burst: 0,
			steps: []step{allow("a"), refuse("a", time.Second)},
		},
		{
			name: "keys are independent", perMinute: 60, burst: 1,
			steps: []step{allow("a"), refuse("a", time.Second), allow("b"), refuse("b", time.Second), allow("c"), refuse("a", time.Second)},
		},
		{
			name: "empty key is a key", perMinute: 60, burst: 1,
			steps: []step{allow(""), refuse("", time.Second), allow("a")},
		},
		{
			name: "unlimited", perMinute: 0, burst: 1,
			steps: []step{allow("a"), allow("a"), allow("a"), allow("a"), allow("a"), allow("b")},
		},
		{
			name: "negative is unlimited", perMinute: -5, burst: 1,
			steps: []step{allow("a"), allow("a"), allow("a")},
		},
	}
	for _, tt := range tests {
		// In a synctest bubble time.Sleep moves the clock at once.
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := ratelimit.New(tt.perMinute, tt.burst, time.Now)
				for i, s := range tt.steps {
					time.Sleep(s.advance)
					ok, retry := l.Allow(s.key)
					if ok != s.ok || retry != s.retry {
						t.Fatalf("step %d: Allow(%q) = %v, %v; want %v, %v", i, s.key, ok, retry, s.ok, s.retry)
					}
				}
			})
		})
	}
}

func TestUnlimitedTracksNothing(t *testing.T) {
	l := ratelimit.New(0, 5, time.Now)
	for i := range 1000 {
		l.Allow(fmt.Sprint(i))
	}
	if n := l.Len(); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
}

func TestIdleKeysEvicted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := ratelimit.New(60, 5, time.Now) // refills from empty in 5s
		for i := range 1000 {
			l.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
		}
		for range 5 {
			l.Allow("busy")
		}
		if n := l.Len(); n != 1001 {
			t.Fatalf("Len = %d, want 1001", n)
		}

		// A minute later everyone is full again except the busy key, which
		// keeps asking; the next call sweeps.
		for range 60 {
			time.Sleep(time.Second)
			l.Allow("busy")
			l.Allow("busy")
		}
		if n := l.Len(); n != 1 {
			t.Fatalf("after a minute idle, Len = %d, want 1 (the busy key)", n)
		}
		// The busy key kept its state: it is still limited.
		if ok, _ := l.Allow("busy"); ok {
			t.Errorf("busy key was reset by the sweep")
		}
		// A swept key starts fresh with its full burst.
		for i := range 5 {
			if ok, _ := l.Allow("10.0.0.0"); !ok {
				t.Fatalf("request %d of a swept key refused", i)
			}
		}
	})
}

func TestPartlyRefilledKeysKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := ratelimit.New(1, 3, time.Now) // one token a minute
		for range 3 {
			l.Allow("slow")
		}
		time.Sleep(2 * time.Minute) // two of three tokens back
		l.Allow("other")            // triggers a sweep
		if n := l.Len(); n != 2 {
			t.Fatalf("Len = %d, want 2: a key that has not refilled must not be forgotten", n)
		}
		for i, want := range []bool{true, true, false} {
			if ok, _ := l.Allow("slow"); ok != want {
				t.Fatalf("request %d: ok = %v, want %v", i, ok, want)
			}
		}
	})
}

func TestMaxKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := ratelimit.New(60, 2, time.Now)
		ratelimit.SetMaxKeys(l, 100)
		for i := range 10_000 {
			l.Allow(fmt.Sprint(i))
			if n := l.Len(); n > 100 {
				t.Fatalf("after %d keys, Len = %d, want at most 100", i+1, n)
			}
		}
		// Once the buckets have refilled, a sweep at the cap frees them all.
		time.Sleep(3 * time.Second)
		for range 2 {
			l.Allow("fresh")
		}
		if n := l.Len(); n != 1 {
			t.Fatalf("Len = %d, want 1 after a sweep at the cap", n)
		}
	})
}

func TestNilClock(t *testing.T) {
	l := ratelimit.New(60, 1, nil)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("first request refused")
	}
	if ok, retry := l.Allow("a"); ok || retry != time.Second {
		t.Fatalf("second request = %v, %v; want refused for 1s", ok, retry)
	}
}

// TestConcurrent hammers one limiter from many goroutines (run with
// -race). The clock stands still, so exactly burst requests per key may
// succeed whatever the interleaving.
func TestConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			keys       = 8
			burst      = 5
			goroutines = 16
			perG       = 200
		)
		l := ratelimit.New(60, burst, time.Now)
		var allowed [keys]atomic.Int64
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range perG {
					k := (g + i) % keys
					if ok, _ := l.Allow(fmt.Sprint(k)); ok {
						allowed[k].Add(1)
					}
					_ = l.Len()
				}
			})
		}
		wg.Wait()
		for k := range keys {
			if n := allowed[k].Load(); n != burst {
				t.Errorf("key %d: %d requests allowed, want %d", k, n, burst)
			}
		}
	})
}

func BenchmarkAllow(b *testing.B) {
	l := ratelimit.New(1_000_000, 1_000_000, nil)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("192.0.2.%d", i)
	}
	i := 0
	for b.Loop() {
		l.Allow(keys[i%len(keys)])
		i++
	}
}

func TestKey(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"192.0.2.8", "192.0.2.8"}, // IPv4 neighbours are separate clients
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:DB8:1:2:0:0:0:9", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"::1", "::/64"},
		{"", ""},
		{"not an ip", "not an ip"},
	}
	for _, tt := range tests {
		if got := ratelimit.Key(tt.ip); got != tt.want {
			t.Errorf("Key(%q) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

// TestHold: only attempts that end with done(true) use up the bucket.
func TestHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := ratelimit.New(6, 2, time.Now) // a token every 10 s
		hold := func(key string) (bool, time.Duration, func(bool)) {
			t.Helper()
			return l.Hold(key)
		}
		// A person who gets in every time is never refused.
		for i := range 50 {
			ok, _, done := hold("alice")
			if !ok {
				t.Fatalf("successful attempt %d refused", i+1)
			}
			done(false)
		}
		// Failures use the burst up.
		for i := range 2 {
			ok, _, done := hold("alice")
			if !ok {
				t.Fatalf("failure %d refused within the burst", i+1)
			}
			done(true)
		}
		if ok, retry, _ := hold("alice"); ok || retry != 10*time.Second {
			t.Fatalf("after the burst of failures: %v, %v; want refused for 10s", ok, retry)
		}
		if ok, _, _ := hold("bob"); !ok {
			t.Fatal("another key refused")
		}
		time.Sleep(10 * time.Second)
		ok, _, done := hold("alice")
		if !ok {
			t.Fatal("refused after a token came back")
		}
		// done is idempotent: a second call takes nothing more.
		done(true)
		done(true)
		if ok, retry, _ := hold("alice"); ok || retry != 10*time.Second {
			t.Fatalf("after the refilled token failed: %v, %v; want refused for 10s", ok, retry)
		}
	})
}

// TestHoldConcurrent: attempts in progress hold their token, so a burst of
// parallel guesses gets no further than the bucket allows.
func TestHoldConcurrent(t *testing.T) {
	l := ratelimit.New(6, 3, time.Now)
	var dones []func(bool)
	for range 3 {
		ok, _, done := l.Hold("alice")
		if !ok {
			t.Fatal("attempt within the burst refused")
		}
		dones = append(dones, done)
	}
	if ok, _, _ := l.Hold("alice"); ok {
		t.Fatal("a fourth attempt went ahead while three were in progress")
	}
	dones[0](false) // that one succeeded: its token is free again
	ok, _, done := l.Hold("alice")
	if !ok {
		t.Fatal("the token of a successful attempt was not freed")
	}
	done(true)
	dones[1](true)
	dones[2](true)
	if ok, _, _ := l.Hold("alice"); ok {
		t.Fatal("three failures did not use the burst up")
	}
}

func TestHoldUnlimited(t *testing.T) {
	l := ratelimit.New(0, 1, time.Now)
	for range 10 {
		ok, _, done := l.Hold("a")
		if !ok {
			t.Fatal("refused without a limit")
		}
		done(true)
	}
}
