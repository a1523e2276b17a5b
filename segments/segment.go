// Package segments owns audiences: named rules over a game's players (the
// rule language itself is protocol.Rule; this package parses, validates and
// resolves it), their uploaded member lists (upload, paging, purge), and the
// one resolver of an audience into a delivery plan of MQTT topics (the
// README's "Audiences and plans"; the topics are those of docs/protocol.md
// section 2).
package segments

import (
	"time"

	"github.com/google/uuid"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/valid"
)

// Segment is a named audience rule of one game, with an optional uploaded member
// list that rules reach through {"members": true}.
type Segment struct {
	ID          uuid.UUID     `json:"id"`
	GameID      string        `json:"game"`
	Name        string        `json:"name"`
	Rule        protocol.Rule `json:"rule"`
	MemberCount int64         `json:"member_count"`
	CreatedAt   time.Time     `json:"created_at"`
	UpdatedAt   time.Time     `json:"updated_at"`
}

// Validate checks the segment against its game's tag schema and returns a
// fielderr.List naming each offending field.
func (s *Segment) Validate(tags map[string]games.Tag) error {
	var errs fielderr.List
	if err := valid.Name(s.Name); err != nil {
		errs.Add("name", "%v", err)
	}
	if err := ValidateRule(s.Rule, "rule", tags); err != nil {
		if l, ok := fielderr.As(err); ok {
			errs = append(errs, l...)
		} else {
			return err
		}
	}
	return errs.Err()
}
