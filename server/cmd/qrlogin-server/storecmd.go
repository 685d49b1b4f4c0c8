package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/devices"
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
	deleteMissing := fs.Bool("delete-missing", false,
		"delete on the target the users, OAuth clients and signing keys the source no longer has (deleted there since an earlier copy)")
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

	res, err := copyStore(ctx, src, dst, *deleteMissing)
	if err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	if len(res.deleted) > 0 {
		fmt.Fprintf(stdout, "deleted from the target, as the source no longer has them (their sign-ins end): %s\n", strings.Join(res.deleted, ", "))
	}
	fmt.Fprintf(stdout, "copied %d users and %d signing keys from %s to %s", res.users, res.keys, redact(*from), redact(*to))
	if res.usersThere+res.keysThere > 0 {
		fmt.Fprintf(stdout, " (%d users and %d keys were already there)", res.usersThere, res.keysThere)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "copied %d OAuth clients, %d signed-in devices, %d refresh tokens and phone cookies, and %d audit entries",
		res.clients, res.devices, res.tokens, res.audit)
	if res.clientsThere+res.devicesThere+res.tokensThere+res.auditThere > 0 {
		fmt.Fprintf(stdout, " (%d clients, %d devices, %d tokens and %d entries were already there)",
			res.clientsThere, res.devicesThere, res.tokensThere, res.auditThere)
	}
	fmt.Fprintln(stdout)
	if res.devicesUpdated+res.tokensUpdated+res.usersRevoked+res.usersUpdated > 0 {
		fmt.Fprintf(stdout, "brought %d devices, %d tokens, %d users' sign-outs and %d users' passwords or names up to date\n",
			res.devicesUpdated, res.tokensUpdated, res.usersRevoked, res.usersUpdated)
	}
	fmt.Fprintln(stdout, "Desktops, apps and phones stay signed in, and keep their devices list, once the servers use the new database.")
	return nil
}

// copyResult counts what copyStore did.
type copyResult struct {
	users, usersThere     int
	usersRevoked          int      // users whose sign-out everywhere (or password change) was carried over
	usersUpdated          int      // users whose password or display name was carried over
	deleted               []string // what the target held and the source no longer has, deleted
	keys, keysThere       int
	clients, clientsThere int
	devices, devicesThere int
	devicesUpdated        int // devices already there, brought forward (used, ended) as in the source
	tokens, tokensThere   int
	tokensUpdated         int // tokens already there, marked used or revoked as in the source
	audit, auditThere     int
}

// copyPage is how many refresh tokens or audit entries are read at a time.
const copyPage = 1000

