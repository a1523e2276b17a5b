package campaigns_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/internal/clocktest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// cronFixture is a database with game g1 (a level tag and, as its zone tag,
// tz) and a campaign store on a clock the test moves, starting at 03:00 UTC
// on June 1st, 2026.
type cronFixture struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	clock *clocktest.Clock
	store *campaigns.Store
}

var fixtureStart = time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)

func newCronFixture(t *testing.T) cronFixture {
	t.Helper()
	pool, _ := dbtest.NewPool(t)
	clock := clocktest.New(fixtureStart)
	f := cronFixture{ctx: audit.WithActor(context.Background(), audit.Actor{Name: "test"}), pool: pool, clock: clock,
		store: campaigns.NewStore(pool, 0).WithClock(clock.Now)}
	_, err := games.NewStore(pool).Create(f.ctx, games.Game{ID: "g1", Name: "g1", DefaultLocale: "en", ZoneTag: "tz",
		Tags: map[string]games.Tag{
			"level": {Bands: []games.Band{{1, 29}, {30, 39}, {40, 99}}},
			"tz":    {Values: []string{"Asia.Shanghai", "Asia.Singapore", "Europe.Berlin"}},
		}})
	require.NoError(t, err)
	return f
}

// create stores the campaign described by the JSON body.
func (f cronFixture) create(t *testing.T, body string) campaigns.Campaign {
	t.Helper()
	c, err := f.store.Create(f.ctx, "g1", input(t, body))
	require.NoError(t, err)
	return c
}

func input(t *testing.T, body string) campaigns.Input {
	t.Helper()
	var in campaigns.Input
	require.NoError(t, json.Unmarshal([]byte(body), &in))
	return in
}

// fireAt moves the clock to now (it never goes back) and runs FireDue then,
// with a 5-minute grace.
func (f cronFixture) fireAt(t *testing.T, now time.Time) int {
	t.Helper()
	if d := now.Sub(f.clock.Now()); d > 0 {
		f.clock.Add(d)
	}
	n, err := f.store.FireDue(f.ctx, now, 5*time.Minute)
	require.NoError(t, err)
	return n
}

func (f cronFixture) get(t *testing.T, id uuid.UUID) campaigns.Campaign {
	t.Helper()
	c, err := f.store.Get(f.ctx, "g1", id)
	require.NoError(t, err)
	return c
}

// published marks every send of campaign id published, as the fan-out would.
func (f cronFixture) published(t *testing.T, id uuid.UUID) {
	t.Helper()
	_, err := f.pool.Exec(f.ctx, `UPDATE dispatches SET state = 'published' WHERE campaign_id = $1 AND state = 'pending'`, id)
	require.NoError(t, err)
}

const shanghaiAd = `{"kind":"ad","name":"evening ad","audience":{"rule":{"tag":"level","between":[30,39]}},
	"content":{"image_url":"https://cdn.example/ad.png","click_url":"https://example.com"},
	"schedule":{"cron":"0 20 * * *","timezone":"Asia/Shanghai"},"ttl":"2h"}`

// TestCronCampaignFiresEveryDay: the example, every day at 20:00
// Asia/Shanghai to level 30-39, an ad valid for 2 hours. Each fire is one
// dispatch expiring 2 hours after it; the campaign stays scheduled between
// fires and shows its next five fires in UTC and in Shanghai time.
func TestCronCampaignFiresEveryDay(t *testing.T) {
	t.Parallel()
	f := newCronFixture(t)
	c := f.create(t, shanghaiAd)
	require.Equal(t, campaigns.StatusScheduled, c.Status)
	require.Zero(t, c.ExpiresAt)
	require.Equal(t, "2h", c.TTL.String())
	first := c.SendAt
	require.Equal(t, 12, first.UTC().Hour(), "20:00 in Shanghai is 12:00 UTC")
	require.Equal(t, time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), first.UTC(), "the first 20:00 in Shanghai after 03:00 UTC")
	require.Len(t, c.NextFires, 5)
	for i, nf := range c.NextFires {
		require.Equal(t, first.Add(time.Duration(i)*24*time.Hour).UTC(), nf.At)
		require.Equal(t, "Asia/Shanghai", nf.Timezone)
		require.Equal(t, nf.At.In(mustZone(t, "Asia/Shanghai")).Format(time.RFC3339), nf.Local)
		require.Contains(t, nf.Local, "T20:00:00+08:00")
	}

	require.Zero(t, f.fireAt(t, first.Add(-time.Second)), "not due yet")
	require.Equal(t, 1, f.fireAt(t, first.Add(time.Second)))
	require.Zero(t, f.fireAt(t, first.Add(time.Second)), "a fire is recorded once")
	c = f.get(t, c.ID)
	require.Equal(t, campaigns.StatusScheduled, c.Status, "a recurring campaign stays scheduled")
	require.Equal(t, first.Add(24*time.Hour), c.SendAt)
	require.Len(t, c.Dispatches, 1)
	d := c.Dispatches[0]
	require.Equal(t, first, d.FireAt)
	require.Equal(t, dispatch.StatePending, d.State)
	require.Equal(t, first.Add(2*time.Hour), d.ExpiresAt)

	f.published(t, c.ID)
	require.Equal(t, 1, f.fireAt(t, first.Add(24*time.Hour)))
	c = f.get(t, c.ID)
	require.Len(t, c.Dispatches, 2, "one dispatch per fire")
	require.Equal(t, first.Add(24*time.Hour), c.Dispatches[1].FireAt)
	require.Equal(t, first.Add(26*time.Hour), c.Dispatches[1].ExpiresAt)
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

