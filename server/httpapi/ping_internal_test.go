package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedRecorder is a ResponseWriter that counts pings, safe for the
// wheel's goroutine.
type lockedRecorder struct {
	*httptest.ResponseRecorder
	mu    sync.Mutex
	pings []time.Time
}

func (r *lockedRecorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.HasPrefix(string(b), ": ping") {
		r.pings = append(r.pings, time.Now())
	}
	return len(b), nil
}

func (r *lockedRecorder) WriteString(s string) (int, error) { return r.Write([]byte(s)) }

func (r *lockedRecorder) times() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.pings...)
}

func newRecorder() *lockedRecorder {
	return &lockedRecorder{ResponseRecorder: httptest.NewRecorder()}
}

func streamTo(w http.ResponseWriter) *eventStream {
	return &eventStream{w: w, rc: http.NewResponseController(w)}
}

// slotOf is the slot pd sits in, or -1.
func (p *pingWheel) slotOf(pd *pinged) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, list := range p.slots {
		if slices.Contains(list, pd) {
			return i
		}
	}
	return -1
}

// Streams started together share a slot; none is pinged before its
// interval is over, each is pinged once an interval, a stopped stream is
// pinged no more, and the wheel's timer stops with its last stream.
func TestPingWheelSharesSlots(t *testing.T) {
	const d = 600 * time.Millisecond // slots of 40 ms
	p := newPingWheel(d)
	start := time.Now()
	recs := make([]*lockedRecorder, 1000)
	pds := make([]*pinged, len(recs))
	used := map[int]bool{}
	for i := range recs {
		recs[i] = newRecorder()
		pds[i] = p.start(streamTo(recs[i]), newBell())
		used[p.slotOf(pds[i])] = true
	}
	// The calls span at most the slots their own duration touches.
	if most := int(time.Since(start)/p.grain) + 2; len(used) > most {
		t.Fatalf("1,000 streams started together sit in %d slots, want at most %d", len(used), most)
	}
	// Every stream is pinged twice, never early.
	deadline := time.Now().Add(10 * time.Second)
	for i, r := range recs {
		for len(r.times()) < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("stream %d pinged %d times in 10 s", i, len(r.times()))
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got := r.times(); got[0].Sub(start) < d || got[1].Sub(got[0]) < d-p.grain {
			t.Fatalf("stream %d pinged at %v and %v after start, interval %v", i, got[0].Sub(start), got[1].Sub(start), d)
		}
	}
	for _, pd := range pds {
		pd.stop()
	}
	stopped := make([]int, len(recs))
	for i, r := range recs {
		stopped[i] = len(r.times())
	}
	time.Sleep(2 * d)
	for i, r := range recs {
		if n := len(r.times()); n != stopped[i] {
			t.Fatalf("stream %d pinged %d times after it stopped", i, n-stopped[i])
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n != 0 || p.armed {
		t.Fatalf("%d streams left and timer armed %v after every stream stopped", p.n, p.armed)
	}
	// A stream started on the stopped wheel is pinged again.
	p.mu.Unlock()
	r := newRecorder()
	pd := p.start(streamTo(r), newBell())
	defer pd.stop()
	for len(r.times()) == 0 {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("a stream started on an idle wheel was never pinged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.mu.Lock()
}

// A ping that cannot be written ends the stream: failed is closed with
// the error, and the stream is pinged no more.
func TestPingWheelFailedWrite(t *testing.T) {
	p := newPingWheel(30 * time.Millisecond)
	w := &failingWriter{ResponseRecorder: httptest.NewRecorder()}
	pd := p.start(streamTo(w), newBell())
	awaitRung(t, pd.bell, wokeFailed)
	if pd.err == nil {
		t.Fatal("no error after a failed ping")
	}
	if err := pd.send("status", map[string]string{}); err == nil {
		// The handler's own writes still go to the writer (and fail).
		t.Fatal("send after a failed ping succeeded")
	}
}

type failingWriter struct{ *httptest.ResponseRecorder }

func (failingWriter) Write([]byte) (int, error) { return 0, http.ErrHandlerTimeout }

func (failingWriter) WriteString(string) (int, error) { return 0, http.ErrHandlerTimeout }

// stuckWriter is a client that stopped reading: a ping's write blocks
// until a write deadline that has passed is set, as a socket's would.
type stuckWriter struct {
	*httptest.ResponseRecorder
	once sync.Once
	cut  chan struct{}
}

func (w *stuckWriter) Write(b []byte) (int, error) {
	<-w.cut
	return 0, os.ErrDeadlineExceeded
}

func (w *stuckWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

func (w *stuckWriter) SetWriteDeadline(t time.Time) error {
	if !t.IsZero() && !t.After(time.Now()) {
		w.once.Do(func() { close(w.cut) })
	}
	return nil
}

// A client that stopped reading holds up the pings of its slot only
// until the watchdog cuts its write, and its stream ends.
func TestPingWheelCutsStuckWrite(t *testing.T) {
	const d = 300 * time.Millisecond
	p := newPingWheel(d)
	p.stuck = 100 * time.Millisecond
	var stuck, after *pinged
	var w *stuckWriter
	var r *lockedRecorder
	// The two must share a slot, the stuck one first; a slot boundary
	// between the two starts would part them, so try again.
	for range 5 {
		w = &stuckWriter{ResponseRecorder: httptest.NewRecorder(), cut: make(chan struct{})}
		r = newRecorder()
		stuck, after = p.start(streamTo(w), newBell()), p.start(streamTo(r), newBell())
		if p.slotOf(stuck) == p.slotOf(after) {
			break
		}
		stuck.stop()
		after.stop()
		stuck = nil
	}
	if stuck == nil {
		t.Fatal("two streams started together never shared a slot")
	}
	defer after.stop()
	awaitRung(t, stuck.bell, wokeFailed)
	if !errors.Is(stuck.err, os.ErrDeadlineExceeded) {
		t.Fatalf("stuck stream ended with %v", stuck.err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(r.times()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stream after the stuck one was never pinged")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPingWheelCatchUp(t *testing.T) {
	for _, tc := range []struct {
		name           string
		turn, now, out int64
	}{
		{"on time", 100, 100, 100},
		{"ahead of the clock", 100, 99, 100},
		{"a walk ran a few turns long", 100, 103, 100},
		{"just short of an interval behind", 100, 100 + pingSlots - 1, 100},
		{"a whole interval behind", 100, 100 + pingSlots, 100 + pingSlots},
		{"an hour behind", 100, 100 + 3600, 100 + 3600},
	} {
		if got := catchUp(tc.turn, tc.now); got != tc.out {
			t.Errorf("%s: catchUp(%d, %d) = %d, want %d", tc.name, tc.turn, tc.now, got, tc.out)
		}
	}
}

// awaitRung waits (10 s at most) for b to be rung with why.
func awaitRung(t *testing.T, b *bell, why wake) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case <-b.ch:
		case <-timeout:
			t.Fatalf("bell never rung with %d", why)
		}
		if got, ok := b.take(); ok && got == why {
			return
		}
	}
}
