package api

import (
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/heraldpush/herald/fielderr"
)

// Page sizes of list endpoints.
const (
	defaultPageSize = 100
	maxPageSize     = 500
)

// page is the body of every list response. NextCursor, when present, is passed
// back as ?cursor= to read the following page; it is opaque to callers.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// pageParams reads ?limit= and ?cursor=.
func pageParams(r *http.Request) (limit int, cursor string, err error) {
	limit = defaultPageSize
	if v := r.URL.Query().Get("limit"); v != "" {
		n, convErr := strconv.Atoi(v)
		if convErr != nil || n < 1 || n > maxPageSize {
			return 0, "", fielderr.New("limit", "must be an integer from 1 to %d", maxPageSize)
		}
		limit = n
	}
	return limit, r.URL.Query().Get("cursor"), nil
}

// errBadCursor refuses a ?cursor= that no page of the endpoint could have given.
var errBadCursor = fielderr.New("cursor", "is not a cursor this endpoint returned")

// idPageParams is pageParams for lists keyed by a uuid, whose cursor is the
// last id of the previous page.
func idPageParams(r *http.Request) (limit int, after uuid.UUID, err error) {
	limit, cursor, err := pageParams(r)
	if err != nil || cursor == "" {
		return limit, uuid.Nil, err
	}
	if after, err = uuid.Parse(cursor); err != nil {
		return 0, uuid.Nil, errBadCursor
	}
	return limit, after, nil
}

// newPage builds a page from items; when more follow, the cursor is the key of the
// last item.
func newPage[T any](items []T, more bool, key func(T) string) page[T] {
	p := page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if more && len(items) > 0 {
		p.NextCursor = key(items[len(items)-1])
	}
	return p
}
