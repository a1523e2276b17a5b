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
	rule, list, members, err := AudienceRule(ctx, tx, g, a, path)
	if err != nil {
		return Plan{}, nil, err
	}
	plan, err := Resolve(rule, g.Tags, members)
	if err != nil {
		return Plan{}, nil, err // a fielderr.List, or ErrTooComplex
	}
	return plan, list, nil
}

// AudienceRule is the first half of ResolveAudience: the rule of a as it
// stands in tx, checked as ResolveAudience checks it, with the member list a
// members target reads (nil without one) and its size. Sends that address the
// rule otherwise than through Resolve (in each player's time zone, see
// InTagValues) start from it. It returns what ResolveAudience returns, but
// ErrTooComplex.
func AudienceRule(ctx context.Context, tx pgx.Tx, g games.Game, a Audience, path string) (protocol.Rule, *int64, int64, error) {
	switch {
	case a.SegmentID != nil:
		seg, list, err := ForSend(ctx, tx, g.ID, *a.SegmentID)
		if err != nil {
			return protocol.Rule{}, nil, 0, err
		}
		return seg.Rule, list, seg.MemberCount, nil
	case a.Rule != nil:
		rule := *a.Rule
		rulePath := fielderr.Join(path, "rule")
		if err := ValidateRule(rule, rulePath, g.Tags); err != nil {
			return protocol.Rule{}, nil, 0, err
		}
		if UsesMembers(rule) {
			return protocol.Rule{}, nil, 0, fielderr.New(rulePath, "members refers to a segment's uploaded list; name the segment in %s",
				fielderr.Join(path, "segment_id"))
		}
		return rule, nil, 0, nil
	}
	return protocol.Rule{}, nil, 0, errors.New("segments: resolve an audience without a segment or a rule")
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