// TestCronOverlap: a fire that comes while the previous send of the campaign
// is still publishing is recorded skipped, with the reason; one that comes
// while the previous send is published but still live takes its place: the
// previous one is marked for clearing.
func TestCronOverlap(t *testing.T) {
	t.Parallel()
	f := newCronFixture(t)
	c := f.create(t, `{"kind":"notice","name":"hourly","audience":{"rule":{"everyone":true}},
		"content":{"title":{"en":"t"},"body":{"en":"b"}},"schedule":{"cron":"@hourly","timezone":"UTC"},"ttl":"3h"}`)
	first := c.SendAt
	require.Equal(t, 1, f.fireAt(t, first))
	require.Equal(t, 1, f.fireAt(t, first.Add(time.Hour))) // the first is still pending
	c = f.get(t, c.ID)
	require.Equal(t, dispatch.StateSkipped, c.Dispatches[1].State)
	require.Contains(t, c.Dispatches[1].Note, "still publishing")

	f.published(t, c.ID)
	require.Equal(t, 1, f.fireAt(t, first.Add(2*time.Hour)))
	c = f.get(t, c.ID)
	require.Equal(t, dispatch.StatePending, c.Dispatches[2].State)
	var reason string
	require.NoError(t, f.pool.QueryRow(f.ctx, `SELECT clear_reason FROM dispatches WHERE id = $1`, c.Dispatches[0].ID).Scan(&reason))
	require.Equal(t, "replace", reason, "the live send is cleared before the next one takes its topics")
}

// TestCronMisfire: a fire found later than the misfire grace is recorded
// missed, and so are the missed fires after it; the first within the grace is
// sent late.
func TestCronMisfire(t *testing.T) {
	t.Parallel()
	f := newCronFixture(t)
	c := f.create(t, `{"kind":"notice","name":"daily","audience":{"rule":{"everyone":true}},
		"content":{"title":{"en":"t"},"body":{"en":"b"}},"schedule":{"cron":"0 9 * * *","timezone":"Europe/Berlin"},
		"misfire_grace":"10m"}`)
	require.Equal(t, "10m", c.MisfireGrace.String())
	first := c.SendAt
	// No leader for three days: back four minutes after the fourth fire.
	now := first.Add(3*24*time.Hour + 4*time.Minute)
	require.Equal(t, 2, f.fireAt(t, now), "the missed fires in one transaction, the late one in another")
	c = f.get(t, c.ID)
	require.Len(t, c.Dispatches, 4)
	for i, d := range c.Dispatches[:3] {
		require.Equal(t, first.Add(time.Duration(i)*24*time.Hour), d.FireAt)
		require.Equal(t, dispatch.StateMissed, d.State)
		require.Contains(t, d.Note, "past the misfire grace of 10m")
	}
	require.Equal(t, first.Add(3*24*time.Hour), c.Dispatches[3].FireAt)
	require.Equal(t, dispatch.StatePending, c.Dispatches[3].State, "the fourth is sent four minutes late, within the grace")
	require.Equal(t, first.Add(4*24*time.Hour), c.SendAt)
}

