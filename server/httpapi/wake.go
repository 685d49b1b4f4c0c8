package httpapi

import (
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

// wake is what woke a held request.
type wake uint8

const (
	wokeChanged   wake = iota // the hub published the request's key
	wokeTimer                 // its timer fired
	wokeTick                  // the ping wheel's signal every few pings
	wokeFailed                // a ping could not be written
	wokeClosing               // the server is shutting down
	wokeDisplaced             // a newer wait of the same key took over
	wokeGone                  // the client went away
)

// parked is what a held request waits on. A nil channel never fires.
type parked struct {
	changed   <-chan struct{}
	timer     <-chan time.Time
	tick      <-chan struct{}
	failed    <-chan struct{}
	closing   <-chan struct{}
	displaced <-chan struct{}
	gone      <-chan struct{}
}

// holding is what a held request holds, each part released by release:
// its subscription on the hub, its place among the held waits, its pings
// and its timer.
type holding struct {
	parked

	hub         *notify.Hub
	key         string
	unsubscribe func()
	waits       *heldWaits
	w           *heldWait
	pd          *pinged
	alarm       *time.Timer
}

// subscribe wakes the request when key is published.
func (h *holding) subscribe(hub *notify.Hub, key string) {
	h.hub, h.key = hub, key
	h.changed, h.unsubscribe = hub.Subscribe(key)
}

// resubscribe subscribes again once a publication woke the request.
func (h *holding) resubscribe() {
	h.unsubscribe()
	h.changed, h.unsubscribe = h.hub.Subscribe(h.key)
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

// wait blocks until one of p's channels fires and says which.
//
//go:noinline
func (p *parked) wait() wake {
	select {
	case <-p.changed:
		return wokeChanged
	case <-p.timer:
		return wokeTimer
	case <-p.tick:
		return wokeTick
	case <-p.failed:
		return wokeFailed
	case <-p.closing:
		return wokeClosing
	case <-p.displaced:
		return wokeDisplaced
	case <-p.gone:
		return wokeGone
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
