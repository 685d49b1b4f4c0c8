package httpapi

import (
	"testing"
	"time"
)

func TestWaitWords(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "1 second"},
		{300 * time.Millisecond, "1 second"},
		{time.Second, "1 second"},
		{1001 * time.Millisecond, "2 seconds"},
		{2 * time.Second, "2 seconds"},
		{59 * time.Second, "59 seconds"},
		{time.Minute, "60 seconds"},
		{119 * time.Second, "119 seconds"},
		{2 * time.Minute, "2 minutes"},
		{121 * time.Second, "3 minutes"},
		{time.Hour, "60 minutes"},
	} {
		if got := waitWords(tt.d); got != tt.want {
			t.Errorf("waitWords(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
