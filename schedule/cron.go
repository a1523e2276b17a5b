// Package schedule computes when a recurring campaign fires: a cron expression
// read on the wall clock of a time zone, between an optional from and until.
//
// Expressions are parsed by robfig/cron, but evaluated here on the wall clock
// (robfig's own evaluation in a zone skips a local time that Daylight Saving
// jumps over and fires twice in an hour it repeats), with one rule for every
// zone:
//
//   - each local time the expression names fires at most once: in an hour the
//     clocks repeat (the fall change), at its first occurrence only;
//   - a local time the clocks skip (the spring change) fires once, at the first
//     instant after the gap (a daily 02:30 in New York fires at 03:00 EDT that
//     day), merged with a fire due at that instant anyway.
//
// Every replica computes the same fires from the same schedule, which is what
// makes a fire's time a key that a dispatch can be unique on.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // zones load even on a host without a zoneinfo database

	"github.com/robfig/cron/v3"

	"github.com/heraldpush/herald/fielderr"
)

// PlayerZone is the time zone of a schedule that fires in each player's own
// zone, once per zone its game declares.
const PlayerZone = "player"

// maxExprLen bounds an expression; the longest useful one is far shorter.
const maxExprLen = 200

// parser reads 5-field expressions (minute hour day-of-month month
// day-of-week) and descriptors such as @daily.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Cron is a validated recurring schedule. Its zero value never fires.
type Cron struct {
	spec        *cron.SpecSchedule // evaluated on the wall clock, as if it were UTC
	zone        string             // an IANA zone, or PlayerZone
	loc         *time.Location     // nil for PlayerZone
	from, until time.Time          // zero: unbounded
}

// Parse validates a cron schedule: expr is a 5-field expression or a
// descriptor (@yearly, @annually, @monthly, @weekly, @daily, @midnight,
// @hourly), zone an IANA zone or PlayerZone, and from and until (nil:
// unbounded) the first and last instants it may fire at, both included. It
// returns a fielderr.List naming path.cron, path.timezone, path.from or
// path.until.
func Parse(expr, zone string, from, until *time.Time, path string) (Cron, error) {
	var errs fielderr.List
	c := Cron{zone: zone}
	spec, err := parseExpr(expr)
	if err != nil {
		errs.Add(fielderr.Join(path, "cron"), "%v", err)
	}
	c.spec = spec
	switch loc, err := LoadZone(zone); {
	case zone == PlayerZone:
	case err != nil:
		errs.Add(fielderr.Join(path, "timezone"), "%v, or %q for each player's own zone", err, PlayerZone)
	default:
		c.loc = loc
	}
	if from != nil {
		c.from = *from
	}
	if until != nil {
		c.until = *until
	}
	if from != nil && until != nil && !until.After(*from) {
		errs.Add(fielderr.Join(path, "until"), "must be after from")
	}
	if len(errs) > 0 {
		return Cron{}, errs
	}
	// A zone does not change whether an expression ever fires: UTC answers.
	// Whether a fire is left in the window depends on when one asks (First).
	if _, ok := c.next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC); !ok {
		return Cron{}, fielderr.New(fielderr.Join(path, "cron"), "never fires")
	}
	return c, nil
}

// parseExpr parses expr with the rules of Parse.
func parseExpr(expr string) (*cron.SpecSchedule, error) {
	expr = strings.TrimSpace(expr)
	switch {
	case expr == "":
		return nil, errors.New("is required: 5 fields (minute hour day-of-month month day-of-week) or a descriptor such as @daily")
	case len(expr) > maxExprLen:
		return nil, fmt.Errorf("must be at most %d bytes", maxExprLen)
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return nil, errors.New("give the time zone in timezone, not in the expression")
	case strings.HasPrefix(expr, "@every"):
		// An interval counts from whenever it was started, so two replicas
		// would not agree on its fire times: only fixed times can be fired once.
		return nil, errors.New("@every is not supported: give the times in 5 fields, such as */15 * * * * for every 15 minutes")
	case !strings.HasPrefix(expr, "@") && len(strings.Fields(expr)) != 5:
		return nil, fmt.Errorf("must have 5 fields (minute hour day-of-month month day-of-week), found %d; seconds are not supported",
			len(strings.Fields(expr)))
	}
	s, err := parser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("is not a valid cron expression: %v", err)
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, errors.New("is not a valid cron expression")
	}
	spec.Location = time.UTC
	return spec, nil
}