// TestCronPauseResume: a paused campaign fires nothing, not even late when it
// is resumed; resumed, it fires from its next time after now.
func TestCronPauseResume(t *testing.T) {
	t.Parallel()
	f := newCronFixture(t)
	c := f.create(t, shanghaiAd)
	first := c.SendAt
	c, err := f.store.Pause(f.ctx, "g1", c.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StatusPaused, c.Status)
	require.Empty(t, c.NextFires)

	c, err = f.store.Resume(f.ctx, "g1", c.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StatusScheduled, c.Status)
	require.Equal(t, first, c.SendAt, "resumed before its fire, it keeps it")
	require.Len(t, c.NextFires, 5)

	_, err = f.store.Pause(f.ctx, "g1", c.ID)
	require.NoError(t, err)
	// Paused across its fire: the fire at `first` is not sent, not even late
	// (within the grace) when it resumes a minute after.
	require.Zero(t, f.fireAt(t, first.Add(time.Minute)), "a paused campaign does not fire")
	c, err = f.store.Resume(f.ctx, "g1", c.ID)
	require.NoError(t, err)
	require.Equal(t, first.Add(24*time.Hour), c.SendAt, "resumed from now: the next day's fire")
	require.Zero(t, f.fireAt(t, first.Add(2*time.Minute)))
	require.Empty(t, f.get(t, c.ID).Dispatches)

	once := f.create(t, `{"kind":"notice","name":"once","audience":{"rule":{"everyone":true}},
		"content":{"title":{"en":"t"},"body":{"en":"b"}},"schedule":{"at":"2099-01-01T00:00:00Z"}}`)
	_, err = f.store.Pause(f.ctx, "g1", once.ID)
	require.ErrorIs(t, err, campaigns.ErrNotRecurring)
	_, err = f.store.Cancel(f.ctx, "g1", c.ID)
	require.NoError(t, err)
	_, err = f.store.Resume(f.ctx, "g1", c.ID)
	require.ErrorIs(t, err, campaigns.ErrEnded)
}

// TestCronUntil: the last fire before until completes the campaign.
func TestCronUntil(t *testing.T) {
	t.Parallel()
	f := newCronFixture(t)
	from := fixtureStart.Add(48 * time.Hour).Truncate(24 * time.Hour) // midnight UTC, two days on
	until := from.Add(24 * time.Hour)
	c := f.create(t, `{"kind":"notice","name":"two nights","audience":{"rule":{"everyone":true}},
		"content":{"title":{"en":"t"},"body":{"en":"b"}},"schedule":{"cron":"@daily","timezone":"UTC","from":"`+
		from.Format(time.RFC3339)+`","until":"`+until.Format(time.RFC3339)+`"}}`)
	require.Equal(t, from, c.SendAt.UTC(), "from is included")
	require.Len(t, c.NextFires, 2, "until is included too")
	require.Equal(t, 1, f.fireAt(t, from))
	f.published(t, c.ID)
	require.Equal(t, 1, f.fireAt(t, until))
	c = f.get(t, c.ID)
	require.Equal(t, campaigns.StatusCompleted, c.Status)
	require.Len(t, c.Dispatches, 2)
	require.Empty(t, c.NextFires)
}

// TestCronDaylightSaving: fired by the store through the 2027 changes, a daily
// 02:30 fires once on the day 02:30 is skipped (at 03:00, the end of the gap)
// and once on the day the clocks go back, in America/New_York and in
// Europe/Berlin.
func TestCronDaylightSaving(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone, from string
		want       []string
	}{
		{"America/New_York", "2027-03-13T00:00:00-05:00", []string{"2027-03-13T07:30:00Z", "2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"}},
		{"America/New_York", "2027-11-06T00:00:00-04:00", []string{"2027-11-06T06:30:00Z", "2027-11-07T07:30:00Z", "2027-11-08T07:30:00Z"}},
		{"Europe/Berlin", "2027-03-27T00:00:00+01:00", []string{"2027-03-27T01:30:00Z", "2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"}},
		{"Europe/Berlin", "2027-10-30T00:00:00+02:00", []string{"2027-10-30T00:30:00Z", "2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"}},
	} {
		f := newCronFixture(t)
		c := f.create(t, `{"kind":"notice","name":"night","audience":{"rule":{"everyone":true}},
			"content":{"title":{"en":"t"},"body":{"en":"b"}},"schedule":{"cron":"30 2 * * *","timezone":"`+tc.zone+`","from":"`+tc.from+`"}}`)
		var fires []string
		for range tc.want {
			at := f.get(t, c.ID).SendAt
			require.Equal(t, 1, f.fireAt(t, at))
			f.published(t, c.ID)
			fires = append(fires, at.UTC().Format(time.RFC3339))
		}
		require.Equal(t, tc.want, fires, "%s from %s", tc.zone, tc.from)
	}
}

