package httpapi

import (
	"sync"
	"testing"
)

// gauges is a Metrics that keeps the held-wait gauges.
type gauges struct {
	noMetrics
	mu      sync.Mutex
	desktop map[string]int
	user    int
}

func (g *gauges) DesktopWaiting(kind string, delta int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.desktop[kind] += delta
}

func (g *gauges) UserStreams(delta int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.user += delta
}

// Each held wait moves the gauge of its kind up on hold and down on
// release, displaced or not; a refused one moves nothing.
func TestHeldWaitGauges(t *testing.T) {
	g := &gauges{desktop: map[string]int{}}
	h := &heldWaits{max: 3, metrics: g}
	check := func(what string, longpoll, stream, user int) {
		t.Helper()
		if g.desktop["longpoll"] != longpoll || g.desktop["stream"] != stream || g.user != user {
			t.Errorf("%s: longpoll %d, stream %d, user streams %d; want %d, %d, %d",
				what, g.desktop["longpoll"], g.desktop["stream"], g.user, longpoll, stream, user)
		}
	}
	poll, _ := h.hold("s1", waitLongPoll, newBell())
	stream, _ := h.hold("s2", waitStream, newBell())
	user, _ := h.hold("user:u1", waitUserStream, newBell())
	check("three held", 1, 1, 1)
	if _, ok := h.hold("s3", waitStream, newBell()); ok {
		t.Fatal("a fourth wait was held beyond max 3")
	}
	check("one refused", 1, 1, 1)
	// A stream displaces the session's long-poll: both are held until the
	// long-poll's handler returns.
	newer, _ := h.hold("s1", waitStream, newBell())
	check("displacing", 1, 2, 1)
	if why, ok := poll.bell.take(); !ok || why != wokeDisplaced {
		t.Errorf("the displaced wait's bell: %v %v, want wokeDisplaced", why, ok)
	}
	if _, ok := stream.bell.take(); ok {
		t.Error("a wait of another session was woken")
	}
	for _, w := range []*heldWait{poll, stream, user, newer} {
		h.release(w)
	}
	check("all released", 0, 0, 0)
}
