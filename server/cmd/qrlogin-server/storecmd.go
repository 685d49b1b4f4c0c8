package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/server/store/postgres"
)

// storeCmd runs "store copy".
func storeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "copy" {
		fmt.Fprint(stderr, usage)
		return errors.New("store: the command is copy")
	}
	fs := flag.NewFlagSet("store copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the database to copy from: a SQLite file (or a postgres:// URL)")
	to := fs.String("to", "", "the database to copy to: a postgres:// URL (or a SQLite file)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("store copy: unexpected arguments %q", fs.Args())
	}
	if *from == "" || *to == "" {
		return errors.New("store copy: --from and --to are required")
	}
	if *from == *to {
		return errors.New("store copy: --from and --to name the same database")
	}
	if !postgres.IsURL(*from) {
		// Opening a missing SQLite file would create an empty one.
		if _, err := os.Stat(*from); err != nil {
			return fmt.Errorf("store copy: --from: %w", err)
		}
	}
	src, err := app.OpenStore(ctx, *from)
	if err != nil {
		return fmt.Errorf("store copy: --from: %w", err)
	}
	defer src.Close()
	dst, err := app.OpenStore(ctx, *to)
	if err != nil {
		return fmt.Errorf("store copy: --to: %w", err)
	}
	defer dst.Close()

	res, err := copyStore(ctx, src, dst)
	if err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	fmt.Fprintf(stdout, "copied %d users and %d signing keys from %s to %s", res.users, res.keys, redact(*from), redact(*to))
	if res.usersThere+res.keysThere > 0 {
		fmt.Fprintf(stdout, " (%d users and %d keys were already there)", res.usersThere, res.keysThere)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "Sign-ins (refresh tokens, phone cookies) are not copied: desktops and phones sign in again once they use the new database.")
	return nil
}

// copyResult counts what copyStore did.
type copyResult struct {
	users, usersThere int
	keys, keysThere   int
}

// copyStore copies every user and signing key of src into dst. What dst
// already holds identically is skipped, so a copy can be run again; if dst
// holds a different user under the same id or username, or a different
// key under the same id, it copies nothing and says which.
func copyStore(ctx context.Context, src, dst store.Store) (copyResult, error) {
	var res copyResult
	users, err := src.Users(ctx)
	if err != nil {
		return res, err
	}
	keys, err := src.SigningKeys(ctx)
	if err != nil {
		return res, err
	}

	// Check everything first, so that a refusal leaves dst untouched.
	var newUsers []store.User
	var newKeys []store.SigningKey
	var conflicts []error
	for _, u := range users {
		there, err := dst.UserByUsername(ctx, u.Username)
		if errors.Is(err, store.ErrNotFound) {
			there, err = dst.User(ctx, u.ID)
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			newUsers = append(newUsers, u)
		case err != nil:
			return res, err
		case there.ID == u.ID && there.Username == u.Username && there.DisplayName == u.DisplayName && there.PasswordHash == u.PasswordHash:
			res.usersThere++
		default:
			conflicts = append(conflicts, fmt.Errorf("user %q: the target has a different user %q (id %s) in its place", u.Username, there.Username, there.ID))
		}
	}
	have, err := dst.SigningKeys(ctx)
	if err != nil {
		return res, err
	}
	haveByID := make(map[string]store.SigningKey, len(have))
	for _, k := range have {
		haveByID[k.ID] = k
	}
	for _, k := range keys {
		there, ok := haveByID[k.ID]
		switch {
		case !ok:
			newKeys = append(newKeys, k)
		case bytes.Equal(there.PrivateKey, k.PrivateKey):
			res.keysThere++
		default:
			conflicts = append(conflicts, fmt.Errorf("signing key %s: the target has a different key with that id", k.ID))
		}
	}
	if len(conflicts) > 0 {
		return res, fmt.Errorf("nothing copied; the target already holds different data:\n%w", errors.Join(conflicts...))
	}

	for _, u := range newUsers {
		if err := dst.CreateUser(ctx, u); err != nil {
			return res, err
		}
		res.users++
	}
	for _, k := range newKeys {
		if err := dst.CreateSigningKey(ctx, k); err != nil {
			return res, err
		}
		res.keys++
	}
	return res, nil
}

// redact hides the password of a database URL.
func redact(dsn string) string {
	if !postgres.IsURL(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a postgres URL)"
	}
	return u.Redacted()
}
