package segments

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
)

// Audience is who a send reaches: a stored segment of the game, or an inline
// rule. Exactly one is set; callers check that as their request's shape
// dictates.
type Audience struct {
	SegmentID *uuid.UUID     `json:"segment_id,omitempty"`
	Rule      *protocol.Rule `json:"rule,omitempty"`
}

// ResolveAudience returns the delivery plan of a for game g as it stands in tx,
// and the member list its members target reads (nil without one). It is the
// one resolver of audiences: plan previews and campaigns (created, changed or
// fired) go through it.
//
// A segment is read with a share lock (ForSend), so that its rule and member
// list stay as read until tx ends. An inline rule must fit g's tags and may
// not name members, which only a segment has. path is where the audience sits
// in the caller's request ("" for a body that is the audience, "audience"
// inside a campaign): field errors name Join(path, "rule").
//
// It returns ErrNotFound for a segment that is not g's, a fielderr.List for an
// inline rule that is refused, and an error wrapping ErrTooComplex for a rule
// too complex to resolve.
func ResolveAudience(ctx context.Context, tx pgx.Tx, g games.Game, a Audience, path string) (Plan, *int64, error) {
	var rule protocol.Rule
	var list *int64
	var members int64
	switch {
	case a.SegmentID != nil:
		seg, l, err := ForSend(ctx, tx, g.ID, *a.SegmentID)
		if err != nil {
			return Plan{}, nil, err
		}
		rule, list, members = seg.Rule, l, seg.MemberCount
	case a.Rule != nil:
		rule = *a.Rule
		rulePath := fielderr.Join(path, "rule")
		if err := ValidateRule(rule, rulePath, g.Tags); err != nil {
			return Plan{}, nil, err
		}
		if UsesMembers(rule) {
			return Plan{}, nil, fielderr.New(rulePath, "members refers to a segment's uploaded list; name the segment in %s",
				fielderr.Join(path, "segment_id"))
		}
	default:
		return Plan{}, nil, errors.New("segments: resolve an audience without a segment or a rule")
	}
	plan, err := Resolve(rule, g.Tags, members)
	if err != nil {
		return Plan{}, nil, err // a fielderr.List, or ErrTooComplex
	}
	return plan, list, nil
}

// Preview resolves a for game as it stands now, sending nothing: what a plan
// preview shows. It returns games.ErrNotFound and what ResolveAudience returns,
// its field errors at the top of the request ("rule").
func (s *Store) Preview(ctx context.Context, game string, a Audience) (Plan, error) {
	var plan Plan
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		g, err := games.GetShared(ctx, tx, game)
		if err != nil {
			return err
		}
		plan, _, err = ResolveAudience(ctx, tx, g, a, "")
		return err
	})
	return plan, err
}
