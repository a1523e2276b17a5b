package campaigns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/segments"
)

// ErrUnconfirmed is wrapped by *UnconfirmedError.
var ErrUnconfirmed = errors.New("the audience of this campaign needs a confirmation")

// Confirmation is what a game that sets confirm_over asks of a campaign's
// audience before it is stored: a fat-fingered send to the whole game takes
// two deliberate steps, a dry run and a confirmed send.
type Confirmation struct {
	// Required is set when the game has confirm_over and the plan's players
	// cannot be counted (a topic of everyone, a server or a tag) or exceed it.
	Required bool `json:"confirm_required"`
	// Audience is the number that confirms the plan: its player count, or its
	// topic count where players are unknown.
	Audience int64 `json:"confirm_audience"`
}

// confirmation returns what game g asks to confirm plan.
func confirmation(g games.Game, plan segments.Plan) Confirmation {
	c := Confirmation{Audience: plan.Topics}
	if plan.Players != nil {
		c.Audience = *plan.Players
	}
	c.Required = g.ConfirmOver != nil && (plan.Players == nil || *plan.Players > *g.ConfirmOver)
	return c
}

// UnconfirmedError refuses a campaign whose audience needed a confirmation
// that the request did not carry, or carried for another plan. It holds the
// plan, so that the caller sees what it is asked to confirm.
type UnconfirmedError struct {
	Game    string
	Plan    segments.Plan
	Confirm Confirmation
	Given   *int64 // the request's confirm_audience, nil if it had none
	why     string // why the game asks
}

func (e *UnconfirmedError) Error() string {
	if e.Given == nil {
		return fmt.Sprintf("%v: %s; send it again with \"confirm_audience\": %d", ErrUnconfirmed, e.why, e.Confirm.Audience)
	}
	return fmt.Sprintf("%v: %s; confirm_audience %d does not match the plan, which asks for %d", ErrUnconfirmed,
		e.why, *e.Given, e.Confirm.Audience)
}

func (e *UnconfirmedError) Unwrap() error { return ErrUnconfirmed }

// checkConfirmed refuses p unless its plan needs no confirmation or given
// matches it.
func (p prepared) checkConfirmed(g games.Game, given *int64) error {
	c := p.confirm
	if !c.Required || (given != nil && *given == c.Audience) {
		return nil
	}
	why := "the game asks to confirm sends whose players Herald cannot count, by the plan's topic count"
	if p.plan.Players != nil {
		why = fmt.Sprintf("the plan names %d players, more than the game's confirm_over of %d", *p.plan.Players, *g.ConfirmOver)
	}
	return &UnconfirmedError{Game: g.ID, Plan: p.plan, Confirm: c, Given: given, why: why}
}

// sameAudience reports whether a and b name the same audience.
func sameAudience(a, b Audience) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
