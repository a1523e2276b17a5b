package main

import (
	"context"
	"errors"
	"flag"
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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/migrations"
	"github.com/heraldpush/herald/valid"
)

const apikeyUsage = `usage: herald apikey create --name NAME --role admin|operator|marketing|service [--games g1,g2] [--expires-in 720h]
       herald apikey list
       herald apikey revoke ID
(each also takes --database-url)`

// cliTimeout bounds the database work of one command.
const cliTimeout = 30 * time.Second

// errNoSchema is what list and revoke say on a database never migrated.
var errNoSchema = errors.New("the database has no Herald schema (or an old one): run herald migrate up")

// apikey manages API keys from the command line: this is how the first admin
// key comes to exist. Changes are audited as made by "cli". Only create applies
// pending migrations, so that the first key can be made on a fresh database;
// list and revoke leave the schema alone and ask for `herald migrate up`
// when it is missing.
func apikey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, apikeyUsage)
		return errors.New("apikey: no subcommand")
	}
	switch args[0] {
	case "create", "list", "revoke":
	default:
		fmt.Fprintln(stderr, apikeyUsage)
		return fmt.Errorf("apikey: unknown subcommand %q", args[0])
	}
	fs := flag.NewFlagSet("herald apikey "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dbURL, name, role, gameList string
	var expiresIn time.Duration
	bindDatabase(fs, getenv, &dbURL)
	if args[0] == "create" {
		fs.StringVar(&name, "name", "", "who or what the key is for")
		fs.StringVar(&role, "role", "", "admin, operator, marketing or service")
		fs.StringVar(&gameList, "games", "", "comma-separated games the key may touch (default: every game)")
		fs.DurationVar(&expiresIn, "expires-in", 0, "lifetime, e.g. 720h (default: no expiry)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if args[0] == "create" {
		if err := migrations.Up(dbURL); err != nil {
			return fmt.Errorf("apply migrations: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()
	keys := auth.NewStore(pool)
	ctx = audit.WithActor(ctx, audit.Actor{Name: "cli"})

	switch args[0] {
	case "create":
		in := auth.Input{Name: name, Role: auth.Role(role)}
		if gameList != "" {
			in.Games = strings.Split(gameList, ",")
		}
		if expiresIn > 0 {
			in.ExpiresAt = &valid.Time{Time: time.Now().Add(expiresIn)}
		}
		key, secret, err := keys.Create(ctx, in)
		if err != nil {
			return fmt.Errorf("create key: %w", err)
		}
		fmt.Fprintf(stdout, "created API key %s (%s, role %s); it is shown only now:\n%s\n", key.ID, printable(key.Name), key.Role, secret)
		return nil
	case "list":
		list, err := allKeys(ctx, keys)
		if err != nil {
			return schemaHint(err)
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
	case "revoke":
		id, err := uuid.Parse(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("revoke: %q is not a key id", fs.Arg(0))
		}
		key, err := keys.Revoke(ctx, id, nil)
		if err != nil {
			return fmt.Errorf("revoke key %s: %w", id, schemaHint(err))
		}
		fmt.Fprintf(stdout, "revoked API key %s (%s)\n", key.ID, printable(key.Name))
	}
	return nil
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
