package testclock_test

import (
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/shared/testclock"
)

func TestStanding(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := testclock.New(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now %v, want %v", c.Now(), t0)
	}
	c.Advance(90 * time.Second)
	if want := t0.Add(90 * time.Second); !c.Now().Equal(want) {
		t.Fatalf("after Advance: %v, want %v", c.Now(), want)
	}
	c.Set(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("after Set: %v, want %v", c.Now(), t0)
	}
}

func TestRunning(t *testing.T) {
	c := testclock.Running()
	c.Advance(time.Hour)
	if d := c.Now().Sub(time.Now()); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("running clock %v ahead of real time, want an hour", d)
	}
}
