package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/store"
)

// defaultActivateIn is how far ahead `keys rotate` dates a new key: servers
// re-read their keys every minute (app.Config.KeyReload) and JWKS answers
// may be cached for five (Cache-Control: max-age=300), so by then every
// server and every service that verifies our tokens knows the key before
// anyone signs with it, with time to spare for clock skew.
const defaultActivateIn = 10 * time.Minute

// keysCmd runs "keys rotate", "keys list" and "keys retire".
func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("keys: which command? rotate, list or retire")
	}
	sub := args[0]
	if sub != "rotate" && sub != "list" && sub != "retire" {
		return fmt.Errorf("keys: unknown command %q (rotate, list, retire)", sub)
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
	var kid string
	if sub == "retire" {
		fs.StringVar(&kid, "kid", "", "the id of the key to retire (see keys list)")
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
	rec := cliRecorder(st, stderr)

	switch sub {
	case "list":
		return listKeys(ctx, st, stdout, time.Now())
	case "retire":
		return retireKey(ctx, st, rec, kid, stdout, time.Now())
	}
	k, err := newSigningKey(time.Now().Add(activateIn))
	if err != nil {
		return err
	}
	if err := st.CreateSigningKey(ctx, k); err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	e := cliEntry(audit.KeyRotated, "keys rotate")
	e.Detail["kid"], e.Detail["signs_from"] = k.ID, k.CreatedAt.Format(time.RFC3339)
	rec.Record(ctx, e)
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

// retireKey removes the key kid, so that servers stop trusting it and
// drop it from their JWKS when they next reload their keys (within a
// minute); tokens it signed are refused from then on. The key that signs
// at now is refused: servers would go on signing with it until they
// reload, and hand out tokens nobody accepts. Rotate first.
func retireKey(ctx context.Context, st store.Store, rec *audit.Recorder, kid string, w io.Writer, now time.Time) error {
	if kid == "" {
		return errors.New("keys retire: --kid is required (see keys list)")
	}
	keys, err := st.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys retire: %w", err)
	}
	if !slices.ContainsFunc(keys, func(k store.SigningKey) bool { return k.ID == kid }) {
		return fmt.Errorf("keys retire: no signing key %q (see keys list)", kid)
	}
	// Servers sign with the newest key whose time has come, or with the
	// oldest if every key is pending (server/app's keyRing).
	signing := keys[len(keys)-1].ID
	for _, k := range keys { // newest first
		if !k.CreatedAt.After(now) {
			signing = k.ID
			break
		}
	}
	if kid == signing {
		return fmt.Errorf("keys retire: %s is the key servers sign with now; "+
			"run keys rotate first and retire it once the new key signs", kid)
	}
	if err := st.DeleteSigningKey(ctx, kid); err != nil {
		return fmt.Errorf("keys retire: %w", err)
	}
	e := cliEntry(audit.KeyRetired, "keys retire")
	e.Detail["kid"] = kid
	rec.Record(ctx, e)
	fmt.Fprintf(w, "retired signing key %s; servers stop trusting it and drop it from the JWKS within a minute\n", kid)
	fmt.Fprintln(w, "access tokens it signed are refused from then on")
	return nil
}
