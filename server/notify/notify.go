// Package notify wakes long-polls: a request waiting on a login session
// subscribes to its id, and whoever changes the session publishes the id.
//
// It is in-process only. A backend shared by several servers feeds its
// cross-instance notifications (e.g. PostgreSQL LISTEN/NOTIFY) into the same
// Hub, so the waiting side never changes.
package notify

import "sync"

// Hub fans a session-changed signal out to the requests waiting on it.
// The zero value is ready to use.
type Hub struct {
	mu sync.Mutex
	// waiters holds each id's subscribers as a list: almost every id has
	// one (its desktop's wait), which a set per id would cost a map for,
	// at 10,000 waiting desktops.
	waiters map[string]*waiter
}

type waiter struct {
	fn         func()
	prev, next *waiter
	listed     bool // in its id's list, not yet published or removed
}

// Subscribe calls fn once, on the publisher's goroutine, the next time id
// is published, so fn must not block (a held request rings its bell). The
// returned function unsubscribes (it may be called more than once); fn may
// still run once if a publish was already under way. Subscribe before
// reading the state you wait on, so a change between the read and the
// wait is not missed.
func (h *Hub) Subscribe(id string, fn func()) func() {
	w := &waiter{fn: fn, listed: true}
	h.mu.Lock()
	if h.waiters == nil {
		h.waiters = make(map[string]*waiter)
	}
	if head := h.waiters[id]; head != nil {
		w.next, head.prev = head, w
	}
	h.waiters[id] = w
	h.mu.Unlock()
	return func() { h.remove(id, w) }
}

func (h *Hub) remove(id string, w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !w.listed {
		return
	}
	w.listed = false
	switch {
	case w.prev != nil:
		w.prev.next = w.next
	case w.next != nil:
		h.waiters[id] = w.next
	default:
		delete(h.waiters, id)
	}
	if w.next != nil {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
}

// Publish wakes every subscriber of id. Each wake-up is one-shot: a
// waiter re-subscribes if it wants to wait again.
func (h *Hub) Publish(id string) {
	h.mu.Lock()
	head := h.waiters[id]
	delete(h.waiters, id)
	// Unlisted, the list is the publisher's alone: removes leave it be.
	for w := head; w != nil; w = w.next {
		w.listed = false
	}
	h.mu.Unlock()
	for w := head; w != nil; w = w.next {
		w.fn()
	}
}

// Waiting returns the ids that have at least one subscriber, so a
// cross-instance listener can re-check them after a reconnect.
func (h *Hub) Waiting() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.waiters))
	for id := range h.waiters {
		ids = append(ids, id)
	}
	return ids
}

// Len returns the number of waiting subscribers.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, head := range h.waiters {
		for w := head; w != nil; w = w.next {
			n++
		}
	}
	return n
}
