package main

import (
	"context"
	"fmt"
	"io"

	"github.com/heraldpush/herald/migrations"
)

const migrateUsage = `usage: herald migrate [flags] up|down|version

Moves Herald's schema by hand (herald serve applies pending migrations at start):
  up       apply every pending migration (nothing to do is not an error)
  down     revert the newest applied migration, only that one
  version  print the schema version (0: none applied), and whether a failed
           migration left it dirty`

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("herald migrate", migrateUsage)
	db, args, help, err := parseWithDatabase(cmd, args, getenv, stdout)
	if help || err != nil {
		return err
	}
	if len(args) == 0 {
		return cmd.errorf("no subcommand given (up, down or version)")
	}
	if err := cmd.noArguments(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "up":
		return migrations.Up(ctx, db.URL, db.ConnectTimeout)
	case "down":
		return migrations.Down(ctx, db.URL, db.ConnectTimeout)
	case "version":
		v, dirty, err := migrations.Version(ctx, db.URL, db.ConnectTimeout)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d", v)
		if dirty {
			fmt.Fprint(stdout, " (dirty: a migration failed half-way; fix the schema by hand)")
		}
		fmt.Fprintln(stdout)
		return nil
	}
	return cmd.errorf("unknown subcommand %q (up, down or version)", args[0])
}
