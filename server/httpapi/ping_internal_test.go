package httpapi

import (
	"net/http"
	"net/http/httptest"
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

// Streams whose pings fall due in the same slot share one timer, none is
// pinged before its interval is over, and a stopped stream is pinged no
// more.
func TestPingWheelSharesSlots(t *testing.T) {
	const d = 600 * time.Millisecond // slots of 10 ms
	var p pingWheel
	start := time.Now()
	recs := make([]*lockedRecorder, 1000)
	pds := make([]*pinged, len(recs))
	for i := range recs {
		recs[i] = &lockedRecorder{ResponseRecorder: httptest.NewRecorder()}
		pds[i] = p.start(&eventStream{w: recs[i], rc: http.NewResponseController(recs[i])}, d)
	}
	p.mu.Lock()
	slots := len(p.slots)
	p.mu.Unlock()
	// The calls span at most the slots their own duration touches.
	if most := int(time.Since(start)/(d/pingSlots)) + 2; slots > most {
		t.Fatalf("%d slots for 1,000 pings due together, want at most %d", slots, most)
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
		if got := r.times(); got[0].Sub(start) < d || got[1].Sub(got[0]) < d-d/pingSlots {
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
	if len(p.slots) != 0 {
		t.Fatalf("%d slots left after every stream stopped", len(p.slots))
	}
}

// A ping that cannot be written ends the stream: failed is closed with
// the error, and the stream is pinged no more.
func TestPingWheelFailedWrite(t *testing.T) {
	var p pingWheel
	w := &failingWriter{ResponseRecorder: httptest.NewRecorder()}
	pd := p.start(&eventStream{w: w, rc: http.NewResponseController(w)}, 30*time.Millisecond)
	select {
	case <-pd.failed:
	case <-time.After(10 * time.Second):
		t.Fatal("failed never closed")
	}
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
