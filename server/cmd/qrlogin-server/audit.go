package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/store"
)

// auditPage is how many entries `audit` reads at a time.
const auditPage = 1000

// auditCmd runs "audit": it prints the audit log, oldest first.
func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := app.DefaultConfig()
	fs.StringVar(&cfg.DB, "db", cfg.DB, dbHelp)
	username := fs.String("user", "", "only the entries of this user (by username)")
	since := fs.String("since", "24h", "only entries this recent (a duration such as 24h or 30m, 0 for all) or since this time (RFC 3339)")
	asJSON := fs.Bool("json", false, "print one JSON object per line instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit: unexpected arguments %q", fs.Args())
	}
	if err := setFromEnv(fs); err != nil {
		return err
	}
	now := time.Now()
	from, err := parseSince(*since, now)
	if err != nil {
		return fmt.Errorf("audit: --since %q: %w", *since, err)
	}
	st, err := app.OpenStore(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	q := store.AuditQuery{Since: from, Limit: auditPage}
	if *username != "" {
		u, err := st.UserByUsername(ctx, *username)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("audit: no user %q (see user list)", *username)
		}
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		q.UserID = u.ID
	}

	var tw *tabwriter.Writer
	if !*asJSON {
		tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTIME\tEVENT\tUSER\tDEVICE\tIP\tDETAIL")
	}
	enc := json.NewEncoder(stdout)
	for {
		es, err := st.AuditEntries(ctx, q)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		for _, e := range es {
			if *asJSON {
				if err := enc.Encode(jsonEntry(e)); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Time.UTC().Format(time.RFC3339), e.Event,
				printable(e.Username), printable(deviceColumn(e)), printable(e.IP), printable(detailColumn(e.Detail)))
		}
		if len(es) < auditPage {
			break
		}
		q.AfterID = es[len(es)-1].ID
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// parseSince reads --since: a duration back from now (0: everything) or
// an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		switch {
		case d < 0:
			return time.Time{}, errors.New("must not be negative")
		case d == 0:
			return time.Time{}, nil
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("want a duration such as 24h, 90m or 0 (everything), or a time such as 2026-03-14T09:00:00Z")
}

// entryJSON is an entry as `audit --json` prints it.
type entryJSON struct {
	ID       int64             `json:"id"`
	Time     time.Time         `json:"time"`
	Event    audit.Event       `json:"event"`
	UserID   string            `json:"user_id,omitempty"`
	Username string            `json:"username,omitempty"`
	DeviceID string            `json:"device_id,omitempty"`
	Device   string            `json:"device,omitempty"`
	IP       string            `json:"ip,omitempty"`
	Detail   map[string]string `json:"detail,omitempty"`
}

func jsonEntry(e audit.Entry) entryJSON {
	return entryJSON{ID: e.ID, Time: e.Time.UTC(), Event: e.Event, UserID: e.UserID, Username: e.Username,
		DeviceID: e.DeviceID, Device: e.Device, IP: e.IP, Detail: e.Detail}
}

// deviceColumn names the entry's device and its id.
func deviceColumn(e audit.Entry) string {
	switch {
	case e.Device != "" && e.DeviceID != "":
		return e.Device + " (" + e.DeviceID + ")"
	case e.Device != "":
		return e.Device
	}
	return e.DeviceID
}

// detailColumn is the detail as key=value pairs in key order.
func detailColumn(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + d[k]
	}
	return strings.Join(parts, " ")
}

// printable replaces control characters (and tabs, which would break the
// table) with '?': entries hold names that clients chose, and a terminal
// must not take any of them for an escape sequence.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return '?'
		}
		return r
	}, s)
}

// cliRecorder records the command line's security events in st; a
// failure to record is reported on stderr and fails nothing.
func cliRecorder(st store.Store, stderr io.Writer) *audit.Recorder {
	return audit.NewRecorder(st, slog.New(slog.NewTextHandler(stderr, nil)), time.Now)
}

// cliEntry is an entry of event made by command, naming the account of
// the operating system that ran it.
func cliEntry(event audit.Event, command string) audit.Entry {
	e := audit.Entry{Event: event, Detail: map[string]string{"command": command}}
	if u, err := user.Current(); err == nil {
		e.Detail["os_user"] = u.Username
	}
	return e
}
