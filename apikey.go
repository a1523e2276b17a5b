package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/migrations"
	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/valid"
)

const apikeyUsage = `usage: herald apikey create|list|revoke [flags]

Manages API keys from the command line: this is how the first admin key comes
to exist. Changes are audited as made by "cli".
  create  create a key and print it, the only time it is shown; applies pending
          migrations first, so that the first key can be made on a fresh database
  list    list the keys (never their secrets)
  revoke  revoke a key by its id

'herald apikey SUBCOMMAND -h' shows its flags.`

const apikeyCreateUsage = `usage: herald apikey create --name NAME --role admin|operator|marketing|service [--games g1,g2] [--expires-in 720h] [flags]

Creates an API key and prints it as the last line of the output: it is shown
only now, Herald keeps only its hash. Applies pending migrations first.`

const apikeyListUsage = `usage: herald apikey list [flags]

Lists every API key: id, name, role, games, creation, expiry and revocation
times. Leaves the schema alone: on a database without it, run herald migrate up.`

const apikeyRevokeUsage = `usage: herald apikey revoke [flags] ID

Revokes the API key with that id (as herald apikey list shows it) at once, on
every replica.`

// cliTimeout bounds the database work of one command, once connected.
const cliTimeout = 30 * time.Second

// errNoSchema is what list and revoke say on a database never migrated.
var errNoSchema = errors.New("the database has no Herald schema (or an old one): run herald migrate up")

// apikey manages API keys from the command line. Only create applies pending
// migrations, so that the first key can be made on a fresh database; list and
// revoke leave the schema alone and ask for `herald migrate up` when it is
// missing.
func apikey(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	top := newCommand("herald apikey", apikeyUsage)
	if len(args) == 0 {
		return top.errorf("no subcommand given (create, list or revoke)")
	}
	switch args[0] {
	case "create":
		return apikeyCreate(ctx, args[1:], getenv, stdout)
	case "list":
		return apikeyList(ctx, args[1:], getenv, stdout)
	case "revoke":
		return apikeyRevoke(ctx, args[1:], getenv, stdout)
	case "-h", "-help", "--help", "help":
		top.printUsage(stdout)
		return nil
	}
	return top.errorf("unknown subcommand %q (create, list or revoke)", args[0])
}

func apikeyCreate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("herald apikey create", apikeyCreateUsage)
	var name, role, gameList string
	var expiresIn time.Duration
	cmd.flags.StringVar(&name, "name", "", "who or what the key is for (required)")
	cmd.flags.StringVar(&role, "role", "", "admin, operator, marketing or service (required)")
	cmd.flags.StringVar(&gameList, "games", "", "comma-separated games the key may touch (default: every game)")
	cmd.flags.DurationVar(&expiresIn, "expires-in", 0, "lifetime, e.g. 720h (default: no expiry)")
	db, rest, help, err := parseWithDatabase(cmd, args, getenv, stdout)
	if help || err != nil {
		return err
	}
	if err := cmd.noArguments(rest); err != nil {
		return err
	}
	if name == "" || role == "" {
		return cmd.errorf("--name and --role are required")
	}
	if err := migrations.Up(ctx, db.URL, db.ConnectTimeout); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return withKeys(ctx, db, func(ctx context.Context, keys *auth.Store) error {
		in := auth.Input{Name: name, Role: auth.Role(role)}
		if gameList != "" {
			in.Games = strings.Split(gameList, ",")
		}
		if expiresIn > 0 {
			in.ExpiresAt = &valid.Time{Time: time.Now().Add(expiresIn)}
		}
		key, secret, err := keys.Create(ctx, in)
		if err != nil {
			return fmt.Errorf("create key: %w", postgres.ExplainConnect(err))
		}
		fmt.Fprintf(stdout, "created API key %s (%s, role %s); it is shown only now:\n%s\n", key.ID, printable(key.Name), key.Role, secret)
		return nil
	})
}

func apikeyList(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("herald apikey list", apikeyListUsage)
	db, rest, help, err := parseWithDatabase(cmd, args, getenv, stdout)
	if help || err != nil {
		return err
	}
	if err := cmd.noArguments(rest); err != nil {
		return err
	}
	return withKeys(ctx, db, func(ctx context.Context, keys *auth.Store) error {
		list, err := allKeys(ctx, keys)
		if err != nil {
			return schemaHint(postgres.ExplainConnect(err))
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tROLE\tGAMES\tCREATED\tEXPIRES\tREVOKED")
		for _, k := range list {
			games := "all"
			if k.Games != nil {
				games = strings.Join(k.Games, ",")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, printable(k.Name), k.Role, printable(games),
				k.CreatedAt.UTC().Format(time.RFC3339), orDash(k.ExpiresAt), orDash(k.RevokedAt))
		}
		return w.Flush()
	})
}

func apikeyRevoke(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("herald apikey revoke", apikeyRevokeUsage)
	db, rest, help, err := parseWithDatabase(cmd, args, getenv, stdout)
	if help || err != nil {
		return err
	}
	if len(rest) == 0 {
		return cmd.errorf("the id of the key to revoke is missing")
	}
	if err := cmd.noArguments(rest[1:]); err != nil {
		return err
	}
	id, err := uuid.Parse(rest[0])
	if err != nil {
		return cmd.errorf("%q is not a key id (herald apikey list shows them)", rest[0])
	}
	return withKeys(ctx, db, func(ctx context.Context, keys *auth.Store) error {
		key, err := keys.Revoke(ctx, id, nil)
		if err != nil {
			return fmt.Errorf("revoke key %s: %w", id, schemaHint(postgres.ExplainConnect(err)))
		}
		fmt.Fprintf(stdout, "revoked API key %s (%s)\n", key.ID, printable(key.Name))
		return nil
	})
}

// withKeys runs do with the key store of the database, its work bounded by
// connecting and cliTimeout, and audited as made by "cli".
func withKeys(ctx context.Context, db database, do func(context.Context, *auth.Store) error) error {
	ctx, cancel := context.WithTimeout(ctx, db.ConnectTimeout+cliTimeout)
	defer cancel()
	pool, err := postgres.Open(ctx, db.URL, postgres.Options{ConnectTimeout: db.ConnectTimeout})
	if err != nil {
		return err
	}
	defer pool.Close()
	return do(audit.WithActor(ctx, audit.Actor{Name: "cli"}), auth.NewStore(pool))
}

// schemaHint turns the error of a query on a database without Herald's tables
// into errNoSchema.
func schemaHint(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return errNoSchema
	}
	return err
}

// printable shows a stored text on one terminal line as it is, or quoted with
// escapes when it holds anything that is not plainly printable (names are
// checked on the way in; this also covers rows written before that).
func printable(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) || !utf8.ValidString(s) {
		return strconv.QuoteToGraphic(s)
	}
	return s
}

func allKeys(ctx context.Context, keys *auth.Store) ([]auth.Key, error) {
	var all []auth.Key
	after := uuid.Nil
	for {
		page, more, err := keys.List(ctx, after, 500, nil)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if !more {
			return all, nil
		}
		after = page[len(page)-1].ID
	}
}

func orDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
