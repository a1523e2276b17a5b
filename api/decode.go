package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/valid"
)

// maxJSONBody is the largest JSON request body accepted; member uploads, which
// stream, have their own limit, and kick-outs (maxKickoutBody).
const maxJSONBody = 1 << 20

// decode reads one JSON object from the request body into dst, refusing unknown
// fields, trailing data, invalid UTF-8 and bodies over maxJSONBody, each with a
// problem that names the field. The Content-Type is not checked: the body must
// be JSON whatever it says, so that `curl -d` works as people expect.
func decode(w http.ResponseWriter, r *http.Request, dst any) error {
	return decodeUpTo(w, r, dst, maxJSONBody)
}

// decodeUpTo is decode for a body of at most limit bytes.
func decodeUpTo(w http.ResponseWriter, r *http.Request, dst any, limit int64) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return err
	case err != nil:
		return badRequest("the body could not be read", fielderr.List{{Field: "body", Message: err.Error()}})
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("the body must hold exactly one JSON object", fielderr.List{{Field: "body", Message: "unexpected data after the JSON object"}})
	}
	if !utf8.Valid(body) {
		// The decoder replaced the invalid bytes with U+FFFD: refuse rather than
		// store a text the caller did not send.
		return fielderr.New(invalidUTF8Field(body), "%v", valid.ErrUTF8)
	}
	return nil
}

// invalidUTF8Field returns the path ("name", "content.text.en", "rule.in[2]")
// of the first string in the well-formed JSON body that holds invalid UTF-8, or
// "body". Outside strings, invalid bytes are a syntax error, caught before.
func invalidUTF8Field(body []byte) string {
	bad := int64(len(body))
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && size == 1 {
			bad = int64(i)
			break
		}
		i += size
	}
	type level struct {
		array   bool
		key     string // in an object: the member being read
		wantKey bool
		index   int // in an array: the element being read
	}
	var stack []level
	path := func() string {
		p := ""
		for _, l := range stack {
			if l.array {
				p = fielderr.Index(p, l.index)
			} else {
				p = fielderr.Join(p, l.key)
			}
		}
		if p == "" {
			return "body"
		}
		return p
	}
	valueDone := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].wantKey = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return "body"
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, level{wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, level{array: true})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
			continue
		}
		if s, ok := tok.(string); ok && len(stack) > 0 && !stack[len(stack)-1].array && stack[len(stack)-1].wantKey {
			stack[len(stack)-1].key, stack[len(stack)-1].wantKey = s, false // a member name: the path names it
		} else if dec.InputOffset() <= bad {
			valueDone()
			continue
		}
		if dec.InputOffset() > bad {
			return path()
		}
	}
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
	case errors.As(err, &typeErr) && typeErr.Type == valid.TimeType && typeErr.Value == "string":
		// A string that is no time, or one out of range: the right type, an invalid value.
		return fielderr.New(typeErr.Field, "%s", valid.TimeRule)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return badRequest("a field has the wrong type", fielderr.List{{Field: field, Message: fielderr.TypeMessage(typeErr)}})
	}
	if name, ok := fielderr.UnknownField(err); ok {
		return badRequest("the body has a field this endpoint does not know", fielderr.List{{Field: name, Message: "unknown field"}})
	}
	return badRequest("the body could not be read as JSON", fielderr.List{{Field: "body", Message: err.Error()}})
}
