package ratelimit_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/ratelimit"
)

// clock is a fake time source that only moves when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

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
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := ratelimit.New(tt.perMinute, tt.burst, c.Now)
			for i, s := range tt.steps {
				c.Advance(s.advance)
				ok, retry := l.Allow(s.key)
				if ok != s.ok || retry != s.retry {
					t.Fatalf("step %d: Allow(%q) = %v, %v; want %v, %v", i, s.key, ok, retry, s.ok, s.retry)
				}
			}
		})
	}
}

func TestUnlimitedTracksNothing(t *testing.T) {
	l := ratelimit.New(0, 5, newClock().Now)
	for i := range 1000 {
		l.Allow(fmt.Sprint(i))
	}
	if n := l.Len(); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
}

func TestIdleKeysEvicted(t *testing.T) {
	c := newClock()
	l := ratelimit.New(60, 5, c.Now) // refills from empty in 5s
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
		c.Advance(time.Second)
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
}

func TestPartlyRefilledKeysKept(t *testing.T) {
	c := newClock()
	l := ratelimit.New(1, 3, c.Now) // one token a minute
	for range 3 {
		l.Allow("slow")
	}
	c.Advance(2 * time.Minute) // two of three tokens back
	l.Allow("other")           // triggers a sweep
	if n := l.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2: a key that has not refilled must not be forgotten", n)
	}
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.Allow("slow"); ok != want {
			t.Fatalf("request %d: ok = %v, want %v", i, ok, want)
		}
	}
}

func TestMaxKeys(t *testing.T) {
	c := newClock()
	l := ratelimit.New(60, 2, c.Now)
	ratelimit.SetMaxKeys(l, 100)
	for i := range 10_000 {
		l.Allow(fmt.Sprint(i))
		if n := l.Len(); n > 100 {
			t.Fatalf("after %d keys, Len = %d, want at most 100", i+1, n)
		}
	}
	// Once the buckets have refilled, a sweep at the cap frees them all.
	c.Advance(3 * time.Second)
	for range 2 {
		l.Allow("fresh")
	}
	if n := l.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1 after a sweep at the cap", n)
	}
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
	const (
		keys       = 8
		burst      = 5
		goroutines = 16
		perG       = 200
	)
	c := newClock()
	l := ratelimit.New(60, burst, c.Now)
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
