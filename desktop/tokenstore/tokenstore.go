// Package tokenstore keeps the desktop's long-lived secret (the refresh
// token) per server: in the OS keychain (macOS Keychain, Windows Credential
// Manager, Secret Service on Linux) through github.com/zalando/go-keyring,
// and, where no keychain works, in a file only the user can read.
//
// go-keyring has no fallback of its own on Linux: without D-Bus, or with a
// locked collection and no prompter, every call fails (or waits forever).
// A Store therefore bounds each keychain call, and on the first failure
// switches to the file and says so. A call that only ran out of time may
// be waiting on an unlock prompt the user is still answering: when it
// does succeed, the Store moves what the file holds into the keychain,
// removes the file and uses the keychain again. Tokens never go to Fyne
// preferences, which are a plain JSON file.
package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/zalando/go-keyring"
)

// ErrNotFound is returned by Load when no secret is saved for the server.
var ErrNotFound = errors.New("no saved sign-in")

// FileName is the name of the fallback file inside the storage directory.
const FileName = "signin-tokens.json"

// Keyring is the part of a keychain the Store uses. Its Get and Delete
// return keyring.ErrNotFound for a missing entry.
type Keyring interface {
	Get(service, user string) (string, error)
	Set(service, user, secret string) error
	Delete(service, user string) error
}

// System is the OS keychain, through go-keyring.
type System struct{}

// Get reads a secret from the OS keychain.
func (System) Get(service, user string) (string, error) { return keyring.Get(service, user) }

// Set writes a secret to the OS keychain.
func (System) Set(service, user, secret string) error { return keyring.Set(service, user, secret) }

// Delete removes a secret from the OS keychain.
func (System) Delete(service, user string) error { return keyring.Delete(service, user) }

// Config configures a Store.
type Config struct {
	// Service names the keychain entries, e.g. the app id.
	Service string
	// Dir is the app's own storage directory; the fallback file lives
	// there. It is created with mode 0700 when needed.
	Dir string
	// Keyring is the keychain; nil means System.
	Keyring Keyring
	// Timeout bounds each keychain call (a locked Secret Service
	// collection can wait for a prompt forever); 0 means 5 seconds.
	Timeout time.Duration
	// Logger receives the one fallback warning; nil discards.
	Logger *slog.Logger
	// OnFallback, when set, is called when the Store switches to the file
	// (once, unless the keychain came back meanwhile), with the file's path
	// and the keychain's error.
	OnFallback func(path string, reason error)
	// OnKeychain, when set, is called when the Store has moved the
	// sign-in from the file back into the keychain.
	OnKeychain func()
}

// Store keeps one secret per server URL. It is safe for concurrent use.
type Store struct {
	cfg  Config
	path string

	mu       sync.Mutex
	fellBack bool
	// changed holds the servers saved or deleted in the file since the
	// fallback, so that a move back to the keychain also deletes there.
	changed map[string]bool
}

// New returns a Store. It touches neither the keychain nor the disk.
func New(cfg Config) *Store {
	if cfg.Keyring == nil {
		cfg.Keyring = System{}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Store{cfg: cfg, path: filepath.Join(cfg.Dir, FileName)}
}

// Backend names where secrets currently go: "keychain" or "file".
func (s *Store) Backend() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fellBack {
		return "file"
	}
	return "keychain"
}

// Path is the fallback file's path.
func (s *Store) Path() string { return s.path }

// Load returns the secret saved for server, or ErrNotFound.
func (s *Store) Load(server string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fellBack {
		v, err := s.keyring(func(k Keyring) (string, error) { return k.Get(s.cfg.Service, server) })
		switch {
		case err == nil:
			return v, nil
		case errors.Is(err, keyring.ErrNotFound):
			// A run without a keychain may have left it in the file.
		default:
			s.fallBack(err)
		}
	}
	m, err := s.readFile()
	if err != nil {
		return "", err
	}
	v, ok := m[server]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}

// Save stores secret for server, replacing any earlier one.
func (s *Store) Save(server, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fellBack {
		_, err := s.keyring(func(k Keyring) (string, error) { return "", k.Set(s.cfg.Service, server, secret) })
		if err == nil {
			// Do not leave an older copy behind in the file.
			if err := s.removeFromFile(server); err != nil {
				s.cfg.Logger.Warn("could not remove an old copy of the sign-in from the fallback file", "path", s.path, "err", err)
			}
			return nil
		}
		if errors.Is(err, keyring.ErrSetDataTooBig) {
			return fmt.Errorf("save to keychain: %w", err)
		}
		s.fallBack(err)
	}
	m, err := s.readFile()
	if err != nil {
		return err
	}
	m[server] = secret
	s.markChanged(server)
	return s.writeFile(m)
}

