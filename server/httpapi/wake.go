package httpapi

import (
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/qrlogin/qrlogin/server/notify"
)

// A held request (an event stream or a long-poll) parks its goroutine for
// minutes, on whatever stack it has then. The garbage collector halves a
// parked goroutine's stack only while less than a quarter of it is in use,
// and net/http, Gin and the middleware already take about 2.5 KiB of it:
// so the held handlers keep their own frames small, wait in parked.wait,
// and do their deeper work (the store, JSON, tokens) in methods of their
// own or on a short-lived goroutine (offStack). At 10,000 waiting desktops
// that is the difference between 8 and 16 KiB of stack each.

// wake is what woke a held request. The first four are rung on its bell
// and taken in this order, those that end the request before those that
// make it look again, and all before its channels: the timer, shutdown and
// the client.
type wake uint8

const (
	wokeFailed    wake = iota // a ping could not be written
	wokeDisplaced             // a newer wait of the same key took over
	wokeTick                  // the ping wheel's signal every few pings
	wokeChanged               // the hub published the request's key
	wokeTimer                 // its timer fired
	wokeClosing               // the server is shutting down
	wokeGone                  // the client went away
)

// bell is how the hub, the ping wheel and the held waits wake a parked
// request: each sets its reason and rings the one channel. A channel of
// each one's own, and the select's entry for each, would cost a parked
// request about half a kilobyte more, five megabytes at 10,000 waiting
// desktops.
type bell struct {
	ch      chan struct{} // buffered: a ring never blocks and, while one is pending, needs no other
	reasons atomic.Uint32 // a bit per wake
}

func newBell() *bell { return &bell{ch: make(chan struct{}, 1)} }

// ring wakes the request for why.
func (b *bell) ring(why wake) {
	b.reasons.Or(1 << why)
	select {
	case b.ch <- struct{}{}:
	default:
	}
}

// take returns the first reason rung and not taken yet, if any.
func (b *bell) take() (wake, bool) {
	for {
		r := b.reasons.Load()
		if r == 0 {
			return 0, false
		}
		why := wake(bits.TrailingZeros32(r))
		if b.reasons.CompareAndSwap(r, r&^(1<<why)) {
			return why, true
		}
	}
}

// parked is what a held request waits on: its bell, its timer, shutdown
// and its client. A nil channel never fires.
type parked struct {
	*bell
	timer   <-chan time.Time
	closing <-chan struct{}
	gone    <-chan struct{}
}

// holding is what a held request holds, each part released by release:
// its subscription on the hub, its place among the held waits, its pings
// and its timer.
type holding struct {
	parked

	hub         *notify.Hub
	key         string
	changed     func() // rings the bell for a publication of key
	unsubscribe func()
	waits       *heldWaits
	w           *heldWait
	pd          *pinged
	alarm       *time.Timer
}

// subscribe wakes the request when key is published. It makes the
// request's bell, so it comes before heldWaits.hold and pingWheel.start,
// which ring it.
func (h *holding) subscribe(hub *notify.Hub, key string) {
	h.bell = newBell()
	h.changed = func() { h.ring(wokeChanged) }
	h.hub, h.key = hub, key
	h.unsubscribe = hub.Subscribe(key, h.changed)
}

// resubscribe subscribes again once a publication woke the request. A
// publication of the old subscription may still ring once: each reason is
// one to look again, never a change itself.
func (h *holding) resubscribe() {
	h.unsubscribe()
	h.unsubscribe = h.hub.Subscribe(h.key, h.changed)
}

// release lets go of what the request holds, in reverse.
func (h *holding) release() {
	if h.alarm != nil {
		h.alarm.Stop()
	}
	if h.pd != nil {
		h.pd.stop()
	}
	if h.w != nil {
		h.waits.release(h.w)
	}
	if h.unsubscribe != nil {
		h.unsubscribe()
	}
}

// wait blocks until the bell rings or a channel of p fires and says why.
//
//go:noinline
func (p *parked) wait() wake {
	for {
		if why, ok := p.take(); ok {
			return why
		}
		select {
		case <-p.ch:
		case <-p.timer:
			return wokeTimer
		case <-p.closing:
			return wokeClosing
		case <-p.gone:
			return wokeGone
		}
	}
}

// heldRequest is a held request's work: open starts it and reports
// whether it waits, next acts on each wake and reports whether it waits
// on, and release lets go of what it holds.
type heldRequest interface {
	open() bool
	wait() wake
	next(wake) bool
	release()
}

// serveHeld runs a held request to its end. Its frame, like the
// handlers', is small: the request parks under it.
func serveHeld(h heldRequest) {
	defer h.release()
	if !h.open() {
		return
	}
	for h.next(h.wait()) {
	}
}

// offStack runs f on a goroutine of its own and waits for it, passing a
// panic on: a held request's goroutine never grows its stack for f.
func offStack(f func()) {
	var p any
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { p = recover() }()
		f()
	}()
	<-done
	if p != nil {
		panic(p)
	}
}
