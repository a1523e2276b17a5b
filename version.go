package main

import (
	"fmt"
	"io"
	"regexp"
	"runtime"
	"runtime/debug"
	"time"
)

// Set by `make build` (and `make run`) with -ldflags "-X main.version=...
// -X main.commit=... -X main.buildDate=...": `git describe --tags --always
// --dirty`, the full commit hash and the UTC build time.
var (
	version   = ""
	commit    = ""
	buildDate = ""
)

// build says which Herald this is.
type build struct {
	Version  string
	Commit   string // the full hash, "" when unknown
	Modified bool   // built from a work tree with uncommitted changes
	Date     string // when it was built (make build), else ""
	// CommitTime is the commit's time, which a binary built without make
	// carries instead of a build date.
	CommitTime string
}

// pseudoVersion matches the end of a Go pseudo-version, which `go install
// module@commit` binaries carry without any VCS settings: the commit's time
// (yyyymmddhhmmss) and the first 12 digits of its hash.
var pseudoVersion = regexp.MustCompile(`[-.](\d{14})-([0-9a-f]{12})(\+incompatible)?$`)

// currentBuild reads what `make build` set and, for what it did not (a plain
// `go build` or `go install`), the build information the go command records:
// the module version, and vcs.revision, vcs.time and vcs.modified when built
// in a git work tree.
func currentBuild() build {
	info, _ := debug.ReadBuildInfo()
	return describe(info)
}

// describe is the build with what make set, completed from info (nil if the
// binary has none).
func describe(info *debug.BuildInfo) build {
	b := build{Version: version, Commit: commit, Date: buildDate}
	if info != nil {
		b.fill(info)
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

func (b *build) fill(info *debug.BuildInfo) {
	if b.Version == "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if b.Commit == "" {
				b.Commit = s.Value
			}
		case "vcs.time":
			b.CommitTime = s.Value
		case "vcs.modified":
			b.Modified = b.Modified || s.Value == "true"
		}
	}
	if m := pseudoVersion.FindStringSubmatch(info.Main.Version); m != nil && b.Commit == "" {
		b.Commit = m[2]
		if t, err := time.Parse("20060102150405", m[1]); err == nil {
			b.CommitTime = t.UTC().Format(time.RFC3339)
		}
	}
}

// write prints the build as `herald version` does.
func (b build) write(w io.Writer) {
	fmt.Fprintln(w, "herald", b.Version)
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	}
	if b.Modified {
		commit += " (with uncommitted changes)"
	}
	fmt.Fprintln(w, "commit:", commit)
	switch {
	case b.Date != "":
		fmt.Fprintln(w, "built:", b.Date)
	case b.CommitTime != "":
		fmt.Fprintln(w, "committed:", b.CommitTime, "(build date unknown: not built by make build)")
	default:
		fmt.Fprintln(w, "built: unknown")
	}
	fmt.Fprintln(w, "go:", runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
}

const versionUsage = `usage: herald version

Prints Herald's version, the commit it was built from and when it was built.`

func printVersion(args []string, stdout io.Writer) error {
	cmd := newCommand("herald version", versionUsage)
	args, help, err := cmd.parse(args, stdout)
	if help || err != nil {
		return err
	}
	if err := cmd.noArguments(args); err != nil {
		return err
	}
	currentBuild().write(stdout)
	return nil
}
