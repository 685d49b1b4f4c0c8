// Package oauth serves qrlogin as an OAuth 2.0 authorization server and
// OpenID Connect provider for other apps: the device authorization grant
// (RFC 8628) with refresh tokens, OpenID Connect discovery, ID tokens and
// userinfo, and token revocation (RFC 7009).
//
// It adds no sign-in machinery of its own. A device authorization is a
// login session of server/login, confirmed on the same phone page; the
// device code is the session's poll token; the token endpoint hands out
// tokens through the store's one-time DeliverSession, and refresh tokens
// follow server/refresh. What is specific to OAuth lives here: clients
// and their authentication, the RFC 6749 §5.2 error answers, slow_down,
// and which tokens a client may use.
package oauth
