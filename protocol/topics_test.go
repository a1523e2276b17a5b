package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckID(t *testing.T) {
	for _, ok := range []string{"g1", "A-Z.a_z~0:9@x=y", strings.Repeat("x", 128), "-", "30-39"} {
		if err := CheckID(ok); err != nil {
			t.Errorf("CheckID(%q) = %v, want nil", ok, err)
		}
	}
	for bad, want := range map[string]error{
		"":                       ErrEmptyID,
		strings.Repeat("x", 129): ErrLongID,
		"a/b":                    ErrBadIDChar,
		"a+":                     ErrBadIDChar,
		"#":                      ErrBadIDChar,
		"$SYS":                   ErrBadIDChar,
		"a b":                    ErrBadIDChar,
		"nul\x00":                ErrBadIDChar,
		"é":                      ErrBadIDChar,
	} {
		if err := CheckID(bad); !errors.Is(err, want) {
			t.Errorf("CheckID(%q) = %v, want %v", bad, err, want)
		}
	}
}

func TestTopics(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Base("herald", "g1", ScopeAll), "herald/g1/all"},
		{Base("herald", "g1", ScopeServer, "s1"), "herald/g1/server/s1"},
		{Base("acme/herald", "g1", ScopeTag, "level", "30-39"), "acme/herald/g1/tag/level/30-39"},
		{Message(Base("herald", "g1", ScopePlayer, "p1"), "kickout", "k1"), "herald/g1/player/p1/kickout/k1"},
		{Sentinel("acme/herald"), "acme/herald/$herald/sentinel"},
		{Probe("herald", "r1"), "herald/$herald/probe/r1"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
