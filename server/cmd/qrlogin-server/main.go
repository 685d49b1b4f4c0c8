// Command qrlogin-server is the qrlogin sign-in server: it lets a desktop
// app sign in when a phone scans its QR code and confirms.
//
//	qrlogin-server serve [flags]          run the server
//	qrlogin-server user add --username U  add a user (also: list, passwd, delete)
//	qrlogin-server keys rotate            add a signing key (also: list, retire)
//	qrlogin-server client add --id ID --name N  register an OAuth client (also: list, delete)
//	qrlogin-server audit [--user U] [--since 24h] [--json]  print the audit log
//	qrlogin-server store copy --from F --to URL  copy a database to PostgreSQL
//	qrlogin-server --version
//
// Every serve flag can also be set by a QRLOGIN_* environment variable
// (e.g. --public-url by QRLOGIN_PUBLIC_URL); flags win.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/requestid"
	"github.com/qrlogin/qrlogin/server/store"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// Gin's debug mode prints every route to stdout; the server logs
	// through slog. The mode is process-wide, so the process's main sets
	// it, once, rather than a library's init.
	gin.SetMode(gin.ReleaseMode)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "qrlogin-server:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage:
  qrlogin-server serve [flags]                 run the server (serve -h lists the flags)
  qrlogin-server user add --username U [--display-name D] [--password-stdin]
  qrlogin-server user list
  qrlogin-server user passwd --username U [--password-stdin]
  qrlogin-server user delete --username U
  qrlogin-server keys rotate [--activate-in 10m]  add a new signing key for access tokens
  qrlogin-server keys list
  qrlogin-server keys retire --kid K     stop trusting a key (not the one signing now)
  qrlogin-server client add --id ID --name "Display name" [--secret-stdin]   register an OAuth app
  qrlogin-server client list
  qrlogin-server client delete --id ID   remove an app and its refresh tokens
  qrlogin-server audit [--user U] [--since 24h] [--json]   print the security events recorded
  qrlogin-server store copy --from qrlogin.db --to postgres://... [--delete-missing]
                                         copy a database (users, keys, clients, sign-ins, audit log); run again to
                                         bring it up to date; --delete-missing deletes the users, clients and keys
                                         the source no longer has (otherwise it names them and copies nothing)
  qrlogin-server --version
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, "qrlogin-server", version)
		return nil
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "user":
		return userCmd(ctx, args[1:], stdin, stdout, stderr)
	case "keys":
		return keysCmd(ctx, args[1:], stdout, stderr)
	case "store":
		return storeCmd(ctx, args[1:], stdout, stderr)
	case "audit":
		return auditCmd(ctx, args[1:], stdout, stderr)
	case "client":
		return clientCmd(ctx, args[1:], stdin, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// setFromEnv applies QRLOGIN_<FLAG> variables to the flags of fs that the
// command line does not set.
func setFromEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "QRLOGIN_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !set[f.Name] {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// dbHelp describes the --db flag of every command.
const dbHelp = "SQLite database file (created if missing), or a postgres://user:pass@host/db URL that several servers share"

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = nil
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := app.DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (all interfaces by default)")
	fs.StringVar(&cfg.DB, "db", cfg.DB, dbHelp)
	fs.StringVar(&cfg.PublicURL, "public-url", "", "base URL phones use to reach this server (default http://<LAN IPv4>:<port>)")
	fs.DurationVar(&cfg.SessionTTL, "session-ttl", cfg.SessionTTL, "how long a QR code stays valid")
	fs.DurationVar(&cfg.AccessTTL, "access-ttl", cfg.AccessTTL, "access token lifetime")
	fs.DurationVar(&cfg.RefreshTTL, "refresh-ttl", cfg.RefreshTTL, "refresh token and phone sign-in lifetime")
	fs.DurationVar(&cfg.RefreshMaxAge, "refresh-max-age", cfg.RefreshMaxAge,
		"a sign-in ends this long after it was made, however often it is refreshed")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate file (PEM); serves HTTPS with --tls-key")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	proxies := (*listFlag)(&cfg.TrustedProxies)
	fs.Var(proxies, "trusted-proxies", "comma-separated proxy IPs/CIDRs whose X-Forwarded-For is trusted (default none)")
	fs.IntVar(&cfg.LimitLogin, "limit-login", cfg.LimitLogin, "password sign-ins per minute per client IP and per username (0: off)")
	fs.IntVar(&cfg.LimitCreate, "limit-create", cfg.LimitCreate, "new login sessions per minute per client IP (0: off)")
	fs.IntVar(&cfg.LimitLookup, "limit-lookup", cfg.LimitLookup, "user-code look-ups per minute per client IP (0: off)")
	fs.IntVar(&cfg.HashConcurrency, "hash-concurrency", cfg.HashConcurrency, "password hashes computed at once (about 19 MiB each)")
	fs.DurationVar(&cfg.DeviceInterval, "device-interval", cfg.DeviceInterval, "how often OAuth apps may poll the token endpoint (RFC 8628 interval)")
	fs.DurationVar(&cfg.AuditRetention, "audit-retention", cfg.AuditRetention, "how long audit log entries are kept (qrlogin-server audit shows them)")
	fs.IntVar(&cfg.MaxWaiters, "max-waiters", cfg.MaxWaiters, "waits (long-polls and event streams) held at once; more are answered 503")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "",
		"serve Prometheus metrics at /metrics on this address, e.g. 127.0.0.1:9090 (default off; never the --addr)")
	fs.BoolVar(&cfg.Demo, "demo", false, "if there are no users, create demo accounts alice and bob (never in production)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	if err := setFromEnv(fs); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	a.PrintBanner(stdout)
	log.Info("serving", "addr", a.Addr().String(), "public_url", a.URL(), "version", version)
	return a.Serve(ctx)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(requestid.NewHandler(slog.NewTextHandler(w, opts))), nil
	case "json":
		return slog.New(requestid.NewHandler(slog.NewJSONHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("log-format %q: must be text or json", format)
}

func userCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("user: which command? add, list, passwd or delete")
	}
	sub := args[0]
	switch sub {
	case "add", "list", "passwd", "delete":
	default:
		return fmt.Errorf("user: unknown command %q (add, list, passwd, delete)", sub)
	}
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := app.DefaultConfig()
	fs.StringVar(&cfg.DB, "db", cfg.DB, dbHelp)
	username := fs.String("username", "", "the user's login name")
	display := fs.String("display-name", "", "name shown to people (default: the username)")
	pwStdin := fs.Bool("password-stdin", false, "read the password from one line of standard input")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := setFromEnv(fs); err != nil {
		return err
	}
	needsName := sub != "list"
	if needsName && *username == "" {
		return fmt.Errorf("user %s: --username is required", sub)
	}
	st, err := app.OpenStore(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	accounts := app.NewAccounts(st, cfg)
	rec := cliRecorder(st, stderr)
	// The user as they were, for the audit entry of a change or deletion.
	var before store.User
	if sub == "passwd" || sub == "delete" {
		if before, err = st.UserByUsername(ctx, *username); err != nil {
			return fmt.Errorf("user %s: find user %q: %w", sub, *username, err)
		}
	}

	switch sub {
	case "add":
		pw, err := readPassword(stdin, stderr, *pwStdin)
		if err != nil {
			return err
		}
		u, err := accounts.Add(ctx, *username, *display, pw)
		if err != nil {
			return fmt.Errorf("user add: %w", err)
		}
		e := cliEntry(audit.UserAdded, "user add")
		e.UserID, e.Username = u.ID, u.Username
		rec.Record(ctx, e)
		fmt.Fprintf(stdout, "added user %s (%s), id %s\n", u.Username, u.DisplayName, u.ID)
	case "list":
		users, err := st.Users(ctx)
		if err != nil {
			return fmt.Errorf("user list: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tDISPLAY NAME\tID\tCREATED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Username, u.DisplayName, u.ID, u.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	case "passwd":
		pw, err := readPassword(stdin, stderr, *pwStdin)
		if err != nil {
			return err
		}
		if err := accounts.SetPassword(ctx, *username, pw); err != nil {
			return fmt.Errorf("user passwd: %w", err)
		}
		e := cliEntry(audit.PasswordChanged, "user passwd")
		e.UserID, e.Username = before.ID, before.Username
		rec.Record(ctx, e)
		fmt.Fprintf(stdout, "password of %s changed; their sign-ins were revoked\n", *username)
	case "delete":
		if err := accounts.Delete(ctx, *username); err != nil {
			return fmt.Errorf("user delete: %w", err)
		}
		e := cliEntry(audit.UserDeleted, "user delete")
		e.UserID, e.Username = before.ID, before.Username
		rec.Record(ctx, e)
		fmt.Fprintf(stdout, "deleted user %s\n", *username)
	}
	return nil
}

// readPassword reads one line from stdin (fromStdin), or prompts twice
// without echo on the terminal.
func readPassword(stdin io.Reader, stderr io.Writer, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", errors.New("--password-stdin: no password on standard input")
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if err := account.ValidatePassword(line); err != nil {
			return "", err
		}
		return line, nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("standard input is not a terminal: use --password-stdin")
	}
	fmt.Fprint(stderr, "Password: ")
	p1, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(stderr, "Repeat password: ")
	p2, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if string(p1) != string(p2) {
		return "", errors.New("the passwords do not match")
	}
	if err := account.ValidatePassword(string(p1)); err != nil {
		return "", err
	}
	return string(p1), nil
}