func (s *Store) markChanged(server string) {
	if s.changed == nil {
		s.changed = make(map[string]bool)
	}
	s.changed[server] = true
}

// Delete removes the secret saved for server; deleting nothing is fine.
func (s *Store) Delete(server string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fellBack {
		_, err := s.keyring(func(k Keyring) (string, error) { return "", k.Delete(s.cfg.Service, server) })
		if err != nil && !errors.Is(err, keyring.ErrNotFound) {
			s.fallBack(err)
		}
	}
	if s.fellBack {
		s.markChanged(server)
	}
	return s.removeFromFile(server)
}

// keyring runs one keychain call, giving up after the timeout. A call that
// times out keeps running in its goroutine (the Store uses the file until
// it ends, so at most one is left); if it then succeeds, the keychain
// works after all and the Store moves back to it.
func (s *Store) keyring(call func(Keyring) (string, error)) (string, error) {
	type result struct {
		v   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := call(s.cfg.Keyring)
		ch <- result{v, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil || errors.Is(r.err, keyring.ErrNotFound) {
				s.backToKeychain()
			}
		}()
		return "", fmt.Errorf("keychain did not answer within %s", s.cfg.Timeout)
	}
}

// backToKeychain moves the file's secrets into the keychain, deletes
// there what was deleted meanwhile, removes the file and uses the
// keychain again. If the keychain fails on the way, the file stays.
func (s *Store) backToKeychain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fellBack {
		return
	}
	m, err := s.readFile()
	if err != nil {
		s.cfg.Logger.Warn("the OS keychain answered, but the sign-in file could not be read; keeping the file", "path", s.path, "err", err)
		return
	}
	servers := make(map[string]bool, len(m)+len(s.changed))
	maps.Copy(servers, s.changed)
	for server := range m {
		servers[server] = true
	}
	for server := range servers {
		secret, ok := m[server]
		_, err := s.keyring(func(k Keyring) (string, error) {
			if ok {
				return "", k.Set(s.cfg.Service, server, secret)
			}
			if err := k.Delete(s.cfg.Service, server); !errors.Is(err, keyring.ErrNotFound) {
				return "", err
			}
			return "", nil
		})
		if err != nil {
			s.cfg.Logger.Warn("the OS keychain answered, but moving the sign-in into it failed; keeping the file", "path", s.path, "err", err)
			return
		}
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.cfg.Logger.Warn("moved the sign-in into the OS keychain, but could not remove the file", "path", s.path, "err", err)
	}
	s.fellBack, s.changed = false, nil
	s.cfg.Logger.Info("the OS keychain answered after all; the sign-in is kept there again", "path", s.path)
	if s.cfg.OnKeychain != nil {
		s.cfg.OnKeychain()
	}
}

// fallBack switches to the file and reports it.
func (s *Store) fallBack(reason error) {
	if s.fellBack {
		return
	}
	s.fellBack = true
	s.cfg.Logger.Warn("no usable OS keychain; keeping the sign-in in a private file instead",
		"path", s.path, "reason", reason.Error())
	if s.cfg.OnFallback != nil {
		s.cfg.OnFallback(s.path, reason)
	}
}

// fileData is the fallback file's content.
type fileData struct {
	Version int               `json:"version"`
	Secrets map[string]string `json:"secrets"`
}

func (s *Store) readFile() (map[string]string, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sign-in file: %w", err)
	}
	// A copy or an umask may have widened it; secrets stay private.
	if fi, err := os.Stat(s.path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(s.path, 0o600); err != nil {
			return nil, fmt.Errorf("restrict sign-in file: %w", err)
		}
	}
	var d fileData
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("parse sign-in file %s: %w", s.path, err)
	}
	if d.Secrets == nil {
		d.Secrets = map[string]string{}
	}
	return d.Secrets, nil
}

// writeFile replaces the file atomically; it is created 0600 in a 0700
// directory and never exists with wider permissions.
func (s *Store) writeFile(m map[string]string) error {
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("create storage directory: %w", err)
	}
	b, err := json.MarshalIndent(fileData{Version: 1, Secrets: m}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode sign-in file: %w", err)
	}
	f, err := os.CreateTemp(s.cfg.Dir, FileName+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("write sign-in file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write sign-in file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write sign-in file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write sign-in file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write sign-in file: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("write sign-in file: %w", err)
	}
	return nil
}

func (s *Store) removeFromFile(server string) error {
	m, err := s.readFile()
	if err != nil {
		return err
	}
	if _, ok := m[server]; !ok {
		return nil
	}
	delete(m, server)
	if len(m) == 0 {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove sign-in file: %w", err)
		}
		return nil
	}
	return s.writeFile(m)
}
