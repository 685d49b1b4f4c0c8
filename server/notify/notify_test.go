package notify_test

import (
	"sync"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/notify"
)

// subscribe returns a channel closed the next time id is published, and
// the function that unsubscribes.
func subscribe(h *notify.Hub, id string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	return ch, h.Subscribe(id, func() { close(ch) })
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestPublishWakesOnlyThatID(t *testing.T) {
	var h notify.Hub
	a1, cancelA1 := subscribe(&h, "a")
	defer cancelA1()
	a2, cancelA2 := subscribe(&h, "a")
	defer cancelA2()
	b, cancelB := subscribe(&h, "b")
	defer cancelB()

	h.Publish("a")
	if !closed(a1) || !closed(a2) {
		t.Fatal("subscribers of a were not woken")
	}
	if closed(b) {
		t.Fatal("subscriber of b was woken by a")
	}
	if got := h.Len(); got != 1 {
		t.Fatalf("Len = %d after publishing a, want 1", got)
	}
}

func TestUnsubscribe(t *testing.T) {
	var h notify.Hub
	ch, cancel := subscribe(&h, "a")
	cancel()
	cancel() // twice is fine
	if h.Len() != 0 || len(h.Waiting()) != 0 {
		t.Fatalf("hub not empty after unsubscribe: len %d, waiting %v", h.Len(), h.Waiting())
	}
	h.Publish("a")
	if closed(ch) {
		t.Fatal("unsubscribed channel was woken")
	}
	// Unsubscribing after a publish must not panic or disturb others.
	ch2, cancel2 := subscribe(&h, "a")
	h.Publish("a")
	cancel2()
	if !closed(ch2) {
		t.Fatal("not woken")
	}
}

func TestWaiting(t *testing.T) {
	var h notify.Hub
	_, c1 := subscribe(&h, "x")
	_, c2 := subscribe(&h, "y")
	defer c1()
	defer c2()
	got := map[string]bool{}
	for _, id := range h.Waiting() {
		got[id] = true
	}
	if len(got) != 2 || !got["x"] || !got["y"] {
		t.Fatalf("Waiting = %v, want x and y", got)
	}
}

func TestConcurrentSubscribePublish(t *testing.T) {
	var h notify.Hub
	var wg sync.WaitGroup
	const n = 200
	woken := make(chan struct{}, n)
	ready := make(chan struct{}, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, cancel := subscribe(&h, "s")
			defer cancel()
			ready <- struct{}{}
			select {
			case <-ch:
				woken <- struct{}{}
			case <-time.After(10 * time.Second):
			}
		}()
	}
	for range n {
		<-ready
	}
	h.Publish("s")
	wg.Wait()
	if len(woken) != n {
		t.Fatalf("%d of %d waiters woken", len(woken), n)
	}
}

func BenchmarkSubscribePublish(b *testing.B) {
	var h notify.Hub
	for b.Loop() {
		ch, cancel := subscribe(&h, "id")
		h.Publish("id")
		<-ch
		cancel()
	}
}

func TestSubscribeCalledOnce(t *testing.T) {
	var h notify.Hub
	calls := 0
	h.Subscribe("a", func() { calls++ })
	cancelled := 0
	cancel := h.Subscribe("a", func() { cancelled++ })
	cancel()
	h.Publish("b")
	h.Publish("a")
	h.Publish("a")
	if calls != 1 || cancelled != 0 {
		t.Fatalf("fn called %d times, cancelled fn %d times; want 1 and 0", calls, cancelled)
	}
	if h.Len() != 0 {
		t.Fatalf("Len = %d after publish, want 0", h.Len())
	}
}

// Unsubscribing any of several subscribers of one id, in any order,
// leaves exactly the others to be woken.
func TestUnsubscribeAmongSeveral(t *testing.T) {
	for _, remove := range [][]int{{0}, {1}, {2}, {0, 1}, {2, 0}, {1, 2}, {0, 1, 2}, {2, 1, 0}} {
		var h notify.Hub
		chs := make([]<-chan struct{}, 3)
		cancels := make([]func(), 3)
		for i := range chs {
			chs[i], cancels[i] = subscribe(&h, "a")
		}
		removed := map[int]bool{}
		for _, i := range remove {
			cancels[i]()
			removed[i] = true
		}
		if got, want := h.Len(), 3-len(remove); got != want {
			t.Fatalf("remove %v: Len = %d, want %d", remove, got, want)
		}
		h.Publish("a")
		for i, ch := range chs {
			if closed(ch) == removed[i] {
				t.Fatalf("remove %v: subscriber %d woken = %v", remove, i, closed(ch))
			}
			cancels[i]() // after the publish: a no-op
		}
		if h.Len() != 0 || len(h.Waiting()) != 0 {
			t.Fatalf("remove %v: hub not empty after publish: len %d", remove, h.Len())
		}
	}
}
