package postgres

import "time"

// SetListenHeartbeat sets how long a listening connection may be silent
// before it is pinged, and returns a function that restores the old value.
// Only while no Listen runs.
func SetListenHeartbeat(d time.Duration) (restore func()) {
	old := listenHeartbeat
	listenHeartbeat = d
	return func() { listenHeartbeat = old }
}
