// Package account owns user accounts: the rules for usernames and
// passwords, adding and changing users, and checking a password at sign-in
// without revealing whether the username exists.
package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// Limits on what a user may choose.
const (
	MaxUsername    = 64
	MaxDisplayName = 100
	MinPassword    = 8
	MaxPassword    = 1024 // Argon2 hashes anything; this just bounds the work
)

// Errors returned by Service. They carry no detail an attacker could use.
var (
	ErrInvalidCredentials = errors.New("invalid username or password")
	ErrInvalidUsername    = errors.New("username must be 1-64 letters, digits, '.', '_' or '-'")
	ErrInvalidPassword    = fmt.Errorf("password must be %d to %d characters", MinPassword, MaxPassword)
	ErrInvalidDisplayName = fmt.Errorf("display name must be at most %d characters with no control characters", MaxDisplayName)
	ErrUsernameTaken      = errors.New("username is taken")
)

// Hasher hashes and checks passwords (auth.Hasher).
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, encoded string) (bool, error)
	VerifyDummy(ctx context.Context, password string) error
}

// Service manages users.
type Service struct {
	Store  store.Store
	Hasher Hasher
	NewID  func() string
	Now    func() time.Time
}

// ValidateUsername reports whether name is an acceptable username.
func ValidateUsername(name string) error {
	if name == "" || len(name) > MaxUsername {
		return ErrInvalidUsername
	}
	for _, r := range name {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '_' || r == '-')) {
			return ErrInvalidUsername
		}
	}
	return nil
}

// ValidatePassword reports whether pw is an acceptable password.
func ValidatePassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < MinPassword || len(pw) > MaxPassword {
		return ErrInvalidPassword
	}
	return nil
}

// ValidateDisplayName reports whether name is an acceptable display name.
func ValidateDisplayName(name string) error {
	if utf8.RuneCountInString(name) > MaxDisplayName || !utf8.ValidString(name) {
		return ErrInvalidDisplayName
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return ErrInvalidDisplayName
		}
	}
	return nil
}

// Add creates a user. An empty display name defaults to the username.
func (s *Service) Add(ctx context.Context, username, displayName, password string) (store.User, error) {
	displayName = strings.TrimSpace(displayName)
	if displayName == "" {
		displayName = username
	}
	if err := errors.Join(ValidateUsername(username), ValidateDisplayName(displayName), ValidatePassword(password)); err != nil {
		return store.User{}, err
	}
	hash, err := s.Hasher.Hash(ctx, password)
	if err != nil {
		return store.User{}, fmt.Errorf("hash password: %w", err)
	}
	u := store.User{
		ID:           s.NewID(),
		Username:     username,
		DisplayName:  displayName,
		PasswordHash: hash,
		CreatedAt:    s.Now().UTC(),
	}
	if err := s.Store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, ErrUsernameTaken
		}
		return store.User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// SetPassword changes a user's password and signs them out everywhere.
func (s *Service) SetPassword(ctx context.Context, username, password string) error {
	if err := ValidatePassword(password); err != nil {
		return err
	}
	u, err := s.Store.UserByUsername(ctx, username)
	if err != nil {
		return fmt.Errorf("find user %q: %w", username, err)
	}
	hash, err := s.Hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	if err := s.Store.SetPassword(ctx, u.ID, hash, s.Now().UTC()); err != nil {
		return fmt.Errorf("set password of %q: %w", username, err)
	}
	return nil
}

// Delete removes a user and their sign-ins.
func (s *Service) Delete(ctx context.Context, username string) error {
	u, err := s.Store.UserByUsername(ctx, username)
	if err != nil {
		return fmt.Errorf("find user %q: %w", username, err)
	}
	if err := s.Store.DeleteUser(ctx, u.ID); err != nil {
		return fmt.Errorf("delete user %q: %w", username, err)
	}
	return nil
}

// Authenticate checks a username and password. Unknown users and wrong
// passwords both return ErrInvalidCredentials after the same amount of
// hashing work, so neither the answer nor its timing tells them apart.
func (s *Service) Authenticate(ctx context.Context, username, password string) (store.User, error) {
	if len(password) > MaxPassword || len(username) > MaxUsername {
		return store.User{}, ErrInvalidCredentials
	}
	u, err := s.Store.UserByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		if err := s.Hasher.VerifyDummy(ctx, password); err != nil {
			return store.User{}, fmt.Errorf("verify password: %w", err)
		}
		return store.User{}, ErrInvalidCredentials
	}
	if err != nil {
		return store.User{}, fmt.Errorf("find user: %w", err)
	}
	ok, err := s.Hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return store.User{}, fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		return store.User{}, ErrInvalidCredentials
	}
	return u, nil
}

// ErrChangedHere: a user's password differs from the one in the store
// being moved from, but was not changed there since (CatchUp).
var ErrChangedHere = errors.New("the password was changed here, not in the store being moved from")

// CatchUp brings u forward to src, the same user (id and username) as held
// by the store being moved from: a later sign-out everywhere
// (TokensValidAfter) is taken, and with it src's password hash, since a
// password change always signs out everywhere; the display name is taken
// as it is. TokensValidAfter never moves back, and a password hash that
// differs without a later sign-out in src is ErrChangedHere: the target
// changed it itself and an older password must not come back. It reports
// whether u changed and whether its sign-out moved (its tokens are to be
// revoked).
func CatchUp(u *store.User, src store.User) (changed, signedOut bool, err error) {
	if u.ID != src.ID || u.Username != src.Username {
		return false, false, fmt.Errorf("user %q is not %q", u.Username, src.Username)
	}
	later := src.TokensValidAfter.Truncate(time.Microsecond).After(u.TokensValidAfter.Truncate(time.Microsecond))
	if u.PasswordHash != src.PasswordHash && !later {
		return false, false, ErrChangedHere
	}
	if later {
		u.TokensValidAfter, u.PasswordHash = src.TokensValidAfter.Truncate(time.Microsecond), src.PasswordHash
		changed, signedOut = true, true
	}
	if u.DisplayName != src.DisplayName {
		u.DisplayName = src.DisplayName
		changed = true
	}
	return changed, signedOut, nil
}

// SignOutReason is why a catch-up that moved u's sign-out ends their
// sign-ins (an api.Reason* value): the password changed, if its hash is no
// longer hashBefore, else a sign-out everywhere.
func SignOutReason(hashBefore string, u store.User) string {
	if u.PasswordHash != hashBefore {
		return api.ReasonPasswordChanged
	}
	return api.ReasonLogoutAll
}
