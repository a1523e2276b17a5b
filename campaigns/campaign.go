// Package campaigns owns campaigns: what an operator sends (a message of one
// kind, validated with protocol.ParseContent), to whom (an audience, resolved
// with segments), when (a schedule) and for how long. Creating or firing a
// campaign records a dispatch in the same transaction (package dispatch, which
// does the publishing); cancelling recalls its dispatches; the fan-out tells
// the campaign when its last dispatch was cleared (Store.DispatchCleared).
package campaigns

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
	"github.com/heraldpush/herald/valid"
)

// Status is where a campaign stands (the README's "Campaigns").
type Status string

// Campaign statuses.
const (
	StatusScheduled Status = "scheduled" // waiting for its send time; a recurring one stays so between fires
	StatusPaused    Status = "paused"    // a recurring campaign whose fires are not sent until it is resumed
	StatusLive      Status = "live"      // sent; its messages are out there
	StatusCompleted Status = "completed" // its one fire was missed, or a recurring one has no fire left
	StatusExpired   Status = "expired"   // its messages reached expires_at and were cleared
	StatusCanceled  Status = "canceled"  // recalled by an operator
)

// Limits on campaign fields.
const (
	DefaultPriority = 5
	// NoticeLifetime is how long a notice lives when expires_at is not given.
	NoticeLifetime = 7 * 24 * time.Hour
	// MaxLifetime is the longest a message may stay retained (README,
	// "Campaigns"), and the longest ttl.
	MaxLifetime = 30 * 24 * time.Hour
	// MaxMisfireGrace is the longest misfire_grace: a fire later than a day is
	// news of yesterday.
	MaxMisfireGrace = 24 * time.Hour
	// scheduleSlack lets an {"at"} a moment in the past through (clock skew, a slow
	// request): it is sent at once.
	scheduleSlack = time.Minute
)

// Audience is who a campaign reaches: a stored segment or an inline rule
// (segments.Audience, read from a campaign's JSON by UnmarshalJSON below).
type Audience segments.Audience

