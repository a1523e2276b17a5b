package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Every command and subcommand follows the same conventions: -h or --help
// prints its usage on stdout and exits 0; a mistake on the command line (an
// unknown flag, a bad value, a missing or extra argument) prints one line
// naming it and a line saying where the usage is, on stderr, and exits 2;
// any other failure prints one line and exits 1.

// usageError is a mistake on the command line of command (e.g. "herald
// apikey create").
type usageError struct {
	command string
	msg     string
}

func (e *usageError) Error() string { return e.command + ": " + e.msg }

// exitCode reports err on stderr as the conventions above say and returns the
// process's exit status.
func exitCode(err error, stderr io.Writer) int {
	var usage *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s\nrun '%s -h' for usage\n", usage, usage.command)
		return 2
	default:
		fmt.Fprintln(stderr, "herald:", err)
		return 1
	}
}

// command is one command's flags and usage text.
type command struct {
	name  string // as typed: "herald apikey create"
	usage string // usage lines and what the command does, before the flags
	flags *flag.FlagSet
}

func newCommand(name, usage string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by exitCode
	fs.Usage = func() {}
	return &command{name: name, usage: usage, flags: fs}
}

// parse parses args, flags and arguments in any order (a "--" ends the
// flags), and returns the arguments. help is true when -h or --help was given
// and the usage printed on stdout: the command then does nothing else.
func (c *command) parse(args []string, stdout io.Writer) (positional []string, help bool, err error) {
	for {
		err := c.flags.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.printUsage(stdout)
			return nil, true, nil
		}
		if err != nil {
			return nil, false, c.errorf("%v", err)
		}
		rest := c.flags.Args()
		if len(rest) == 0 {
			return positional, false, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), false, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// errorf returns a usage error of the command.
func (c *command) errorf(format string, args ...any) error {
	return &usageError{command: c.name, msg: fmt.Sprintf(format, args...)}
}

// noArguments refuses arguments a command does not take.
func (c *command) noArguments(args []string) error {
	if len(args) > 0 {
		return c.errorf("unexpected argument %q", args[0])
	}
	return nil
}

func (c *command) printUsage(w io.Writer) {
	fmt.Fprint(w, strings.TrimRight(c.usage, "\n")+"\n")
	hasFlags := false
	c.flags.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, "\nflags:\n")
		c.flags.SetOutput(w)
		c.flags.PrintDefaults()
		c.flags.SetOutput(io.Discard)
	}
}
