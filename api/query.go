package api

import (
	"net/http"
	"strings"

	"github.com/heraldpush/herald/fielderr"
)

// boolQuery reads the boolean query parameter name: absent is false; true,
// false, 1 and 0 in any case are what they say. Anything else, an empty value
// or a repeated parameter is refused with a 422 naming it: a flag such as
// ?dry_run= decides whether a campaign is really sent, so it never guesses.
func boolQuery(r *http.Request, name string) (bool, error) {
	values, ok := r.URL.Query()[name]
	if !ok {
		return false, nil
	}
	if len(values) == 1 {
		switch strings.ToLower(values[0]) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
	}
	return false, fielderr.New(name, "must be given once, as true, false, 1 or 0")
}
