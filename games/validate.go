package games

import (
	"cmp"
	"slices"
	"sort"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/schedule"
	"github.com/heraldpush/herald/valid"
)

// Limits on what one game may declare. They keep a tag schema small enough to be
// checked on every rule and shown in full by GET /v1/games/{game}.
const (
	MaxTags      = 64
	MaxTagValues = 1000
	MaxTagBands  = 1000
)

// Validate checks a game before it is stored and returns a fielderr.List naming
// every offending field.
func (g *Game) Validate() error {
	var errs fielderr.List
	if err := protocol.CheckID(g.ID); err != nil {
		errs.Add("id", "%v", err)
	}
	if err := valid.Name(g.Name); err != nil {
		errs.Add("name", "%v", err)
	}
	if !protocol.ValidLocale(g.DefaultLocale) {
		errs.Add("default_locale", "must be a language tag such as en or zh-CN")
	}
	checkTags(&errs, g.Tags)
	checkZoneTag(&errs, g.ZoneTag, g.Tags)
	return errs.Err()
}

// checkZoneTag checks that the zone tag, when set, is an enumerated tag whose
// every value spells a time zone (schedule.ZoneOfValue: Asia.Shanghai).
func checkZoneTag(errs *fielderr.List, name string, tags map[string]Tag) {
	if name == "" {
		return
	}
	t, ok := tags[name]
	switch {
	case !ok:
		errs.Add("zone_tag", "names no tag of this game")
		return
	case len(t.Values) == 0:
		errs.Add("zone_tag", "must name a tag declared with values (time zones), not bands")
		return
	}
	path := fielderr.Join(fielderr.Join("tags", name), "values")
	for i, v := range t.Values {
		if _, err := schedule.ZoneOfValue(v); err != nil {
			errs.Add(fielderr.Index(path, i), "the zone tag's values are time zones, spelled with . for / (Asia.Shanghai): %v", err)
		}
	}
}

// PlayerZones returns the time zones of the game's zone tag, in the order the
// tag declares them, or nil without a zone tag. Invalid values, which Validate
// refuses, are left out.
func (g Game) PlayerZones() []schedule.Zone {
	var zones []schedule.Zone
	if g.ZoneTag == "" {
		return nil
	}
	for _, v := range g.Tags[g.ZoneTag].Values {
		if z, err := schedule.ZoneOfValue(v); err == nil {
			zones = append(zones, z)
		}
	}
	return zones
}

func checkTags(errs *fielderr.List, tags map[string]Tag) {
	if len(tags) > MaxTags {
		errs.Add("tags", "at most %d tags", MaxTags)
		return
	}
	names := make([]string, 0, len(tags))
	for name := range tags {
		names = append(names, name)
	}
	sort.Strings(names) // errors in a stable order
	for _, name := range names {
		path := fielderr.Join("tags", name)
		if err := protocol.CheckID(name); err != nil {
			errs.Add(path, "tag name %v", err)
			continue
		}
		checkTag(errs, path, tags[name])
	}
}

func checkTag(errs *fielderr.List, path string, t Tag) {
	switch {
	case len(t.Values) > 0 && len(t.Bands) > 0:
		errs.Add(path, "declare either values or bands, not both")
	case len(t.Values) > 0:
		checkValues(errs, fielderr.Join(path, "values"), t.Values)
	case len(t.notPairs) > 0:
		for _, i := range t.notPairs {
			errs.Add(fielderr.Index(fielderr.Join(path, "bands"), i), "must be a pair [lo, hi] of integers")
		}
	case len(t.Bands) > 0:
		checkBands(errs, fielderr.Join(path, "bands"), t.Bands)
	default:
		errs.Add(path, "declare a non-empty list of values or of bands")
	}
}

func checkValues(errs *fielderr.List, path string, values []string) {
	if len(values) > MaxTagValues {
		errs.Add(path, "at most %d values", MaxTagValues)
		return
	}
	seen := make(map[string]bool, len(values))
	for i, v := range values {
		if err := protocol.CheckID(v); err != nil {
			errs.Add(fielderr.Index(path, i), "value %v", err)
		} else if seen[v] {
			errs.Add(fielderr.Index(path, i), "duplicate value %q", v)
		}
		seen[v] = true
	}
}

func checkBands(errs *fielderr.List, path string, bands []Band) {
	if len(bands) > MaxTagBands {
		errs.Add(path, "at most %d bands", MaxTagBands)
		return
	}
	order := make([]int, 0, len(bands))
	for i, b := range bands {
		if b.Lo() > b.Hi() {
			errs.Add(fielderr.Index(path, i), "band [%d, %d] ends before it starts", b.Lo(), b.Hi())
			continue
		}
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(bands[a].Lo(), bands[b].Lo()) })
	for k := 1; k < len(order); k++ {
		prev, cur := bands[order[k-1]], bands[order[k]]
		if cur.Lo() <= prev.Hi() {
			errs.Add(fielderr.Index(path, order[k]), "band %s overlaps band %s", cur.Name(), prev.Name())
		}
	}
}
