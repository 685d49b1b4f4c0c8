package httpapi

import (
	"fmt"
	"time"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// refreshTokenBytes is the size of refresh and phone tokens (256 bits).
const refreshTokenBytes = 32

// minter makes the tokens of a new sign-in: the accounts' password
// sign-in and the desktop's QR sign-in share it.
type minter struct {
	tokens interface {
		Sign(userID, amr, sid string) (string, time.Time, error)
		TTL() time.Duration
	}
	policy refresh.Policy
	now    func() time.Time
}

// access signs an access token for userID, who signed in with method amr
// in the sign-in (device) sid.
func (m minter) access(userID, amr, sid string) (string, error) {
	tok, _, err := m.tokens.Sign(userID, amr, sid)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return tok, nil
}

// pair is the token answer for an access and a refresh token.
func (m minter) pair(access, refresh string) api.Tokens {
	return api.Tokens{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(m.tokens.TTL() / time.Second), RefreshToken: refresh}
}

// refresh makes a random refresh token and its record, the first of a new
// sign-in of userID made with method amr.
func (m minter) refresh(userID, amr string) (string, store.RefreshToken, error) {
	return m.long(refresh.KindRefresh, userID, amr)
}

// long makes a random token of kind and its record, the first of a new
// family.
func (m minter) long(kind refresh.Kind, userID, amr string) (string, store.RefreshToken, error) {
	tok, err := auth.NewToken(refreshTokenBytes)
	if err != nil {
		return "", store.RefreshToken{}, fmt.Errorf("new refresh token: %w", err)
	}
	return tok, m.policy.Start(kind, userID, amr, auth.NewID(), auth.NewID(), auth.HashToken(tok), m.now()), nil
}
