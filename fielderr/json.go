package fielderr

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/heraldpush/herald/valid"
)

// TypeMessage explains a JSON value of the wrong type in the terms of the JSON
// a user wrote: "must be a whole number, not a string", "must be a whole
// number within range, not 1e99", "must be an RFC 3339 time string, not a
// number". Request bodies (api) and message content (protocol.ParseContent)
// both explain encoding/json's type errors with it.
func TypeMessage(e *json.UnmarshalTypeError) string {
	if n, ok := strings.CutPrefix(e.Value, "number "); ok && isInt(e.Type) {
		return fmt.Sprintf("must be a whole number within range, not %s", n)
	}
	got := e.Value
	switch {
	case got == "array" || got == "object":
		got = "an " + got
	case got == "bool":
		got = "a boolean"
	case got == "string":
		got = "a string"
	case strings.HasPrefix(got, "number"):
		got = "a number"
	}
	return fmt.Sprintf("must be %s, not %s", jsonType(e.Type), got)
}

// UnknownField returns the member named by encoding/json's error for a member
// the target does not have (Decoder.DisallowUnknownFields).
func UnknownField(err error) (string, bool) {
	rest, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return "", false
	}
	if name, err := strconv.Unquote(rest); err == nil {
		return name, true
	}
	return strings.Trim(rest, `"`), true
}

// jsonType names a Go type the way a JSON user would.
func jsonType(t reflect.Type) string {
	if t == valid.TimeType {
		return "an RFC 3339 time string"
	}
	switch {
	case isInt(t):
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}
