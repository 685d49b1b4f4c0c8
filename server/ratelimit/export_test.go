package ratelimit

// SetMaxKeys lowers the key cap so tests can reach it cheaply.
func SetMaxKeys(l *Limiter, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maxKeys = n
}