// LoadZone returns the location of an IANA zone name such as Asia/Shanghai or
// UTC. "Local" and "" are refused: a schedule must not depend on the host.
func LoadZone(name string) (*time.Location, error) {
	const rule = "must be an IANA time zone such as Asia/Shanghai, Europe/Berlin or UTC"
	if name == "" || name == "Local" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return nil, errors.New(rule)
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %q is unknown", rule, name)
	}
	zones.Store(name, loc)
	return loc, nil
}

// zones caches loaded zones by name: loading one parses its zoneinfo, and
// every fire of a recurring campaign needs its zone.
var zones sync.Map

// ZoneOfValue returns the zone a value of a game's zone tag stands for. A tag
// value is a topic level, which cannot hold a '/': the value spells the IANA
// name with '.' in its place (Asia.Shanghai for Asia/Shanghai; no IANA name
// has a '.'). Zones whose name holds a '+' (Etc/GMT+8) cannot be spelled so:
// their named equivalents can.
func ZoneOfValue(value string) (Zone, error) {
	name := strings.ReplaceAll(value, ".", "/")
	loc, err := LoadZone(name)
	if err != nil {
		return Zone{}, err
	}
	return Zone{Name: name, Loc: loc}, nil
}

// TagValue is the zone tag value that spells the zone named name: the
// inverse of ZoneOfValue.
func TagValue(name string) string { return strings.ReplaceAll(name, "/", ".") }

// Zone is the schedule's zone: an IANA name, or PlayerZone.
func (c Cron) Zone() string { return c.zone }

// PerPlayer reports whether the schedule fires in each player's own zone.
func (c Cron) PerPlayer() bool { return c.zone == PlayerZone }

// Location is the schedule's zone, nil when it fires per player.
func (c Cron) Location() *time.Location { return c.loc }

// Until is the last instant the schedule may fire at; zero when unbounded.
func (c Cron) Until() time.Time { return c.until }

// Next returns the first fire strictly after `after` on the wall clock of loc
// (the schedule's own zone, or one player zone), and false when there is none
// (past until, or none within robfig's five-year horizon).
func (c Cron) Next(after time.Time, loc *time.Location) (time.Time, bool) {
	if c.spec == nil || loc == nil {
		return time.Time{}, false
	}
	if after.Before(c.from) {
		after = c.from.Add(-time.Nanosecond) // from itself may fire
	}
	t, ok := c.next(after, loc)
	if !ok || (!c.until.IsZero() && t.After(c.until)) {
		return time.Time{}, false
	}
	return t, true
}

// maxSkips bounds the wall-clock candidates next passes over because their
// instant is not after `after`: those of an hour the clocks repeat, or of a
// gap, all of which fall at or before the repeat's or gap's end. An
// every-minute expression has 60 in an hour.
const maxSkips = 24 * 60

// next is Next without the window.
func (c Cron) next(after time.Time, loc *time.Location) (time.Time, bool) {
	wall := wallClock(after.In(loc))
	for range maxSkips {
		wall = c.spec.Next(wall)
		if wall.IsZero() {
			return time.Time{}, false
		}
		if t := instant(wall, loc); t.After(after) {
			return t, true
		}
	}
	return time.Time{}, false
}

// wallClock returns the wall-clock reading of t as the same reading in UTC.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// instant returns the instant whose wall clock in loc reads wall (given as a
// UTC reading): the earlier of two when the clocks repeat it, and the end of
// the gap when they skip it.
func instant(wall time.Time, loc *time.Location) time.Time {
	// An instant reading wall lies within a day of it, and zone changes are
	// further apart than that: the offsets a day before and after are the only
	// candidates.
	_, before := wall.Add(-24 * time.Hour).In(loc).Zone()
	_, after := wall.Add(24 * time.Hour).In(loc).Zone()
	early := wall.Add(-time.Duration(max(before, after)) * time.Second)
	late := wall.Add(-time.Duration(min(before, after)) * time.Second)
	for _, t := range []time.Time{early, late} {
		if wallClock(t.In(loc)).Equal(wall) {
			return t
		}
	}
	// Skipped: late is already past the change (its offset is the new one);
	// the change is where its zone period starts.
	if start, _ := late.In(loc).ZoneBounds(); !start.IsZero() && !start.After(late) {
		return start
	}
	return time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), loc)
}
