// Package fielderr collects what is wrong with a user's input, field by field.
// Domain packages (games, segments, campaigns, protocol) validate with it and
// return its List as their error; the API renders that list as the errors[] of
// an RFC 9457 problem, so every refusal names the offending field, e.g.
// "rule.and[1].in[0]". It also explains encoding/json's errors in the terms
// of the JSON a user wrote (TypeMessage, UnknownField), once for everyone.
package fielderr

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one problem with one field. Field is a path into the request, using
// dots for object members and [i] for array elements.
type Error struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// List is a set of field errors. A nil or empty List is no error; use Err to
// turn a List into an error value.
type List []Error

// Add records a problem with field, formatting the message like fmt.Sprintf.
func (l *List) Add(field, format string, args ...any) {
	*l = append(*l, Error{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns the list as an error, or nil when nothing was recorded.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Error joins the field errors into one line.
func (l List) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Field + ": " + e.Message
	}
	return strings.Join(parts, "; ")
}

// New returns an error holding a single field error.
func New(field, format string, args ...any) error {
	var l List
	l.Add(field, format, args...)
	return l
}

// As returns the field errors inside err, if err is or wraps a List.
func As(err error) (List, bool) {
	var l List
	if errors.As(err, &l) {
		return l, true
	}
	return nil, false
}

// Join returns the path of a member of the object at path: Join("rule", "in")
// is "rule.in"; Join("", "name") is "name".
func Join(path, member string) string {
	if path == "" {
		return member
	}
	return path + "." + member
}

// Index returns the path of element i of the array at path: "rule.in[2]".
func Index(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}
