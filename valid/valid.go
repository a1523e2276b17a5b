// Package valid holds the checks that every piece of free-form input shares, so
// that each rule is written once: display names (games, segments, campaigns, API
// keys), long texts (localized message content) and timestamps. Ids, which end
// up in MQTT topics, have their own alphabet (protocol.CheckID).
//
// The rules keep out what Postgres cannot store (NUL), what JSON decoding would
// silently repair (invalid UTF-8), what rewrites a terminal when a name is
// printed (control characters such as ESC, BEL and CR, and the bidirectional
// overrides that reorder the rest of a line), and times that no client, database
// column or JSON encoder handles alike.
package valid

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest display name, in characters (runes).
const MaxNameLen = 200

// Errors returned by Name and Text; callers add them to a fielderr.List under
// the field's name.
var (
	ErrEmpty       = errors.New("is required")
	ErrBlank       = errors.New("must not be blank")
	ErrNoText      = errors.New("must not be empty")
	ErrUTF8        = errors.New("must be valid UTF-8")
	ErrNameControl = errors.New("must not contain control characters (such as NUL, tab, line breaks or ESC) or bidirectional overrides")
	ErrTextControl = errors.New("must not contain control characters other than tab and line breaks")
)

// Name checks a display name: 1 to MaxNameLen characters of valid UTF-8, not
// only spaces, with no control character at all (C0, DEL and C1, so no NUL,
// tab, line break, ESC or BEL) and no bidirectional override or isolate, nor a
// Unicode line or paragraph separator. Names are printed on one line, in a
// terminal by `herald apikey list` among others, so nothing in them may move
// the cursor or reorder what follows.
func Name(s string) error {
	switch {
	case s == "":
		return ErrEmpty
	case !utf8.ValidString(s):
		return ErrUTF8
	case utf8.RuneCountInString(s) > MaxNameLen:
		return fmt.Errorf("must be at most %d characters", MaxNameLen)
	case strings.ContainsFunc(s, nameForbidden):
		return ErrNameControl
	case strings.TrimSpace(s) == "":
		return ErrBlank
	}
	return nil
}

// Text checks a long text, such as a notice body, of at most maxLen characters:
// valid UTF-8, not only spaces, and free of control characters except tab, line
// feed and carriage return, which multi-line texts need (a CR comes with the
// CRLF line ends of texts written on Windows).
func Text(s string, maxLen int) error {
	switch {
	case !utf8.ValidString(s):
		return ErrUTF8
	case strings.TrimSpace(s) == "":
		return ErrNoText
	case utf8.RuneCountInString(s) > maxLen:
		return fmt.Errorf("must be at most %d characters", maxLen)
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' }):
		return ErrTextControl
	}
	return nil
}

// nameForbidden reports the runes a one-line name may not hold.
func nameForbidden(r rune) bool {
	switch {
	case unicode.IsControl(r): // C0, DEL, C1
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}
