package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/heraldpush/herald/fielderr"
)

// maxJSONBody is the largest JSON request body accepted; member uploads, which
// stream, have their own limit.
const maxJSONBody = 1 << 20

// decode reads one JSON object from the request body into dst, refusing unknown
// fields, trailing data and bodies over maxJSONBody, each with a problem that
// names the field. The Content-Type is not checked: the body must be JSON
// whatever it says, so that `curl -d` works as people expect.
func decode(w http.ResponseWriter, r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("the body must hold exactly one JSON object", fielderr.List{{Field: "body", Message: "unexpected data after the JSON object"}})
	}
	return nil
}

// decodeError explains a json.Decoder failure in terms of the request's fields.
func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	var fields fielderr.List
	switch {
	case errors.As(err, &tooBig):
		return err
	case errors.As(err, &fields):
		return err // a field's own UnmarshalJSON (rules) already named it
	case errors.Is(err, io.EOF):
		return badRequest("the body is empty; send a JSON object", fielderr.List{{Field: "body", Message: "empty"}})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("the body is truncated JSON", fielderr.List{{Field: "body", Message: "unexpected end of JSON"}})
	case errors.As(err, &syntax):
		return badRequest("the body is not valid JSON", fielderr.List{{Field: "body", Message: fmt.Sprintf("%v at byte %d", syntax, syntax.Offset)}})
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return badRequest("a field has the wrong type", fielderr.List{{Field: field, Message: "must be " + jsonType(typeErr.Type) + ", not " + typeErr.Value}})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest("the body has a field this endpoint does not know", fielderr.List{{Field: name, Message: "unknown field"}})
	}
	return badRequest("the body could not be read as JSON", fielderr.List{{Field: "body", Message: err.Error()}})
}

// jsonType names a Go type the way a JSON user would.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}