// TestCronPlayerZones: in "player" time a campaign fires once per zone of the
// game's zone tag at its local time, each fire a dispatch to that zone's tag
// topic; zones sharing an offset fire together.
func TestCronPlayerZones(t *testing.T) {
	t.Parallel()
	f := newCronFixture(t)
	c := f.create(t, `{"kind":"notice","name":"local evening","audience":{"rule":{"tag":"level","between":[30,39]}},
		"content":{"title":{"en":"t"},"body":{"en":"b"}},"schedule":{"cron":"0 20 * * *","timezone":"player"}}`)
	require.Equal(t, int64(3), c.Plan.Topics, "one topic per zone")
	require.Len(t, c.NextFires, 5)
	require.Equal(t, []string{"Asia/Shanghai", "Asia/Singapore", "Europe/Berlin"},
		[]string{c.NextFires[0].Timezone, c.NextFires[1].Timezone, c.NextFires[2].Timezone})
	for _, nf := range c.NextFires {
		require.Contains(t, nf.Local, "T20:00:00")
	}
	asia := c.SendAt
	require.Equal(t, 1, f.fireAt(t, asia))
	c = f.get(t, c.ID)
	require.Len(t, c.Dispatches, 2, "Shanghai and Singapore fire at the same instant")
	require.Equal(t, "Asia/Shanghai", c.Dispatches[0].Zone)
	require.Equal(t, "Asia/Singapore", c.Dispatches[1].Zone)
	var targets string
	require.NoError(t, f.pool.QueryRow(f.ctx, `SELECT targets::text FROM dispatches WHERE id = $1`, c.Dispatches[0].ID).Scan(&targets))
	require.JSONEq(t, `[{"scope":"tag","keys":["tz","Asia.Shanghai"],"filter":{"tag":"level","between":[30,39]}}]`, targets)
	require.Equal(t, c.NextFires[0].At, c.SendAt.UTC())
	require.Equal(t, "Europe/Berlin", c.NextFires[0].Timezone, "next: 20:00 in Berlin")
	require.Equal(t, 1, f.fireAt(t, c.SendAt))
	c = f.get(t, c.ID)
	require.Len(t, c.Dispatches, 3)
	require.Equal(t, "Europe/Berlin", c.Dispatches[2].Zone)

	// Without a zone tag there is no player time.
	_, err := games.NewStore(f.pool).Create(f.ctx, games.Game{ID: "g2", Name: "g2", DefaultLocale: "en"})
	require.NoError(t, err)
	_, err = f.store.Create(f.ctx, "g2", input(t, `{"kind":"notice","name":"n","audience":{"rule":{"everyone":true}},
		"content":{"title":{"en":"t"},"body":{"en":"b"}},"schedule":{"cron":"0 20 * * *","timezone":"player"}}`))
	requireField(t, err, "schedule.timezone")
}

func requireField(t *testing.T, err error, field string) {
	t.Helper()
	l, ok := fielderr.As(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, field, l[0].Field, l.Error())
}

// TestCronRefusals: what a recurring campaign must not have, each refused
// with the field named.
func TestCronRefusals(t *testing.T) {
	t.Parallel()
	f := newCronFixture(t)
	const audience = `"audience":{"rule":{"everyone":true}},"content":{"title":{"en":"t"},"body":{"en":"b"}}`
	for body, field := range map[string]string{
		`{"kind":"notice","name":"n",` + audience + `,"schedule":{"cron":"0 20 * * * *","timezone":"UTC"}}`:                                                   "schedule.cron",
		`{"kind":"notice","name":"n",` + audience + `,"schedule":{"cron":"@every 1h","timezone":"UTC"}}`:                                                      "schedule.cron",
		`{"kind":"notice","name":"n",` + audience + `,"schedule":{"cron":"0 20 * * *","timezone":"Mars/Base"}}`:                                               "schedule.timezone",
		`{"kind":"notice","name":"n",` + audience + `,"schedule":{"cron":"0 20 * * *"}}`:                                                                      "schedule.timezone",
		`{"kind":"notice","name":"n",` + audience + `,"schedule":{"cron":"0 20 * * *","timezone":"UTC","until":"2001-01-01T00:00:00Z"}}`:                      "schedule.until",
		`{"kind":"notice","name":"n",` + audience + `,"schedule":{"at":"2099-01-01T00:00:00Z","cron":"0 20 * * *"}}`:                                          "schedule",
		`{"kind":"notice","name":"n",` + audience + `,"schedule":{"cron":"0 20 * * *","timezone":"UTC"},"expires_at":"2099-01-01T00:00:00Z"}`:                 "expires_at",
		`{"kind":"notice","name":"n",` + audience + `,"schedule":{"cron":"0 20 * * *","timezone":"UTC"},"ttl":"800h"}`:                                        "ttl",
		`{"kind":"notice","name":"n",` + audience + `,"schedule":{"cron":"0 20 * * *","timezone":"UTC"},"ttl":"2 hours"}`:                                     "ttl",
		`{"kind":"notice","name":"n",` + audience + `,"schedule":{"cron":"0 20 * * *","timezone":"UTC"},"misfire_grace":"48h"}`:                               "misfire_grace",
		`{"kind":"notice","name":"n",` + audience + `,"ttl":"1h","expires_at":"2099-01-01T00:00:00Z"}`:                                                        "ttl",
		`{"kind":"marquee","name":"n","audience":{"rule":{"everyone":true}},"content":{"text":{"en":"t"}},"schedule":{"cron":"0 20 * * *","timezone":"UTC"}}`: "ttl",
	} {
		_, err := f.store.Create(f.ctx, "g1", input(t, body))
		requireField(t, err, field)
	}
}