// UnmarshalJSON reads an audience so that errors inside an inline rule name their
// path from the request's top ("audience.rule.in[0]").
func (a *Audience) UnmarshalJSON(data []byte) error {
	var raw struct {
		SegmentID *string         `json:"segment_id"`
		Rule      json.RawMessage `json:"rule"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	*a = Audience{}
	var errs fielderr.List
	if raw.SegmentID != nil {
		id, err := uuid.Parse(*raw.SegmentID)
		if err != nil {
			errs.Add("audience.segment_id", "is not a segment id")
		}
		a.SegmentID = &id
	}
	if raw.Rule != nil {
		r, err := segments.ParseRule(raw.Rule, "audience.rule")
		if err != nil {
			return err
		}
		a.Rule = &r
	}
	return errs.Err()
}

// Schedule says when a campaign is sent: nil for at once, At for once later,
// or Cron, read in Timezone between From and Until, for again and again.
type Schedule struct {
	At *valid.Time `json:"at,omitempty"`
	// Cron is a 5-field expression or a descriptor such as @daily (see
	// package schedule); Timezone an IANA zone, or "player" to fire in each
	// player's own zone (the game's zone tag).
	Cron     string      `json:"cron,omitempty"`
	Timezone string      `json:"timezone,omitempty"`
	From     *valid.Time `json:"from,omitempty"`
	Until    *valid.Time `json:"until,omitempty"`
}

// Recurring reports whether s fires again and again.
func (s *Schedule) Recurring() bool { return s != nil && s.At == nil && s.Cron != "" }

// PlanSummary is the size and exactness of a campaign's delivery plan.
type PlanSummary struct {
	Exact   bool  `json:"exact"`
	Topics  int64 `json:"topics"`
	Players int64 `json:"players"`
}

// Campaign is a message and its audience, validity and schedule.
type Campaign struct {
	ID       uuid.UUID       `json:"id"`
	GameID   string          `json:"game"`
	Kind     protocol.Kind   `json:"kind"`
	Name     string          `json:"name"`
	Audience Audience        `json:"audience"`
	Content  json.RawMessage `json:"content"`
	Priority int             `json:"priority"`
	StartsAt *time.Time      `json:"starts_at,omitempty"`
	// ExpiresAt is zero for a recurring campaign: each send expires TTL
	// after its fire.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// TTL is how long each send stays, when given instead of expires_at.
	TTL Duration `json:"ttl,omitzero"`
	// MisfireGrace is how late a fire may still be sent (zero: the server's
	// default, HERALD_FIRE_GRACE).
	MisfireGrace Duration  `json:"misfire_grace,omitzero"`
	Schedule     *Schedule `json:"schedule,omitempty"`
	// SendAt is the next fire.
	SendAt time.Time `json:"send_at"`
	// NextFires are the next fires (at most 5) while the campaign is
	// scheduled, for a campaign in players' zones one per zone and instant.
	NextFires  []NextFire          `json:"next_fires"`
	Status     Status              `json:"status"`
	Plan       PlanSummary         `json:"plan"`
	Dispatches []dispatch.Dispatch `json:"dispatches"`
	CreatedAt  time.Time           `json:"created_at"`
	UpdatedAt  time.Time           `json:"updated_at"`
}

// Input is a campaign as a caller describes it. Absent fields take defaults.
type Input struct {
	Kind      protocol.Kind   `json:"kind"`
	Name      string          `json:"name"`
	Audience  *Audience       `json:"audience"`
	Content   json.RawMessage `json:"content"`
	Priority  *int            `json:"priority"`
	StartsAt  *valid.Time     `json:"starts_at"`
	ExpiresAt *valid.Time     `json:"expires_at"`
	// TTL ("2h") and MisfireGrace ("10m") are durations in Go's syntax.
	TTL          *string   `json:"ttl"`
	MisfireGrace *string   `json:"misfire_grace"`
	Schedule     *Schedule `json:"schedule"`
}

// build validates in for game g at time now and returns the campaign it
// describes, without id, plan or status, or a fielderr.List.
func (in Input) build(g games.Game, now time.Time) (Campaign, error) {
	if err := checkTimes(in); err != nil {
		return Campaign{}, err // the rules below compare times: they need sane ones
	}
	var errs fielderr.List
	c := Campaign{GameID: g.ID, Kind: in.Kind, Name: in.Name, StartsAt: in.StartsAt.Std(), Schedule: in.Schedule, Priority: DefaultPriority}
	switch in.Kind {
	case protocol.KindMarquee, protocol.KindNotice, protocol.KindAd:
	case protocol.KindKickout:
		errs.Add("kind", "kick-outs are sent through the kick-out API, not as campaigns")
	case "":
		errs.Add("kind", "is required: marquee, notice or ad")
	default:
		errs.Add("kind", "must be marquee, notice or ad")
	}
	if err := valid.Name(in.Name); err != nil {
		errs.Add("name", "%v", err)
	}
	if in.Priority != nil {
		if *in.Priority < 0 || *in.Priority > 9 {
			errs.Add("priority", "must be from 0 to 9")
		}
		c.Priority = *in.Priority
	}
	switch {
	case in.Audience == nil || (in.Audience.SegmentID == nil) == (in.Audience.Rule == nil):
		errs.Add("audience", "give exactly one of segment_id and rule")
	default:
		c.Audience = *in.Audience
	}
	if campaignKind(in.Kind) {
		if in.Content == nil {
			errs.Add("content", "is required")
		} else if content, err := protocol.ParseContent(in.Kind, in.Content, g.DefaultLocale); err != nil {
			if l, ok := fielderr.As(err); ok {
				errs = append(errs, l...)
			} else {
				return Campaign{}, err
			}
		} else {
			c.Content = content
		}
	}
	c.SendAt = now
	c.TTL = parseDuration(&errs, "ttl", in.TTL, time.Second, MaxLifetime)
	c.MisfireGrace = parseDuration(&errs, "misfire_grace", in.MisfireGrace, time.Second, MaxMisfireGrace)
	if in.Schedule.Recurring() {
		c.buildRecurring(in, g, now, &errs)
		return c, errs.Err()
	}
	if s := in.Schedule; s != nil {
		switch {
		case s.At == nil && s.Cron == "":
			errs.Add("schedule", `give {"at": time} to send later, {"cron": expression, "timezone": zone} to send again and again, or leave schedule out to send now`)
		case s.Cron != "" || s.Timezone != "" || s.From != nil || s.Until != nil:
			errs.Add("schedule", "give either at, or cron with timezone (and from, until), not both")
		case s.At.Before(now.Add(-scheduleSlack)):
			errs.Add("schedule.at", "is in the past")
		case s.At.After(now):
			c.SendAt = s.At.Time
		}
	}
	switch {
	case in.ExpiresAt != nil && in.TTL != nil:
		errs.Add("ttl", "give expires_at or ttl, not both")
	case in.ExpiresAt != nil:
		c.ExpiresAt = in.ExpiresAt.Time
		switch {
		case !c.ExpiresAt.After(c.SendAt):
			errs.Add("expires_at", "must be after the send time %s", c.SendAt.UTC().Format(time.RFC3339))
		case c.ExpiresAt.Sub(c.SendAt) > MaxLifetime:
			errs.Add("expires_at", "must be at most 30 days after the send time")
		}
	case in.TTL != nil:
		c.ExpiresAt = c.SendAt.Add(c.TTL.Std())
	case in.Kind == protocol.KindMarquee || in.Kind == protocol.KindAd:
		errs.Add("expires_at", "is required for a %s (or ttl)", in.Kind)
	default:
		c.ExpiresAt = c.SendAt.Add(NoticeLifetime)
	}
	if in.StartsAt != nil && !c.ExpiresAt.IsZero() && !in.StartsAt.Before(c.ExpiresAt) {
		errs.Add("starts_at", "must be before expires_at")
	}
	return c, errs.Err()
}

// checkTimes refuses times outside the range of valid.CheckTime. Times read
// from JSON were checked by the decoder already; this covers every other caller.
func checkTimes(in Input) error {
	var errs fielderr.List
	check := func(field string, t *valid.Time) {
		if t != nil {
			if err := valid.CheckTime(t.Time); err != nil {
				errs.Add(field, "%v", err)
			}
		}
	}
	check("starts_at", in.StartsAt)
	check("expires_at", in.ExpiresAt)
	if s := in.Schedule; s != nil {
		check("schedule.at", s.At)
		check("schedule.from", s.From)
		check("schedule.until", s.Until)
	}
	return errs.Err()
}

// campaignKind reports whether k is a kind sent as a campaign: kick-outs have
// an API of their own.
func campaignKind(k protocol.Kind) bool {
	return k == protocol.KindMarquee || k == protocol.KindNotice || k == protocol.KindAd
}
