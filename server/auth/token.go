package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// MinTokenBytes is the shortest token NewToken makes: 128 bits, the least
// that cannot be guessed online.
const MinTokenBytes = 16

// NewToken returns n random bytes (n >= MinTokenBytes) as unpadded
// base64url, for secrets such as refresh and poll tokens (use 32 for 256
// bits). Store only HashToken of it.
func NewToken(n int) (string, error) {
	if n < MinTokenBytes {
		return "", fmt.Errorf("new token: %d bytes is below the minimum of %d", n, MinTokenBytes)
	}
	b := make([]byte, n)
	rand.Read(b) // never fails; see crypto/rand.Read
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken returns the SHA-256 of tok, the form in which tokens are
// stored and looked up. Tokens are long random values, so a fast unsalted
// hash is enough: there is nothing to brute-force.
func HashToken(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

// NewID returns a random 128-bit identifier as 22 URL-safe characters.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// UserCodeAlphabet holds the characters of user codes: consonants only, so
// codes spell no words, and none that are easily confused with digits.
const UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// UserCodeLen is the number of characters in a user code (without dash).
const UserCodeLen = 8

// NewUserCode returns UserCodeLen characters drawn uniformly from
// UserCodeAlphabet, without the dash (the stored form; see FormatUserCode).
// The error is always nil since crypto/rand cannot fail (Go 1.24); it is
// kept so callers handle a code source that can.
func NewUserCode() (string, error) {
	const n = len(UserCodeAlphabet)
	// Bytes at or above the largest multiple of n are rejected so every
	// letter is equally likely (a plain b % n would favour the first ones).
	const limit = 256 - 256%n
	var code [UserCodeLen]byte
	var buf [2 * UserCodeLen]byte
	for i := 0; i < len(code); {
		rand.Read(buf[:])
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			code[i] = UserCodeAlphabet[int(b)%n]
			i++
			if i == len(code) {
				break
			}
		}
	}
	return string(code[:]), nil
}

// FormatUserCode returns code as shown to people: XXXX-XXXX. A code that is
// not UserCodeLen characters long is returned unchanged.
func FormatUserCode(code string) string {
	if len(code) != UserCodeLen {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// NormalizeUserCode turns what a person typed into the stored form: it
// ignores case, dashes and spaces, and reports false unless the result is
// UserCodeLen characters of UserCodeAlphabet.
func NormalizeUserCode(input string) (string, bool) {
	// Anything much longer than "XXXX-XXXX" with some spaces is not a code;
	// stop before doing work proportional to hostile input.
	if len(input) > 4*UserCodeLen {
		return "", false
	}
	var b strings.Builder
	b.Grow(UserCodeLen)
	for _, r := range input {
		switch {
		case r == '-' || r == ' ':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		if !strings.ContainsRune(UserCodeAlphabet, r) || b.Len() == UserCodeLen {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != UserCodeLen {
		return "", false
	}
	return b.String(), true
}
