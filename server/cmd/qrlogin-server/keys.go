package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/store"
)

// defaultActivateIn is how far ahead `keys rotate` dates a new key: servers
// re-read their keys every minute (app.Config.KeyReload) and JWKS answers
// may be cached for five (Cache-Control: max-age=300), so by then every
// server and every service that verifies our tokens knows the key before
// anyone signs with it, with time to spare for clock skew.
const defaultActivateIn = 10 * time.Minute

// keysCmd runs "keys rotate" and "keys list".
func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("keys: which command? rotate or list")
	}
	sub := args[0]
	if sub != "rotate" && sub != "list" {
		return fmt.Errorf("keys: unknown command %q (rotate, list)", sub)
	}
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := app.DefaultConfig()
	fs.StringVar(&cfg.DB, "db", cfg.DB, dbHelp)
	activateIn := defaultActivateIn
	if sub == "rotate" {
		fs.DurationVar(&activateIn, "activate-in", activateIn,
			"how long until the new key starts signing; until then servers only trust it (0: at once, e.g. after a leak)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("keys %s: unexpected arguments %q", sub, fs.Args())
	}
	if err := setFromEnv(fs); err != nil {
		return err
	}
	if activateIn < 0 {
		return fmt.Errorf("keys rotate: --activate-in %v must not be negative", activateIn)
	}
	st, err := app.OpenStore(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()

	if sub == "list" {
		return listKeys(ctx, st, stdout, time.Now())
	}
	k, err := newSigningKey(time.Now().Add(activateIn))
	if err != nil {
		return err
	}
	if err := st.CreateSigningKey(ctx, k); err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	fmt.Fprintf(stdout, "added signing key %s; servers trust it within a minute and sign with it from %s\n",
		k.ID, k.CreatedAt.Format(time.RFC3339))
	fmt.Fprintln(stdout, "older keys stay in the JWKS, so the tokens they signed stay valid until they expire")
	return nil
}

// newSigningKey makes an Ed25519 key that starts signing at activeFrom.
// Its CreatedAt is activeFrom: servers sign with the newest key whose
// CreatedAt has passed.
func newSigningKey(activeFrom time.Time) (store.SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	return store.SigningKey{ID: auth.NewID(), PrivateKey: priv, CreatedAt: activeFrom.UTC().Truncate(time.Microsecond)}, nil
}

// listKeys prints the keys, newest first, with what each is for at now.
func listKeys(ctx context.Context, st store.Store, w io.Writer, now time.Time) error {
	keys, err := st.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys list: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tSIGNS FROM\tSTATE")
	signing := false
	for _, k := range keys {
		state := "verifies only (older)"
		switch {
		case k.CreatedAt.After(now):
			state = "pending: trusted, signs from then"
		case !signing:
			state, signing = "signing", true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, k.CreatedAt.UTC().Format(time.RFC3339), state)
	}
	return tw.Flush()
}
