package campaigns

import (
	"context"
	"time"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/schedule"
	"github.com/heraldpush/herald/valid"
)

// upcoming is how many fires a campaign shows in next_fires.
const upcoming = 5

// NextFire is one fire to come: its instant, and the same instant on the wall
// clock of the zone it fires in.
type NextFire struct {
	At       time.Time `json:"at"`       // in UTC
	Local    string    `json:"local"`    // RFC 3339 with the zone's offset
	Timezone string    `json:"timezone"` // the IANA zone
}

// buildRecurring validates the recurring parts of in (a cron schedule, ttl
// instead of expires_at) into c: its first fire after now is its send_at.
func (c *Campaign) buildRecurring(in Input, g games.Game, now time.Time, errs *fielderr.List) {
	if in.ExpiresAt != nil {
		errs.Add("expires_at", "a recurring campaign has no end of its own: each send expires ttl after its fire")
	}
	if in.StartsAt != nil {
		errs.Add("starts_at", "a recurring campaign's sends each start at their fire: leave starts_at out")
	}
	switch {
	case in.TTL != nil:
	case in.Kind == protocol.KindMarquee || in.Kind == protocol.KindAd:
		errs.Add("ttl", "is required for a recurring %s: how long each send stays, such as 2h", in.Kind)
	default:
		c.TTL = Duration(NoticeLifetime)
	}
	cr, zones, err := recurrence(in.Schedule, g)
	if err != nil {
		l, _ := fielderr.As(err)
		*errs = append(*errs, l...)
		return
	}
	first, _, ok := cr.NextIn(now, zones)
	if !ok {
		errs.Add("schedule.until", "no fire is left before until")
		return
	}
	c.SendAt = first
}

// recurrence parses the cron schedule s for game g and returns it with the
// zones it fires in. It returns a fielderr.List: a schedule in players' zones
// needs the game's zone tag.
func recurrence(s *Schedule, g games.Game) (schedule.Cron, []schedule.Zone, error) {
	cr, err := schedule.Parse(s.Cron, s.Timezone, s.From.Std(), s.Until.Std(), "schedule")
	if err != nil {
		return schedule.Cron{}, nil, err
	}
	zones := cr.Zones(g.PlayerZones())
	if cr.PerPlayer() && len(zones) == 0 {
		return schedule.Cron{}, nil, fielderr.New("schedule.timezone",
			`the game declares no zone tag: set one (PATCH /v1/games/%s {"zone_tag": tag}) to send in each player's own time`, g.ID)
	}
	return cr, zones, nil
}

// nextFires returns the fires to come of c, a campaign of game g (needed for
// a schedule in players' zones), while it is scheduled.
func (c Campaign) nextFires(g games.Game) []NextFire {
	out := []NextFire{}
	if c.Status != StatusScheduled {
		return out
	}
	if !c.Schedule.Recurring() {
		return append(out, NextFire{At: c.SendAt.UTC(), Local: c.SendAt.UTC().Format(time.RFC3339), Timezone: "UTC"})
	}
	cr, zones, err := recurrence(c.Schedule, g)
	if err != nil {
		return out // the game changed under it; the next fire says what happens
	}
	for _, f := range cr.Upcoming(c.SendAt.Add(-time.Nanosecond), zones, upcoming) {
		out = append(out, NextFire{At: f.At.UTC(), Local: f.At.In(f.Zone.Loc).Format(time.RFC3339), Timezone: f.Zone.Name})
	}
	return out
}

// setNextFires sets the next fires of each campaign in list, all of game,
// loading the game through q if one fires in players' zones.
func setNextFires(ctx context.Context, q postgres.DBTX, game string, list []Campaign) error {
	var g *games.Game
	for i := range list {
		c := &list[i]
		if g == nil && c.Schedule.Recurring() && c.Schedule.Timezone == schedule.PlayerZone {
			loaded, err := games.Load(ctx, q, game)
			if err != nil {
				return err
			}
			g = &loaded
		}
		if g == nil {
			c.NextFires = c.nextFires(games.Game{})
		} else {
			c.NextFires = c.nextFires(*g)
		}
	}
	return nil
}

// sendAt is c as it is sent by its fire at: a recurring campaign's send
// expires TTL after its fire.
func (c Campaign) sendAt(fire time.Time) Campaign {
	if c.Schedule.Recurring() {
		c.ExpiresAt = fire.Add(c.TTL.Std())
	}
	return c
}

// input is c as its caller would describe it, for a change to start from.
func (c Campaign) input() Input {
	in := Input{Kind: c.Kind, Name: c.Name, Audience: &c.Audience, Content: c.Content, Priority: &c.Priority,
		StartsAt: valid.Of(c.StartsAt), Schedule: c.Schedule}
	if c.TTL > 0 {
		ttl := c.TTL.String()
		in.TTL = &ttl
	} else if !c.ExpiresAt.IsZero() {
		in.ExpiresAt = valid.Of(&c.ExpiresAt)
	}
	if c.MisfireGrace > 0 {
		grace := c.MisfireGrace.String()
		in.MisfireGrace = &grace
	}
	return in
}
