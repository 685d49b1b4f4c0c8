package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/oauth"
	"github.com/qrlogin/qrlogin/server/store"
)

// clientCmd registers, lists and removes OAuth clients: the apps that may
// sign their users in through the device authorization grant.
func clientCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("client: which command? add, list or delete")
	}
	sub := args[0]
	switch sub {
	case "add", "list", "delete":
	default:
		return fmt.Errorf("client: unknown command %q (add, list, delete)", sub)
	}
	fs := flag.NewFlagSet("client "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := app.DefaultConfig()
	fs.StringVar(&cfg.DB, "db", cfg.DB, dbHelp)
	id := fs.String("id", "", "the client_id the app sends")
	name := fs.String("name", "", "the app's name, shown on the phone's confirm screen")
	secretStdin := fs.Bool("secret-stdin", false,
		fmt.Sprintf("read a client secret (at least %d characters, generated) from one line of standard input: a confidential client", oauth.MinSecretLen))
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("client %s: unexpected arguments %q", sub, fs.Args())
	}
	if err := setFromEnv(fs); err != nil {
		return err
	}
	if sub != "list" && *id == "" {
		return fmt.Errorf("client %s: --id is required", sub)
	}
	if sub == "add" && *name == "" {
		return errors.New("client add: --name is required (it is shown on the phone)")
	}
	// Checked before the store is opened, so a typo creates no database.
	var c store.Client
	if sub == "add" {
		secret := ""
		if *secretStdin {
			var err error
			if secret, err = readSecret(stdin); err != nil {
				return err
			}
		}
		var err error
		if c, err = oauth.NewClient(*id, *name, secret, time.Now()); err != nil {
			return fmt.Errorf("client add: %w", err)
		}
	}
	st, err := app.OpenStore(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	rec := cliRecorder(st, stderr)

	switch sub {
	case "add":
		if err := st.CreateClient(ctx, c); errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("client add: a client with id %q exists", c.ID)
		} else if err != nil {
			return fmt.Errorf("client add: %w", err)
		}
		kind := "public (no secret: a desktop or command-line app)"
		if !c.Public() {
			kind = "confidential (client_secret_basic or client_secret_post)"
		}
		e := cliEntry(audit.ClientAdded, "client add")
		e.Detail["client_id"], e.Detail["name"], e.Detail["type"] = c.ID, c.Name, clientType(c)
		rec.Record(ctx, e)
		fmt.Fprintf(stdout, "added client %s (%s), %s\n", c.ID, c.Name, kind)
	case "list":
		clients, err := st.Clients(ctx)
		if err != nil {
			return fmt.Errorf("client list: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tTYPE\tCREATED")
		for _, c := range clients {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, c.Name, clientType(c), c.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	case "delete":
		if err := st.DeleteClient(ctx, *id); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("client delete: no client with id %q", *id)
		} else if err != nil {
			return fmt.Errorf("client delete: %w", err)
		}
		e := cliEntry(audit.ClientDeleted, "client delete")
		e.Detail["client_id"] = *id
		rec.Record(ctx, e)
		fmt.Fprintf(stdout, "deleted client %s and its refresh tokens\n", *id)
	}
	return nil
}

// clientType is "public" or "confidential".
func clientType(c store.Client) string {
	if c.Public() {
		return "public"
	}
	return "confidential"
}

// readSecret reads a client secret from one line of stdin.
func readSecret(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("--secret-stdin: no secret on standard input")
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("--secret-stdin: the secret is empty")
	}
	return line, nil
}
