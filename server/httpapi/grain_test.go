package httpapi

import (
	"testing"
	"time"
)

func TestOnGrain(t *testing.T) {
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		t    time.Time
		want time.Time
	}{
		{"on the grid", base, base},
		{"just after", base.Add(time.Nanosecond), base.Add(timerGrain)},
		{"just before", base.Add(timerGrain - time.Nanosecond), base.Add(timerGrain)},
		{"next cell", base.Add(timerGrain + time.Millisecond), base.Add(2 * timerGrain)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := onGrain(tt.t)
			if !got.Equal(tt.want) {
				t.Errorf("onGrain(%v) = %v, want %v", tt.t, got, tt.want)
			}
			if got.Before(tt.t) || got.Sub(tt.t) >= timerGrain {
				t.Errorf("onGrain moved %v by %v", tt.t, got.Sub(tt.t))
			}
		})
	}
}

// A timer's due time is on the grid and never early, both when the timer
// is made and when it is reset for the next wait.
func TestStartTimerOnGrain(t *testing.T) {
	p := &parkedPoll{}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, what := range []string{"new timer", "reset timer"} {
		before := time.Now()
		p.startTimerLocked(time.Hour)
		due := p.due
		p.stopTimerLocked()
		if due.UnixNano()%int64(timerGrain) != 0 {
			t.Errorf("%s: due %v is not on the %v grid", what, due, timerGrain)
		}
		if d := due.Sub(before); d < time.Hour || d > time.Hour+timerGrain+time.Second {
			t.Errorf("%s: due %v after start, want an hour and at most one grain more", what, d)
		}
		if !p.due.IsZero() {
			t.Errorf("%s: stopped timer keeps a due time", what)
		}
	}
}
