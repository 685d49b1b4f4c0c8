package httpapi

import (
	"testing"
	"time"
)

// A bell keeps every reason it was rung with until taken, ending ones
// first, and never blocks the ringer.
func TestBell(t *testing.T) {
	tests := []struct {
		name string
		rung []wake
		want []wake
	}{
		{"none", nil, nil},
		{"one", []wake{wokeChanged}, []wake{wokeChanged}},
		{"twice is once", []wake{wokeChanged, wokeChanged}, []wake{wokeChanged}},
		{"ending first", []wake{wokeChanged, wokeTick, wokeDisplaced, wokeFailed}, []wake{wokeFailed, wokeDisplaced, wokeTick, wokeChanged}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBell()
			for _, why := range tt.rung {
				b.ring(why) // buffered: never blocks, though nobody waits
			}
			var got []wake
			for {
				why, ok := b.take()
				if !ok {
					break
				}
				got = append(got, why)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("took %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("took %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// A parked request wakes for its bell's reasons before its channels, and
// for each channel when nothing was rung.
func TestParkedWait(t *testing.T) {
	closing, gone := make(chan struct{}), make(chan struct{})
	p := parked{bell: newBell(), closing: closing, gone: gone}
	done := make(chan wake)
	go func() { done <- p.wait() }()
	p.ring(wokeChanged)
	if why := <-done; why != wokeChanged {
		t.Fatalf("woke for %d, want wokeChanged", why)
	}
	close(gone)
	p.ring(wokeDisplaced)
	if why := p.wait(); why != wokeDisplaced {
		t.Fatalf("woke for %d, want the rung wokeDisplaced before the closed gone", why)
	}
	if why := p.wait(); why != wokeGone {
		t.Fatalf("woke for %d, want wokeGone", why)
	}
	// A ring whose reason was already taken wakes nobody for nothing.
	q := parked{bell: newBell(), timer: time.After(10 * time.Millisecond)}
	q.ring(wokeTick)
	if why, _ := q.take(); why != wokeTick {
		t.Fatal("tick not taken")
	}
	if why := q.wait(); why != wokeTimer {
		t.Fatalf("woke for %d, want wokeTimer after the stale ring", why)
	}
}
