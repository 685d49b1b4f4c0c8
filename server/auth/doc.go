// Package auth owns the server's secrets: Argon2id password hashes, Ed25519
// signed access tokens (JWT) and the opaque random values the rest of the
// server hands out (ids, refresh and poll tokens, user codes).
//
// It keeps no state of its own beyond signing keys loaded from a KeyStore;
// callers store hashes and tokens through server/store.
package auth
