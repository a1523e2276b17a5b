package schedule_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/schedule"
)

func mustParse(t *testing.T, expr, zone string) schedule.Cron {
	t.Helper()
	c, err := schedule.Parse(expr, zone, nil, nil, "schedule")
	require.NoError(t, err)
	return c
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// fires returns the instants of c's fires in its own zone, strictly after
// `after` and up to and including `to`.
func fires(t *testing.T, c schedule.Cron, after, to string) []string {
	t.Helper()
	var out []string
	at := utc(after)
	for range 1000 {
		next, ok := c.Next(at, c.Location())
		if !ok || next.After(utc(to)) {
			return out
		}
		require.True(t, next.After(at), "Next goes forward")
		out = append(out, next.UTC().Format(time.RFC3339))
		at = next
	}
	t.Fatal("too many fires")
	return nil
}

// TestDaylightSavingNewYork: in America/New_York (2026: clocks skip 02:00-03:00
// on March 8 and repeat 01:00-02:00 on November 1) a daily job fires once on
// each of those days.
func TestDaylightSavingNewYork(t *testing.T) {
	t.Parallel()
	at0230 := mustParse(t, "30 2 * * *", "America/New_York")
	require.Equal(t, []string{
		"2026-03-07T07:30:00Z", // 02:30 EST
		"2026-03-08T07:00:00Z", // 02:30 does not exist: 03:00 EDT, the end of the gap
		"2026-03-09T06:30:00Z", // 02:30 EDT
	}, fires(t, at0230, "2026-03-07T00:00:00Z", "2026-03-09T23:59:59Z"))
	require.Equal(t, []string{
		"2026-10-31T06:30:00Z", // 02:30 EDT
		"2026-11-01T07:30:00Z", // 02:30 EST, the only 02:30 of the day
		"2026-11-02T07:30:00Z",
	}, fires(t, at0230, "2026-10-31T00:00:00Z", "2026-11-02T23:59:59Z"))

	at0130 := mustParse(t, "30 1 * * *", "America/New_York")
	require.Equal(t, []string{
		"2026-10-31T05:30:00Z", // 01:30 EDT
		"2026-11-01T05:30:00Z", // 01:30 EDT: the first 01:30; not again at 01:30 EST
		"2026-11-02T06:30:00Z", // 01:30 EST
	}, fires(t, at0130, "2026-10-31T00:00:00Z", "2026-11-02T23:59:59Z"))

	half := mustParse(t, "*/30 * * * *", "America/New_York")
	require.Equal(t, []string{
		"2026-03-08T06:00:00Z", // 01:00 EST
		"2026-03-08T06:30:00Z", // 01:30 EST
		"2026-03-08T07:00:00Z", // 02:00 and 02:30 are skipped: one fire at 03:00 EDT, shared with 03:00
		"2026-03-08T07:30:00Z", // 03:30 EDT
	}, fires(t, half, "2026-03-08T05:59:00Z", "2026-03-08T07:30:00Z"))
	require.Equal(t, []string{
		"2026-11-01T05:00:00Z", // 01:00 EDT
		"2026-11-01T05:30:00Z", // 01:30 EDT
		"2026-11-01T07:00:00Z", // 02:00 EST: the repeated 01:00 and 01:30 EST do not fire again
		"2026-11-01T07:30:00Z",
	}, fires(t, half, "2026-11-01T04:59:00Z", "2026-11-01T07:30:00Z"))
}

// TestDaylightSavingBerlin: in Europe/Berlin (2026: clocks skip 02:00-03:00 on
// March 29 and repeat 02:00-03:00 on October 25) a daily 02:30 fires once on
// each of those days.
func TestDaylightSavingBerlin(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "30 2 * * *", "Europe/Berlin")
	require.Equal(t, []string{
		"2026-03-28T01:30:00Z", // 02:30 CET
		"2026-03-29T01:00:00Z", // 02:30 does not exist: 03:00 CEST
		"2026-03-30T00:30:00Z", // 02:30 CEST
	}, fires(t, c, "2026-03-28T00:00:00Z", "2026-03-30T23:59:59Z"))
	require.Equal(t, []string{
		"2026-10-24T00:30:00Z", // 02:30 CEST
		"2026-10-25T00:30:00Z", // the first 02:30 (CEST); not again at 02:30 CET
		"2026-10-26T01:30:00Z", // 02:30 CET
	}, fires(t, c, "2026-10-24T00:00:00Z", "2026-10-26T23:59:59Z"))

	// A fire just after the first 02:30 of October 25 (during the repeated
	// hour, in CET) finds the next day's.
	next, ok := c.Next(utc("2026-10-25T01:10:00Z"), c.Location())
	require.True(t, ok)
	require.Equal(t, utc("2026-10-26T01:30:00Z"), next.UTC())
}

