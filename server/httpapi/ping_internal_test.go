package httpapi

import (
	"testing"
	"time"
)

// Streams whose pings fall due in the same slot share one channel, and
// none is woken before its interval is over.
func TestPingWheelSharesSlots(t *testing.T) {
	const d = 600 * time.Millisecond // slots of 10 ms
	var p pingWheel
	start := time.Now()
	chans := map[<-chan struct{}]bool{}
	for range 1000 {
		chans[p.after(d)] = true
	}
	// The calls span at most the slots their own duration touches.
	if most := int(time.Since(start)/(d/pingSlots)) + 2; len(chans) > most {
		t.Fatalf("%d channels for 1,000 pings due together, want at most %d", len(chans), most)
	}
	for ch := range chans {
		select {
		case <-ch:
			if waited := time.Since(start); waited < d {
				t.Fatalf("ping channel closed after %v, before the interval %v", waited, d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("ping channel never closed")
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.slots) != 0 {
		t.Fatalf("%d slots left after they closed", len(p.slots))
	}
}
