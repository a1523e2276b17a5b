package games_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
)

// TestZoneTag: a game's zone tag names an enumerated tag whose values are time
// zones spelled with . for /; PlayerZones returns them in declared order.
func TestZoneTag(t *testing.T) {
	t.Parallel()
	g := games.Game{ID: "g1", Name: "Game", DefaultLocale: "en", ZoneTag: "tz", Tags: map[string]games.Tag{
		"tz":    {Values: []string{"Europe.Berlin", "Asia.Shanghai", "America.Argentina.Buenos_Aires", "UTC"}},
		"level": {Bands: []games.Band{{1, 9}, {10, 19}}},
	}}
	require.NoError(t, g.Validate())
	var names []string
	for _, z := range g.PlayerZones() {
		names = append(names, z.Name)
	}
	require.Equal(t, []string{"Europe/Berlin", "Asia/Shanghai", "America/Argentina/Buenos_Aires", "UTC"}, names)
	require.Equal(t, "tz", g.Descriptor("herald").ZoneTag, "clients see the zone tag in the descriptor")
	require.Empty(t, games.Game{ID: "g2"}.Descriptor("herald").ZoneTag)

	for _, tc := range []struct {
		zoneTag string
		values  []string
		field   string
	}{
		{"region", nil, "zone_tag"},
		{"level", nil, "zone_tag"},
		{"tz", []string{"Asia.Shanghai", "Mars.Olympus_Mons"}, "tags.tz.values[1]"},
		{"tz", []string{"Local"}, "tags.tz.values[0]"},
	} {
		bad := g
		bad.ZoneTag = tc.zoneTag
		if tc.values != nil {
			bad.Tags = map[string]games.Tag{"tz": {Values: tc.values}, "level": g.Tags["level"]}
		}
		l, ok := fielderr.As(bad.Validate())
		require.True(t, ok, tc.zoneTag)
		require.Equal(t, tc.field, l[0].Field, l.Error())
	}
	require.Nil(t, games.Game{}.PlayerZones())
}
