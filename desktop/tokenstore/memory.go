package tokenstore

import "sync"

// Memory keeps sign-ins in memory only: nothing survives the process. It
// serves tests, and any run that must not write a sign-in to disk. The
// zero value is ready to use.
type Memory struct {
	mu sync.Mutex
	m  map[string]string
}

// Load returns the sign-in saved for server, or ErrNotFound.
func (m *Memory) Load(server string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[server]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}

// Save keeps secret for server.
func (m *Memory) Save(server, secret string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]string{}
	}
	m.m[server] = secret
	return nil
}

// Delete forgets server's sign-in.
func (m *Memory) Delete(server string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, server)
	return nil
}

// Len returns how many sign-ins are kept.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}
