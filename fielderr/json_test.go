package fielderr_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/valid"
)

func TestTypeMessage(t *testing.T) {
	t.Parallel()
	var dst struct {
		N  int               `json:"n"`
		F  float64           `json:"f"`
		S  string            `json:"s"`
		B  bool              `json:"b"`
		L  []string          `json:"l"`
		M  map[string]string `json:"m"`
		At *valid.Time       `json:"at"`
	}
	for in, want := range map[string]string{
		`{"n":"3"}`:    "must be a whole number, not a string",
		`{"n":1.5}`:    "must be a whole number within range, not 1.5",
		`{"n":1e99}`:   "must be a whole number within range, not 1e99",
		`{"f":true}`:   "must be a number, not a boolean",
		`{"s":5}`:      "must be a string, not a number",
		`{"s":{}}`:     "must be a string, not an object",
		`{"b":[]}`:     "must be a boolean, not an array",
		`{"l":"x"}`:    "must be an array, not a string",
		`{"m":[1]}`:    "must be an object, not an array",
		`{"at":12345}`: "must be an RFC 3339 time string, not a number",
	} {
		var typeErr *json.UnmarshalTypeError
		require.True(t, errors.As(json.Unmarshal([]byte(in), &dst), &typeErr), in)
		require.Equal(t, want, fielderr.TypeMessage(typeErr), in)
	}
}

func TestUnknownField(t *testing.T) {
	t.Parallel()
	dec := json.NewDecoder(bytes.NewReader([]byte(`{"colour":"red"}`)))
	dec.DisallowUnknownFields()
	var dst struct{}
	name, ok := fielderr.UnknownField(dec.Decode(&dst))
	require.True(t, ok)
	require.Equal(t, "colour", name)
	_, ok = fielderr.UnknownField(errors.New("something else"))
	require.False(t, ok)
}
