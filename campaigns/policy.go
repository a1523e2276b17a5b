package campaigns

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/segments"
)

// GameChangeCheck is the policy on changing a game (games.Store.Update): a new
// tag schema (tags) must keep every segment's rule and the inline audience of
// every campaign still to be sent or cleared valid (segments.CheckSchema,
// CheckSchema); a new default locale (defaultLocale) must be one every
// campaign still scheduled or live has its texts in (CheckLocale), since
// clients fall back to it; a new tag schema or zone tag (zoneTag) must keep
// the zones of the campaigns to fire in players' time (CheckZones). It names
// everything the change would break, as one fielderr.List on "tags",
// "default_locale" and "zone_tag".
func GameChangeCheck(tags, defaultLocale, zoneTag bool) games.Check {
	var checks []games.Check
	if tags {
		checks = append(checks, segments.CheckSchema, CheckSchema)
	}
	if defaultLocale {
		checks = append(checks, CheckLocale)
	}
	if tags || zoneTag {
		checks = append(checks, CheckZones) // campaigns in players' time need the zone tag
	}
	return func(ctx context.Context, tx pgx.Tx, g games.Game) error {
		var errs fielderr.List
		for _, check := range checks {
			err := check(ctx, tx, g)
			if l, ok := fielderr.As(err); ok {
				errs = append(errs, l...)
			} else if err != nil {
				return err
			}
		}
		return errs.Err()
	}
}
