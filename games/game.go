// Package games owns the registry of games: their topic-safe ids, display names,
// default locales and tag schemas. It is its own package because everything else
// stands on it: segments validate rules against a game's tag schema, campaigns
// localize content with its default locale, and every topic starts with its id.
package games

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Game is one game operated through Herald.
type Game struct {
	ID            string         `json:"id"`
	Name          string         `json:"name"`
	DefaultLocale string         `json:"default_locale"`
	Tags          map[string]Tag `json:"tags"`
	// ZoneTag names the tag whose values are the players' time zones ("" for
	// none): campaigns scheduled in "player" time fire once per value.
	ZoneTag   string    `json:"zone_tag,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Tag declares one player attribute a game publishes by: either an enumeration
// of values (region: eu, na, asia) or numeric bands (level: 1-9, 10-19, ...).
// Exactly one of Values and Bands is set.
type Tag struct {
	Values []string `json:"values,omitempty"`
	Bands  []Band   `json:"bands,omitempty"`

	// notPairs lists the bands that were not written as [lo, hi] in the JSON this
	// Tag was read from, so that Validate can name them with their full path.
	notPairs []int
}

// UnmarshalJSON reads a tag declaration, refusing unknown members and keeping
// note of bands that are not pairs (encoding/json would silently drop a third
// element or zero a missing second one).
func (t *Tag) UnmarshalJSON(data []byte) error {
	var raw struct {
		Values []string  `json:"values"`
		Bands  [][]int64 `json:"bands"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	*t = Tag{Values: raw.Values}
	for i, b := range raw.Bands {
		if len(b) != 2 {
			t.notPairs = append(t.notPairs, i)
			t.Bands = append(t.Bands, Band{})
			continue
		}
		t.Bands = append(t.Bands, Band{b[0], b[1]})
	}
	return nil
}

// Band is an inclusive numeric range [Lo, Hi] of a banded tag, written in JSON as
// [lo, hi]. Its topic level is "lo-hi" (see Name).
type Band [2]int64

// Lo is the band's lowest value.
func (b Band) Lo() int64 { return b[0] }

// Hi is the band's highest value.
func (b Band) Hi() int64 { return b[1] }

// Name is the band's topic level and the value clients subscribe with: "lo-hi",
// e.g. "30-39".
func (b Band) Name() string { return strconv.FormatInt(b[0], 10) + "-" + strconv.FormatInt(b[1], 10) }
