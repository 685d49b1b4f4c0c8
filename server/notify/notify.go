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
	mu      sync.Mutex
	waiters map[string]map[*waiter]struct{}
}

type waiter struct{ fn func() }

// Subscribe returns a channel that is closed the next time id is
// published, and a function that must be called to unsubscribe (it may be
// called more than once). Subscribe before reading the state you wait on,
// so a change between the read and the wait is not missed.
func (h *Hub) Subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	return ch, h.SubscribeFunc(id, func() { close(ch) })
}

// SubscribeFunc is Subscribe for a waiter that holds no goroutine: fn is
// called once, on the publisher's goroutine, the next time id is
// published, so it must not block. The returned function unsubscribes; fn
// may still run once if a publish was already under way.
func (h *Hub) SubscribeFunc(id string, fn func()) func() {
	w := &waiter{fn: fn}
	h.mu.Lock()
	if h.waiters == nil {
		h.waiters = make(map[string]map[*waiter]struct{})
	}
	set := h.waiters[id]
	if set == nil {
		set = make(map[*waiter]struct{})
		h.waiters[id] = set
	}
	set[w] = struct{}{}
	h.mu.Unlock()
	return func() { h.remove(id, w) }
}

func (h *Hub) remove(id string, w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.waiters[id]
	if _, ok := set[w]; !ok {
		return
	}
	delete(set, w)
	if len(set) == 0 {
		delete(h.waiters, id)
	}
}

// Publish wakes every subscriber of id. Each wake-up is one-shot: a
// waiter re-subscribes if it wants to wait again.
func (h *Hub) Publish(id string) {
	h.mu.Lock()
	set := h.waiters[id]
	delete(h.waiters, id)
	h.mu.Unlock()
	for w := range set {
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
	for _, set := range h.waiters {
		n += len(set)
	}
	return n
}
