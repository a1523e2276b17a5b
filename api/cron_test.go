package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cronNotice is a notice every day at 20:00 in zone.
func cronNotice(zone string, changes map[string]any) map[string]any {
	c := notice(map[string]any{"schedule": map[string]any{"cron": "0 20 * * *", "timezone": zone}})
	for k, v := range changes {
		c[k] = v
	}
	return c
}

// TestCronCampaignOverHTTP: a recurring campaign shows its next five fires in
// UTC and in its zone, changes between fires, pauses and resumes (each change
// audited), and refuses what is invalid with 422 naming the field.
func TestCronCampaignOverHTTP(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	c := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", cronNotice("Asia/Shanghai", map[string]any{"ttl": "2h"}))
	require.Equal(t, "scheduled", c["status"])
	require.Equal(t, "2h", c["ttl"])
	require.NotContains(t, c, "expires_at")
	fires := c["next_fires"].([]any)
	require.Len(t, fires, 5)
	first := fires[0].(map[string]any)
	require.Equal(t, "Asia/Shanghai", first["timezone"])
	require.Contains(t, first["local"], "T20:00:00+08:00")
	require.Contains(t, first["at"], "T12:00:00Z")
	require.Equal(t, c["send_at"], first["at"])
	path := "/v1/games/g1/campaigns/" + c["id"].(string)

	c = s.must(http.StatusOK, "PATCH", path, map[string]any{"schedule": map[string]any{"cron": "30 9 * * 1-5", "timezone": "Europe/Berlin"}})
	require.Contains(t, c["next_fires"].([]any)[0].(map[string]any)["local"], "T09:30:00+01:00")
	c = s.must(http.StatusOK, "POST", path+"/pause", nil)
	require.Equal(t, "paused", c["status"])
	require.Empty(t, c["next_fires"])
	s.must(http.StatusOK, "POST", path+"/pause", nil)
	s.must(http.StatusOK, "PATCH", path, map[string]any{"name": "renamed while paused"})
	c = s.must(http.StatusOK, "GET", path, nil)
	require.Equal(t, "paused", c["status"], "a change keeps it paused")
	c = s.must(http.StatusOK, "POST", path+"/resume", nil)
	require.Equal(t, "scheduled", c["status"])
	require.Len(t, c["next_fires"], 5)
	list := s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns?status=scheduled", nil)
	require.Len(t, list["items"], 1)
	s.must(http.StatusOK, "POST", path+"/cancel", nil)
	s.must(http.StatusConflict, "POST", path+"/resume", nil)

	once := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"schedule": map[string]any{"at": time.Now().Add(time.Hour)}}))
	s.must(http.StatusConflict, "POST", "/v1/games/g1/campaigns/"+once["id"].(string)+"/pause", nil)

	audit := s.must(http.StatusOK, "GET", "/v1/audit?game=g1", nil)
	var actions []string
	for _, row := range audit["items"].([]any) {
		actions = append(actions, row.(map[string]any)["action"].(string))
	}
	require.Subset(t, actions, []string{"campaign.create", "campaign.update", "campaign.pause", "campaign.resume", "campaign.cancel"})

	for name, tc := range map[string]struct {
		body  map[string]any
		field string
	}{
		"seconds field":    {cronNotice("UTC", map[string]any{"schedule": map[string]any{"cron": "0 0 20 * * *", "timezone": "UTC"}}), "schedule.cron"},
		"unknown zone":     {cronNotice("Asia/Atlantis", nil), "schedule.timezone"},
		"window ended":     {cronNotice("UTC", map[string]any{"schedule": map[string]any{"cron": "@daily", "timezone": "UTC", "until": "2020-01-01T00:00:00Z"}}), "schedule.until"},
		"from after until": {cronNotice("UTC", map[string]any{"schedule": map[string]any{"cron": "@daily", "timezone": "UTC", "from": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"}}), "schedule.until"},
		"bad from":         {cronNotice("UTC", map[string]any{"schedule": map[string]any{"cron": "@daily", "timezone": "UTC", "from": "tomorrow"}}), "schedule.from"},
		"ttl too long":     {cronNotice("UTC", map[string]any{"ttl": "721h"}), "ttl"},
		"player, no tag":   {cronNotice("player", nil), "schedule.timezone"},
		"ad without ttl":   {cronNotice("UTC", map[string]any{"kind": "ad", "content": map[string]any{"image_url": "https://x/a.png"}}), "ttl"},
	} {
		problem := s.must(http.StatusUnprocessableEntity, "POST", "/v1/games/g1/campaigns", tc.body)
		require.Equal(t, []string{tc.field}, fields(problem), name)
	}
}

// TestZoneTag: a game declares one enumerated tag of IANA zones (written with
// . for /) as its players' zones; campaigns in players' time then fire per
// zone, and the tag cannot go while one is scheduled.
func TestZoneTag(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	for body, field := range map[string]string{
		`{"zone_tag": "tz"}`:     "zone_tag",
		`{"zone_tag": "level"}`:  "zone_tag",
		`{"zone_tag": "region"}`: "tags.region.values[0]",
	} {
		problem := s.must(http.StatusUnprocessableEntity, "PATCH", "/v1/games/g1", body)
		require.Equal(t, field, fields(problem)[0], body)
	}
	g := s.must(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{
		"tags": map[string]any{
			"level": map[string]any{"bands": [][2]int{{1, 29}, {30, 39}}},
			"tz":    map[string]any{"values": []string{"Asia.Shanghai", "Europe.Berlin"}},
		},
		"zone_tag": "tz",
	})
	require.Equal(t, "tz", g["zone_tag"])
	c := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", cronNotice("player", nil))
	var zones []string
	for _, f := range c["next_fires"].([]any)[:2] {
		zones = append(zones, f.(map[string]any)["timezone"].(string))
	}
	require.ElementsMatch(t, []string{"Asia/Shanghai", "Europe/Berlin"}, zones)
	problem := s.must(http.StatusUnprocessableEntity, "PATCH", "/v1/games/g1", map[string]any{"zone_tag": ""})
	require.Equal(t, []string{"zone_tag"}, fields(problem))
	s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+c["id"].(string)+"/cancel", nil)
	g = s.must(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{"zone_tag": ""})
	require.NotContains(t, g, "zone_tag")
}