// copyStore copies src into dst: users (with the time they last signed
// out everywhere), signing keys, OAuth clients, every signed-in device
// (the sign-ins of GET /api/v1/devices, ended ones too, so an access token
// of an ended sign-in stays refused), every refresh token and phone cookie
// in whatever state (so that a rotated token presented after the move is
// still detected as reused), and the audit log. Login sessions are not
// copied: they live for minutes.
//
// What dst already holds identically is skipped, so a copy can be run
// again, and users, devices and tokens copied before are brought up to
// date (a password changed, a display name, used, ended, revoked; never
// the other way). If dst holds a different user under the same id or
// username, a different key, client, device or token under the same id,
// it copies nothing and says which.
//
// Users, OAuth clients and signing keys that dst holds and src does not
// (deleted in src since an earlier copy, or made on dst) are deleted from
// dst, ending their sign-ins (a retired key no longer trusted), if
// deleteMissing; otherwise it copies nothing and names them.
func copyStore(ctx context.Context, src, dst store.Store, deleteMissing bool) (copyResult, error) {
	var res copyResult
	users, err := src.Users(ctx)
	if err != nil {
		return res, err
	}
	keys, err := src.SigningKeys(ctx)
	if err != nil {
		return res, err
	}
	clients, err := src.Clients(ctx)
	if err != nil {
		return res, err
	}

	// Check everything first, so that a refusal leaves dst untouched.
	var newUsers, caughtUpUsers []store.User
	var newKeys []store.SigningKey
	var newClients []store.Client
	var conflicts []error
	srcUsers := make(map[string]bool, len(users))
	for _, u := range users {
		srcUsers[u.ID] = true
	}
	for _, u := range users {
		there, err := dst.UserByUsername(ctx, u.Username)
		if err == nil && !srcUsers[there.ID] {
			// A user deleted in the source and added again under the same
			// username: the old one is missing from the source (below).
			there, err = dst.User(ctx, u.ID)
		} else if errors.Is(err, store.ErrNotFound) {
			there, err = dst.User(ctx, u.ID)
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			newUsers = append(newUsers, u)
		case err != nil:
			return res, err
		case there.ID == u.ID && there.Username == u.Username:
			oldHash, oldName := there.PasswordHash, there.DisplayName
			changed, signedOut, err := account.CatchUp(&there, u)
			if errors.Is(err, account.ErrChangedHere) {
				conflicts = append(conflicts, fmt.Errorf("user %q: the target has another password for them, changed there, not in the source", u.Username))
				continue
			} else if err != nil {
				return res, err
			}
			res.usersThere++
			if !changed {
				continue
			}
			caughtUpUsers = append(caughtUpUsers, u)
			if signedOut {
				res.usersRevoked++
			}
			if there.PasswordHash != oldHash || there.DisplayName != oldName {
				res.usersUpdated++
			}
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
	for _, c := range clients {
		there, err := dst.Client(ctx, c.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			newClients = append(newClients, c)
		case err != nil:
			return res, err
		case there.Name == c.Name && bytes.Equal(there.SecretHash, c.SecretHash):
			res.clientsThere++
		default:
			conflicts = append(conflicts, fmt.Errorf("OAuth client %s: the target has a different client with that id", c.ID))
		}
	}
	if err := walkDevices(ctx, src, dst, func(d store.Device, there *store.Device) error {
		if there != nil && !devices.SameSignIn(d, *there) {
			conflicts = append(conflicts, fmt.Errorf("device %s: the target has a different sign-in with that id", d.ID))
		}
		return nil
	}); err != nil {
		return res, err
	}
	tokenConflicts, err := copyTokens(ctx, src, dst, nil)
	if err != nil {
		return res, err
	}
	conflicts = append(conflicts, tokenConflicts...)
	if len(conflicts) > 0 {
		return res, fmt.Errorf("nothing copied; the target already holds different data:\n%w", errors.Join(conflicts...))
	}
	missing, err := missingFromSource(ctx, dst, users, clients, keys)
	if err != nil {
		return res, err
	}
	if len(missing) > 0 && !deleteMissing {
		names := make([]string, len(missing))
		for i, m := range missing {
			names[i] = m.name
		}
		return res, fmt.Errorf("nothing copied; the target holds what the source does not (deleted there since an earlier copy?):\n%s\n"+
			"run again with --delete-missing to delete them on the target, ending their sign-ins", strings.Join(names, "\n"))
	}

	// Before anything is written: a user deleted in the source takes their
	// tokens and devices with them, a client its sign-ins, and a retired
	// key is trusted no more.
	for _, m := range missing {
		if err := m.delete(ctx); err != nil {
			return res, err
		}
		res.deleted = append(res.deleted, m.name)
	}

	for _, u := range newUsers {
		if err := dst.CreateUser(ctx, u); err != nil {
			return res, err
		}
		res.users++
	}
	// Devices copied before that the source has used or ended since: before
	// the sign-outs below, so each keeps the reason the source gave it.
	if err := walkDevices(ctx, src, dst, func(d store.Device, there *store.Device) error {
		if there == nil {
			return nil
		}
		res.devicesThere++
		if x := *there; !devices.CatchUp(&x, d) {
			return nil
		}
		if _, err := dst.CatchUpDevice(ctx, d); err != nil {
			return err
		}
		res.devicesUpdated++
		return nil
	}); err != nil {
		return res, err
	}
	// Before the tokens: a later sign-out everywhere (or password change)
	// revokes every token of theirs the target holds, and ends their
	// devices, as the source did when it was set.
	for _, u := range caughtUpUsers {
		if _, err := dst.CatchUpUser(ctx, u); err != nil {
			return res, err
		}
	}
	for _, k := range newKeys {
		if err := dst.CreateSigningKey(ctx, k); err != nil {
			return res, err
		}
		res.keys++
	}
	for _, c := range newClients {
		if err := dst.CreateClient(ctx, c); err != nil {
			return res, err
		}
		res.clients++
	}
	if conflicts, err := copyTokens(ctx, src, dst, &res); err != nil {
		return res, err
	} else if len(conflicts) > 0 { // written to the target since the check
		return res, fmt.Errorf("copy refresh tokens:\n%w", errors.Join(conflicts...))
	}
	// New devices (the sign-ins of GET /api/v1/devices), after the
	// sign-outs above: a sign-in made since in the source stays live.
	if err := walkDevices(ctx, src, dst, func(d store.Device, there *store.Device) error {
		if there != nil {
			return nil
		}
		if err := dst.ImportDevice(ctx, d); err != nil {
			return err
		}
		res.devices++
		return nil
	}); err != nil {
		return res, err
	}
	if err := copyAudit(ctx, src, dst, &res); err != nil {
		return res, err
	}
	return res, nil
}

// missing is something dst holds that src does not, and how to delete it.
type missing struct {
	name   string
	delete func(context.Context) error
}

// missingFromSource lists the users, OAuth clients and signing keys dst
// holds and src (users, clients, keys) does not, by id.
func missingFromSource(ctx context.Context, dst store.Store, users []store.User, clients []store.Client, keys []store.SigningKey) ([]missing, error) {
	var out []missing
	ids := make(map[string]bool, len(users))
	for _, u := range users {
		ids[u.ID] = true
	}
	have, err := dst.Users(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range have {
		if !ids[u.ID] {
			out = append(out, missing{fmt.Sprintf("user %q (id %s, with their sign-ins)", u.Username, u.ID),
				func(ctx context.Context) error { return dst.DeleteUser(ctx, u.ID) }})
		}
	}
	clear(ids)
	for _, c := range clients {
		ids[c.ID] = true
	}
	haveClients, err := dst.Clients(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range haveClients {
		if !ids[c.ID] {
			out = append(out, missing{fmt.Sprintf("OAuth client %s (%q, with its sign-ins)", c.ID, c.Name),
				func(ctx context.Context) error { return dst.DeleteClient(ctx, c.ID) }})
		}
	}
	clear(ids)
	for _, k := range keys {
		ids[k.ID] = true
	}
	haveKeys, err := dst.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range haveKeys {
		if !ids[k.ID] {
			out = append(out, missing{fmt.Sprintf("signing key %s (its tokens no longer trusted)", k.ID),
				func(ctx context.Context) error { return dst.DeleteSigningKey(ctx, k.ID) }})
		}
	}
	return out, nil
}

// micro is t to the microsecond, the precision every store keeps.
func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// sameToken reports whether a and b are one token, whatever their state
// (used, revoked).
func sameToken(a, b store.RefreshToken) bool {
	return a.ID == b.ID && bytes.Equal(a.Hash, b.Hash) && a.UserID == b.UserID && a.FamilyID == b.FamilyID &&
		a.Kind == b.Kind && a.AMR == b.AMR && a.ClientID == b.ClientID && a.Scope == b.Scope &&
		micro(a.AuthTime).Equal(micro(b.AuthTime)) && micro(a.CreatedAt).Equal(micro(b.CreatedAt)) &&
		micro(a.ExpiresAt).Equal(micro(b.ExpiresAt))
}

// copyTokens walks the refresh tokens of src and dst side by side in id
// order. With res nil it only returns the tokens dst holds differently;
// otherwise it creates the tokens dst lacks and marks used or revoked
// those that src has used or revoked since an earlier copy (never the
// other way: the target may be newer).
func copyTokens(ctx context.Context, src, dst store.Store, res *copyResult) ([]error, error) {
	var conflicts []error
	var have []store.RefreshToken // the page of dst being compared
	haveAfter, haveDone := "", false
	after := ""
	for {
		page, err := src.RefreshTokens(ctx, after, copyPage)
		if err != nil {
			return nil, err
		}
		for _, rt := range page {
			// Advance dst to the first token at or after rt.
			for !haveDone && (len(have) == 0 || have[len(have)-1].ID < rt.ID) {
				if len(have) > 0 {
					haveAfter = have[len(have)-1].ID
				}
				if have, err = dst.RefreshTokens(ctx, haveAfter, copyPage); err != nil {
					return nil, err
				}
				haveDone = len(have) < copyPage
			}
			for len(have) > 0 && have[0].ID < rt.ID {
				have = have[1:]
			}
			if len(have) == 0 || have[0].ID != rt.ID {
				if res != nil {
					if err := dst.CreateRefreshToken(ctx, rt); err != nil {
						return nil, fmt.Errorf("refresh token %s: %w", rt.ID, err)
					}
					res.tokens++
				}
				continue
			}
			there := have[0]
			switch {
			case !sameToken(rt, there):
				conflicts = append(conflicts, fmt.Errorf("refresh token %s: the target has a different token with that id", rt.ID))
			case res == nil:
			case (!rt.UsedAt.IsZero() && there.UsedAt.IsZero()) || (!rt.RevokedAt.IsZero() && there.RevokedAt.IsZero()):
				if _, err := dst.UpdateRefreshToken(ctx, rt.Hash, func(t *store.RefreshToken) (*store.RefreshToken, error) {
					if t.UsedAt.IsZero() {
						t.UsedAt = rt.UsedAt
					}
					if t.RevokedAt.IsZero() {
						t.RevokedAt = rt.RevokedAt
					}
					return nil, nil
				}); err != nil {
					return nil, fmt.Errorf("refresh token %s: %w", rt.ID, err)
				}
				res.tokensUpdated++
				res.tokensThere++
			default:
				res.tokensThere++
			}
		}
		if len(page) < copyPage {
			return conflicts, nil
		}
		after = page[len(page)-1].ID
	}
}

// walkDevices walks the devices of src and dst side by side in id order
// and calls fn on each device of src (its times to the microsecond, as
// every store keeps them) with dst's device of that id, or nil.
func walkDevices(ctx context.Context, src, dst store.Store, fn func(d store.Device, there *store.Device) error) error {
	var have []store.Device // the page of dst being compared
	haveAfter, haveDone := "", false
	after := ""
	for {
		page, err := src.ListDevices(ctx, after, copyPage)
		if err != nil {
			return err
		}
		for _, d := range page {
			d.CreatedAt, d.LastUsedAt, d.ExpiresAt, d.EndedAt = micro(d.CreatedAt), micro(d.LastUsedAt), micro(d.ExpiresAt), micro(d.EndedAt)
			// Advance dst to the first device at or after d.
			for !haveDone && (len(have) == 0 || have[len(have)-1].ID < d.ID) {
				if len(have) > 0 {
					haveAfter = have[len(have)-1].ID
				}
				if have, err = dst.ListDevices(ctx, haveAfter, copyPage); err != nil {
					return err
				}
				haveDone = len(have) < copyPage
			}
			for len(have) > 0 && have[0].ID < d.ID {
				have = have[1:]
			}
			var there *store.Device
			if len(have) > 0 && have[0].ID == d.ID {
				there = &have[0]
			}
			if err := fn(d, there); err != nil {
				return fmt.Errorf("device %s: %w", d.ID, err)
			}
		}
		if len(page) < copyPage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// copyAudit copies the audit entries dst lacks, keeping their ids so
// that the log reads as it did. An entry whose id dst has given to another
// entry of its own (a server or command ran on the target already) is
// appended with a new id instead, unless dst holds an identical entry
// (from an earlier copy).
func copyAudit(ctx context.Context, src, dst store.Store, res *copyResult) error {
	var displaced []audit.Entry
	q := store.AuditQuery{Limit: copyPage}
	for {
		page, err := src.AuditEntries(ctx, q)
		if err != nil {
			return err
		}
		if len(page) > 0 {
			// The target's entries with these ids.
			have, err := dst.AuditEntries(ctx, store.AuditQuery{AfterID: page[0].ID - 1, Limit: int(page[len(page)-1].ID - page[0].ID + 1)})
			if err != nil {
				return err
			}
			byID := make(map[int64]audit.Entry, len(have))
			for _, e := range have {
				byID[e.ID] = e
			}
			for _, e := range page {
				there, ok := byID[e.ID]
				switch {
				case !ok:
					if err := dst.AppendAudit(ctx, e); err != nil {
						return fmt.Errorf("audit entry %d: %w", e.ID, err)
					}
					res.audit++
				case sameEntry(e, there):
					res.auditThere++
				default:
					displaced = append(displaced, e)
				}
			}
		}
		if len(page) < copyPage {
			break
		}
		q.AfterID = page[len(page)-1].ID
	}
	if len(displaced) == 0 {
		return nil
	}
	// Entries identical to a displaced one (copied on an earlier run), by
	// content, each standing for one.
	held := map[string]int{}
	q = store.AuditQuery{Limit: copyPage}
	for {
		page, err := dst.AuditEntries(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range page {
			held[entryKey(e)]++
		}
		if len(page) < copyPage {
			break
		}
		q.AfterID = page[len(page)-1].ID
	}
	for _, e := range displaced {
		if k := entryKey(e); held[k] > 0 {
			held[k]--
			res.auditThere++
			continue
		}
		e.ID = 0
		if err := dst.AppendAudit(ctx, e); err != nil {
			return fmt.Errorf("audit entry: %w", err)
		}
		res.audit++
	}
	return nil
}

// sameEntry reports whether a and b record the same event.
func sameEntry(a, b audit.Entry) bool {
	return a.ID == b.ID && entryKey(a) == entryKey(b)
}

// entryKey is what an entry records, without its id.
func entryKey(e audit.Entry) string {
	e.ID, e.Time = 0, micro(e.Time).UTC()
	if len(e.Detail) == 0 {
		e.Detail = nil
	}
	b, _ := json.Marshal(e) // map keys are sorted; a struct of strings cannot fail
	return string(b)
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
