package httpapi

import "time"

// SetStreamWriteTimeouts shortens the event streams' write deadlines for
// a test.
func SetStreamWriteTimeouts(t interface{ Cleanup(func()) }, event, ping time.Duration) {
	oldEvent, oldPing := eventWriteTimeout, pingWriteTimeout
	eventWriteTimeout, pingWriteTimeout = event, ping
	t.Cleanup(func() { eventWriteTimeout, pingWriteTimeout = oldEvent, oldPing })
}
