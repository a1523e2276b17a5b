package main

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/heraldpush/herald"

// libraries are the short names the code map gives the libraries Herald uses.
var libraries = map[string]string{
	"pgx":        "github.com/jackc/pgx",
	"puddle":     "github.com/jackc/puddle",
	"uuid":       "github.com/google/uuid",
	"paho":       "github.com/eclipse/paho.mqtt.golang",
	"chi":        "github.com/go-chi/chi",
	"prometheus": "github.com/prometheus/client_golang",
	"x/time":     "golang.org/x/time",
	"x/net":      "golang.org/x/net",
	"migrate":    "github.com/golang-migrate/migrate",
	"cron":       "github.com/robfig/cron",
}

// goPackage is what `go list` says of one package of the module (tests left out).
type goPackage struct {
	imports, deps []string
}

// goList lists the module's packages, by path relative to the module ("." for main).
func goList(t *testing.T) map[string]goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}`, "./...").Output()
	require.NoError(t, err, "go list")
	pkgs := map[string]goPackage{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		require.Len(t, parts, 3, line)
		pkgs[relative(parts[0])] = goPackage{imports: strings.Fields(parts[1]), deps: strings.Fields(parts[2])}
	}
	return pkgs
}

func relative(path string) string {
	if path == module {
		return "."
	}
	return strings.TrimPrefix(path, module+"/")
}

func isStd(path string) bool {
	return !strings.Contains(strings.Split(path, "/")[0], ".")
}

func isHerald(path string) bool {
	return path == module || strings.HasPrefix(path, module+"/")
}

// rule is one row of the code map: the Herald packages and the libraries a
// package may import (nil: any).
type rule struct {
	herald, libs []string
}

// readCodeMap reads the code map table of the README.
func readCodeMap(t *testing.T) map[string]rule {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, table, ok := strings.Cut(string(readme), "<!-- code map: TestCodeMap reads this table -->\n")
	require.True(t, ok, "the README has no code map")
	list := func(cell string) []string {
		switch cell = strings.TrimSpace(cell); cell {
		case "any":
			return nil
		case "none":
			return []string{}
		}
		var out []string
		for _, s := range strings.Split(cell, ",") {
			out = append(out, strings.TrimSpace(s))
		}
		return out
	}
	rules := map[string]rule{}
	for i, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		if i < 2 { // the header and its rule
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		require.Len(t, cells, 4, line)
		name := strings.Fields(strings.Trim(strings.TrimSpace(cells[0]), "`"))[0]
		name = strings.Trim(name, "`")
		rules[name] = rule{herald: list(cells[2]), libs: list(cells[3])}
		for _, lib := range rules[name].libs {
			require.Contains(t, libraries, lib, "the code map names a library this test does not know")
		}
	}
	return rules
}

// TestCodeMap holds every package to its row of the README's code map (its
// direct imports), and checks the import rules that matter most over every
// package a package depends on, directly or not.
func TestCodeMap(t *testing.T) {
	t.Parallel()
	pkgs := goList(t)
	rules := readCodeMap(t)
	for name := range pkgs {
		require.Contains(t, rules, name, "package %s is missing from the README's code map", name)
	}
	for name := range rules {
		require.Contains(t, pkgs, name, "the README's code map names %s, which does not exist", name)
	}
	for name, p := range pkgs {
		r := rules[name]
		for _, imp := range p.imports {
			switch {
			case isStd(imp):
			case isHerald(imp):
				if r.herald != nil {
					require.Contains(t, r.herald, relative(imp), "%s imports %s, which the code map does not allow", name, relative(imp))
				}
			default:
				if r.libs != nil {
					require.True(t, slices.ContainsFunc(r.libs, func(lib string) bool { return strings.HasPrefix(imp, libraries[lib]) }),
						"%s imports %s, which the code map does not allow", name, imp)
				}
			}
		}
	}

	deps := func(name string) []string { return pkgs[name].deps }
	// The client contract links nothing of the server into a game: the
	// standard library, and of Herald only the checks it shares.
	for _, dep := range deps("protocol") {
		require.True(t, isStd(dep) || slices.Contains([]string{module + "/fielderr", module + "/valid"}, dep),
			"protocol depends on %s", dep)
	}
	for _, dep := range deps("client") {
		require.True(t, !isHerald(dep) || slices.Contains([]string{module + "/protocol", module + "/fielderr", module + "/valid"}, dep),
			"the SDK depends on %s", dep)
		require.False(t, strings.HasPrefix(dep, libraries["pgx"]), "the SDK depends on %s", dep)
	}
	// Only main reaches the HTTP layer.
	for name := range pkgs {
		if name != "." {
			require.NotContains(t, deps(name), module+"/api", "%s depends on api", name)
		}
	}
	// Campaigns record sends; how they reach the broker is not their concern,
	// nor is the campaign the fan-out's.
	for _, name := range []string{"campaigns", "dispatch"} {
		for _, dep := range deps(name) {
			require.NotEqual(t, module+"/mqttout", dep, "%s depends on mqttout", name)
			require.False(t, strings.HasPrefix(dep, libraries["paho"]), "%s depends on %s", name, dep)
		}
	}
	require.NotContains(t, deps("dispatch"), module+"/campaigns")
	for _, imp := range pkgs["api"].imports {
		require.False(t, strings.HasPrefix(imp, libraries["pgx"]), "api imports %s", imp)
	}
}
