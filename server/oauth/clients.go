package oauth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/store"
)

// MinSecretLen is the shortest client secret NewClient takes. Secrets are
// stored as a plain SHA-256, which is only safe for values nobody can
// guess: generate them (openssl rand -base64 32), never choose them.
const MinSecretLen = 32

// ReservedClientID is the audience of qrlogin's own access tokens; no
// client may take it, or its tokens would pass as the API's.
const ReservedClientID = "qrlogin"

// validClientID is what a client id may look like: short, printable
// ASCII without spaces or characters that need quoting in a URL.
var validClientID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$`)

// maxNameLen is the longest display name of a client, in characters.
const maxNameLen = 100

// NewClient checks a client to register and returns it as stored: secret
// "" makes a public client; otherwise the secret's SHA-256 is kept.
func NewClient(id, name, secret string, now time.Time) (store.Client, error) {
	var errs []error
	if !validClientID.MatchString(id) {
		errs = append(errs, fmt.Errorf("client id %q: use 1 to 64 letters, digits, '.', '_', '~' or '-', starting with a letter or digit", id))
	} else if strings.EqualFold(id, ReservedClientID) {
		errs = append(errs, fmt.Errorf("client id %q is reserved for qrlogin's own tokens", id))
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		errs = append(errs, errors.New("client name: must not be empty (it is shown on the phone)"))
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameLen:
		errs = append(errs, fmt.Errorf("client name: must be valid text of at most %d characters", maxNameLen))
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0:
		errs = append(errs, errors.New("client name: must not hold control or formatting characters"))
	}
	if secret != "" && len(secret) < MinSecretLen {
		errs = append(errs, fmt.Errorf("client secret: at least %d characters, generated (e.g. openssl rand -base64 32)", MinSecretLen))
	}
	if err := errors.Join(errs...); err != nil {
		return store.Client{}, err
	}
	c := store.Client{ID: id, Name: name, CreatedAt: now.UTC()}
	if secret != "" {
		c.SecretHash = auth.HashToken(secret)
	}
	return c, nil
}

// readForm parses the request's application/x-www-form-urlencoded body.
// Query parameters are ignored; a parameter given twice is refused
// (RFC 6749 §3.2).
func readForm(c *gin.Context) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, badRequest(errInvalidRequest, "The request body must be application/x-www-form-urlencoded.")
	}
	if err := c.Request.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, badRequest(errInvalidRequest, "The request body is too large.")
		}
		return nil, badRequest(errInvalidRequest, "The request body is not a valid form.")
	}
	for k, v := range c.Request.PostForm {
		if len(v) > 1 {
			return nil, badRequest(errInvalidRequest, "Parameter "+k+" is given more than once.")
		}
	}
	return c.Request.PostForm, nil
}

// authenticateClient finds and authenticates the client of a form request
// (RFC 6749 §2.3): a confidential client by client_secret_basic or
// client_secret_post, a public client by client_id in the body alone
// ("none"). A public client presenting HTTP Basic is refused, which also
// makes clients that try Basic first (golang.org/x/oauth2) settle on the
// body at once.
func (h *Handler) authenticateClient(ctx context.Context, c *gin.Context, form url.Values) (store.Client, error) {
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	user, pass, basic := c.Request.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic.
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		switch {
		case err1 != nil || err2 != nil:
			return store.Client{}, clientError("The Basic credentials are not form-encoded correctly.", true)
		case formSecret != "":
			return store.Client{}, badRequest(errInvalidRequest, "Use one client authentication method, not Basic and client_secret both.")
		case formID != "" && formID != id:
			return store.Client{}, badRequest(errInvalidRequest, "client_id differs from the Basic user name.")
		}
		cl, err := h.lookupClient(ctx, id, true)
		if err != nil {
			return store.Client{}, err
		}
		if cl.Public() {
			return store.Client{}, clientError("This client is public: send client_id in the request body, without Basic authentication.", true)
		}
		if !secretMatches(cl, secret) {
			return store.Client{}, clientError("Client authentication failed.", true)
		}
		return cl, nil
	}
	if formID == "" {
		return store.Client{}, clientError("Client authentication failed: client_id is missing.", false)
	}
	cl, err := h.lookupClient(ctx, formID, false)
	if err != nil {
		return store.Client{}, err
	}
	switch {
	case cl.Public() && formSecret != "":
		return store.Client{}, clientError("This client is public and has no secret.", false)
	case !cl.Public() && !secretMatches(cl, formSecret):
		return store.Client{}, clientError("Client authentication failed.", false)
	}
	return cl, nil
}

// lookupClient loads a client; an unknown one is invalid_client.
func (h *Handler) lookupClient(ctx context.Context, id string, triedBasic bool) (store.Client, error) {
	if !validClientID.MatchString(id) {
		return store.Client{}, clientError("Client authentication failed: unknown client.", triedBasic)
	}
	cl, err := h.store.Client(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Client{}, clientError("Client authentication failed: unknown client.", triedBasic)
	}
	if err != nil {
		return store.Client{}, fmt.Errorf("load client: %w", err)
	}
	return cl, nil
}

// secretMatches compares a presented secret with the stored hash in
// constant time.
func secretMatches(cl store.Client, secret string) bool {
	if secret == "" {
		return false
	}
	return subtle.ConstantTimeCompare(auth.HashToken(secret), cl.SecretHash) == 1
}

// The scopes a client may ask for.
const (
	ScopeOpenID        = "openid"         // an ID token, and userinfo
	ScopeProfile       = "profile"        // name and preferred_username
	ScopeOfflineAccess = "offline_access" // a refresh token
)

// Scopes lists the supported scopes in the order scope strings are
// written back.
var Scopes = []string{ScopeOpenID, ScopeProfile, ScopeOfflineAccess}

// parseScope checks a space-delimited scope (RFC 6749 §3.3) and returns
// it in a canonical order without repeats.
func parseScope(s string) (string, error) {
	if len(s) > 256 {
		return "", badRequest(errInvalidScope, "The scope is too long.")
	}
	asked := strings.Split(s, " ")
	for _, sc := range asked {
		if sc != "" && !slices.Contains(Scopes, sc) {
			return "", badRequest(errInvalidScope, fmt.Sprintf("Unknown scope %q; supported: %s.", sc, strings.Join(Scopes, ", ")))
		}
	}
	var out []string
	for _, sc := range Scopes {
		if slices.Contains(asked, sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, " "), nil
}

// hasScope reports whether the space-delimited scope holds one.
func hasScope(scope, one string) bool { return slices.Contains(strings.Fields(scope), one) }

// subScope reports whether every scope in sub is in of.
func subScope(sub, of string) bool {
	for _, sc := range strings.Fields(sub) {
		if !hasScope(of, sc) {
			return false
		}
	}
	return true
}
