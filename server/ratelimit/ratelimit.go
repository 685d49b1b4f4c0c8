// Package ratelimit owns per-client request limits: a token bucket per key
// (a client IP, or a username for logins) that refills at a steady rate,
// so a person never notices it and a guessing script is slowed to a crawl.
package ratelimit

import (
	"math"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds how many keys a Limiter tracks at once, so a flood
// of distinct addresses cannot exhaust memory (about 100 bytes a key).
const DefaultMaxKeys = 100_000

// sweepEvery is how often idle buckets are dropped.
const sweepEvery = time.Minute

// Limiter is a set of token buckets, one per key, created on first use.
// A bucket that has refilled completely is indistinguishable from a new
// one, so it is dropped on the next sweep. Limiter is safe for concurrent
// use.
type Limiter struct {
	limit     rate.Limit
	burst     int
	now       func() time.Time
	unlimited bool

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	held      map[string]int // Hold calls not yet done, by key
	lastSweep time.Time
	maxKeys   int
}

// New returns a Limiter allowing perMinute requests a minute per key on
// average, and up to burst at once (at least 1). perMinute <= 0 turns the
// limit off: Allow always succeeds. now is the clock (time.Now when nil).
func New(perMinute, burst int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	if burst < 1 {
		burst = 1
	}
	return &Limiter{
		limit:     rate.Limit(float64(perMinute) / 60),
		burst:     burst,
		now:       now,
		unlimited: perMinute <= 0,
		buckets:   make(map[string]*rate.Limiter),
		held:      make(map[string]int),
		maxKeys:   DefaultMaxKeys,
	}
}

// Allow takes a token from key's bucket. When the bucket is empty it
// reports false and how long until a token is available, rounded up to
// whole seconds (at least one) for a Retry-After header.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l.unlimited {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, now)
	if b.AllowN(now, 1) {
		return true, 0
	}
	return false, l.wait(b.TokensAt(now))
}

// Hold lets one attempt of key go ahead when its bucket has a token that
// no other attempt in progress is holding, without taking it yet. The
// caller must call done once the attempt ends: done(true) takes the token
// (the attempt counts), done(false) leaves it (it does not). So only
// failed attempts count, and a burst of concurrent attempts still cannot
// get past more tokens than the bucket has.
func (l *Limiter) Hold(key string) (ok bool, retryAfter time.Duration, done func(counts bool)) {
	if l.unlimited {
		return true, 0, func(bool) {}
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	free := l.bucket(key, now).TokensAt(now) - float64(l.held[key])
	if free < 1 {
		return false, l.wait(free), func(bool) {}
	}
	l.held[key]++
	var once sync.Once
	return true, 0, func(counts bool) {
		once.Do(func() {
			now := l.now()
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.held[key]--; l.held[key] <= 0 {
				delete(l.held, key)
			}
			if counts {
				l.bucket(key, now).AllowN(now, 1)
			}
		})
	}
}

// bucket is key's bucket, created (and the map swept or trimmed) as
// needed. l.mu must be held.
func (l *Limiter) bucket(key string, now time.Time) *rate.Limiter {
	if now.Sub(l.lastSweep) >= sweepEvery {
		l.sweep(now)
	}
	b, found := l.buckets[key]
	if !found {
		if len(l.buckets) >= l.maxKeys {
			l.evict(now)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	return b
}

// wait is how long until a bucket holding tokens has a whole one, rounded
// up to whole seconds and at least one.
func (l *Limiter) wait(tokens float64) time.Duration {
	wait := time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second))
	return max(time.Second, time.Duration(math.Ceil(wait.Seconds()))*time.Second)
}

// Key is the rate-limit key of a client address: an IPv4 address as it
// is (IPv4-mapped IPv6 included), an IPv6 address by its /64, since one
// subscriber usually holds a whole /64 and can pick any address in it.
// Anything that is not an IP address is its own key.
func Key(ip string) string {
	a := net.ParseIP(ip)
	if a == nil {
		return ip
	}
	if v4 := a.To4(); v4 != nil {
		return v4.String()
	}
	return a.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// sweep drops the buckets that are full again.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	l.lastSweep = now
}

// evict makes room for one more key. It sweeps, unless a sweep ran in the
// last second (so a flood of new keys cannot make every call walk the
// whole map), and if that frees nothing it drops an arbitrary bucket:
// forgetting one client's history is better than growing without bound.
func (l *Limiter) evict(now time.Time) {
	if now.Sub(l.lastSweep) >= time.Second {
		l.sweep(now)
	}
	for k := range l.buckets {
		if len(l.buckets) < l.maxKeys {
			return
		}
		delete(l.buckets, k)
	}
}

// Len returns how many keys are tracked, for metrics and tests.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