// TestShanghaiHasNoDaylightSaving: 20:00 in Asia/Shanghai is 12:00 UTC every
// day of the year, through the days when New York and Berlin change clocks.
func TestShanghaiHasNoDaylightSaving(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "0 20 * * *", "Asia/Shanghai")
	got := fires(t, c, "2026-01-01T00:00:00Z", "2026-12-31T23:59:59Z")
	require.Len(t, got, 365)
	for _, f := range got {
		require.Equal(t, "12:00:00Z", f[len("2026-01-01T"):], f)
	}
	next, ok := c.Next(utc("2026-03-08T12:00:00Z"), c.Location())
	require.True(t, ok)
	require.Equal(t, "2026-03-09T20:00:00+08:00", next.In(c.Location()).Format(time.RFC3339))
}

// TestWindow: from and until are both included, and nothing fires outside them.
func TestWindow(t *testing.T) {
	t.Parallel()
	from, until := utc("2026-06-01T12:00:00Z"), utc("2026-06-03T12:00:00Z")
	c, err := schedule.Parse("0 20 * * *", "Asia/Shanghai", &from, &until, "schedule")
	require.NoError(t, err)
	require.Equal(t, []string{"2026-06-01T12:00:00Z", "2026-06-02T12:00:00Z", "2026-06-03T12:00:00Z"},
		fires(t, c, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"))
	_, ok := c.Next(until, c.Location())
	require.False(t, ok, "nothing after until")
	require.Equal(t, until, c.Until())
}

// TestDescriptors: the descriptors robfig/cron knows fire at their usual
// local times, in the schedule's zone.
func TestDescriptors(t *testing.T) {
	t.Parallel()
	after := utc("2026-05-13T10:17:00Z") // a Wednesday
	for expr, want := range map[string]string{
		"@hourly":   "2026-05-13T19:00:00+08:00",
		"@daily":    "2026-05-14T00:00:00+08:00",
		"@midnight": "2026-05-14T00:00:00+08:00",
		"@weekly":   "2026-05-17T00:00:00+08:00", // Sunday
		"@monthly":  "2026-06-01T00:00:00+08:00",
		"@yearly":   "2027-01-01T00:00:00+08:00",
		"@annually": "2027-01-01T00:00:00+08:00",
	} {
		c := mustParse(t, expr, "Asia/Shanghai")
		next, ok := c.Next(after, c.Location())
		require.True(t, ok, expr)
		require.Equal(t, want, next.In(c.Location()).Format(time.RFC3339), expr)
	}
}

// TestParseRefusals: each refusal names its field.
func TestParseRefusals(t *testing.T) {
	t.Parallel()
	from, until := utc("2026-06-02T00:00:00Z"), utc("2026-06-01T00:00:00Z")
	for _, tc := range []struct {
		expr, zone  string
		from, until *time.Time
		field       string
	}{
		{"", "UTC", nil, nil, "schedule.cron"},
		{"0 0 * * * *", "UTC", nil, nil, "schedule.cron"}, // a seconds field
		{"0 * * *", "UTC", nil, nil, "schedule.cron"},
		{"@every 1h", "UTC", nil, nil, "schedule.cron"},
		{"@fortnightly", "UTC", nil, nil, "schedule.cron"},
		{"TZ=UTC 0 0 * * *", "UTC", nil, nil, "schedule.cron"},
		{"61 * * * *", "UTC", nil, nil, "schedule.cron"},
		{"*/0 * * * *", "UTC", nil, nil, "schedule.cron"},
		{"0 0 31 2 *", "UTC", nil, nil, "schedule.cron"}, // February 31st never comes
		{"0 0 * * *", "", nil, nil, "schedule.timezone"},
		{"0 0 * * *", "Local", nil, nil, "schedule.timezone"},
		{"0 0 * * *", "Mars/Olympus_Mons", nil, nil, "schedule.timezone"},
		{"0 0 * * *", "../../etc/passwd", nil, nil, "schedule.timezone"},
		{"0 0 * * *", "UTC", &from, &until, "schedule.until"},
	} {
		_, err := schedule.Parse(tc.expr, tc.zone, tc.from, tc.until, "schedule")
		l, ok := fielderr.As(err)
		require.True(t, ok, "%q in %q: %v", tc.expr, tc.zone, err)
		require.Equal(t, tc.field, l[0].Field, "%q in %q: %v", tc.expr, tc.zone, err)
	}
}

// TestPlayerZones: a schedule in each player's zone fires once per zone at
// its local time; zones sharing an offset share the instant.
func TestPlayerZones(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "0 20 * * *", schedule.PlayerZone)
	require.True(t, c.PerPlayer())
	var zones []schedule.Zone
	for _, name := range []string{"Europe/Berlin", "Asia/Shanghai", "America/New_York", "Asia/Singapore"} {
		loc, err := schedule.LoadZone(name)
		require.NoError(t, err)
		zones = append(zones, schedule.Zone{Name: name, Loc: loc})
	}
	require.Equal(t, zones, c.Zones(zones))

	at, firing, ok := c.NextIn(utc("2026-06-01T00:00:00Z"), zones)
	require.True(t, ok)
	require.Equal(t, utc("2026-06-01T12:00:00Z"), at.UTC())
	require.Equal(t, []string{"Asia/Shanghai", "Asia/Singapore"}, names(firing))

	var got []string
	for _, f := range c.Upcoming(utc("2026-06-01T00:00:00Z"), zones, 5) {
		got = append(got, f.At.UTC().Format(time.RFC3339)+" "+f.Zone.Name+" "+f.At.In(f.Zone.Loc).Format("15:04"))
	}
	require.Equal(t, []string{
		"2026-06-01T12:00:00Z Asia/Shanghai 20:00",
		"2026-06-01T12:00:00Z Asia/Singapore 20:00",
		"2026-06-01T18:00:00Z Europe/Berlin 20:00",
		"2026-06-02T00:00:00Z America/New_York 20:00",
		"2026-06-02T12:00:00Z Asia/Shanghai 20:00",
	}, got)

	own := mustParse(t, "0 20 * * *", "Asia/Shanghai")
	require.Equal(t, []string{"Asia/Shanghai"}, names(own.Zones(zones)), "a zoned schedule ignores player zones")
}

func names(zones []schedule.Zone) []string {
	var out []string
	for _, z := range zones {
		out = append(out, z.Name)
	}
	return out
}

// FuzzParse: no expression or zone makes Parse or Next panic, and Next only
// goes forward.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0 20 * * *", "*/15 9-17 * * 1-5", "@daily", "0 0 L * *", "5/0 * * * *", "0 0 29 2 *"} {
		f.Add(s, "Europe/Berlin")
	}
	f.Fuzz(func(t *testing.T, expr, zone string) {
		c, err := schedule.Parse(expr, zone, nil, nil, "schedule")
		if err != nil {
			return
		}
		after := utc("2026-10-25T00:00:00Z")
		if next, ok := c.Next(after, c.Location()); ok && !next.After(after) {
			t.Fatalf("%q in %q: %v is not after %v", expr, zone, next, after)
		}
	})
}

// TestZoneTagValues: a zone tag value spells its IANA zone with '.' for '/'.
func TestZoneTagValues(t *testing.T) {
	t.Parallel()
	for value, name := range map[string]string{
		"Asia.Shanghai": "Asia/Shanghai", "America.Argentina.Buenos_Aires": "America/Argentina/Buenos_Aires", "UTC": "UTC",
	} {
		z, err := schedule.ZoneOfValue(value)
		require.NoError(t, err, value)
		require.Equal(t, name, z.Name)
		require.Equal(t, name, z.Loc.String())
		require.Equal(t, value, schedule.TagValue(name))
	}
	for _, value := range []string{"Nowhere.Land", "Local", "", "..etc.passwd"} {
		_, err := schedule.ZoneOfValue(value)
		require.Error(t, err, value)
	}
}
