package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// notice returns a valid notice campaign body to everyone, with changes applied.
func notice(changes map[string]any) map[string]any {
	c := map[string]any{
		"kind": "notice", "name": "n", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content": map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": "b"}},
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func TestCampaignValidation(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	soon := time.Now().Add(time.Hour)
	cases := []struct {
		name   string
		body   any
		status int
		fields []string
	}{
		{"no kind", notice(map[string]any{"kind": nil}), 422, []string{"kind"}},
		{"kick-out as a campaign", notice(map[string]any{"kind": "kickout"}), 422, []string{"kind"}},
		{"unknown kind", notice(map[string]any{"kind": "popup"}), 422, []string{"kind"}},
		{"no name", notice(map[string]any{"name": ""}), 422, []string{"name"}},
		{"priority out of range", notice(map[string]any{"priority": 10}), 422, []string{"priority"}},
		{"no audience", notice(map[string]any{"audience": nil}), 422, []string{"audience"}},
		{"both audiences", notice(map[string]any{"audience": map[string]any{"segment_id": "01a214d1-eb0d-78a0-a273-2ad44985fccd", "rule": map[string]any{"everyone": true}}}), 422, []string{"audience"}},
		{"bad rule deep inside", notice(map[string]any{"audience": map[string]any{"rule": map[string]any{"and": []any{map[string]any{"tag": "region", "in": []string{"mars"}}}}}}), 422, []string{"audience.rule.and[0].in[0]"}},
		{"malformed rule", notice(map[string]any{"audience": map[string]any{"rule": map[string]any{"colour": "red"}}}), 422, []string{"audience.rule.colour"}},
		{"unknown segment", notice(map[string]any{"audience": map[string]any{"segment_id": "01a214d1-eb0d-78a0-a273-2ad44985fccd"}}), 422, []string{"audience.segment_id"}},
		{"inline members", notice(map[string]any{"audience": map[string]any{"rule": map[string]any{"members": true}}}), 422, []string{"audience.rule"}},
		{"default locale missing", notice(map[string]any{"content": map[string]any{"title": map[string]any{"fr": "t"}, "body": map[string]any{"en": "b"}}}), 422, []string{"content.title"}},
		{"no content", notice(map[string]any{"content": nil}), 422, []string{"content"}},
		{"marquee without expiry", notice(map[string]any{"kind": "marquee", "content": map[string]any{"text": map[string]any{"en": "x"}}}), 422, []string{"expires_at"}},
		{"ad without expiry", notice(map[string]any{"kind": "ad", "content": map[string]any{"image_url": "https://x/a.png"}}), 422, []string{"expires_at"}},
		{"expiry over 30 days", notice(map[string]any{"expires_at": time.Now().Add(31 * 24 * time.Hour)}), 422, []string{"expires_at"}},
		{"expiry in the past", notice(map[string]any{"expires_at": time.Now().Add(-time.Hour)}), 422, []string{"expires_at"}},
		{"starts after expiry", notice(map[string]any{"expires_at": soon, "starts_at": soon.Add(time.Minute)}), 422, []string{"starts_at"}},
		{"schedule in the past", notice(map[string]any{"schedule": map[string]any{"at": time.Now().Add(-time.Hour)}}), 422, []string{"schedule.at"}},
		{"empty schedule", notice(map[string]any{"schedule": map[string]any{}}), 422, []string{"schedule"}},
		{"content too large", notice(map[string]any{"content": map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": strings.Repeat("x", 4000), "zh-CN": strings.Repeat("y", 4000), "fr": strings.Repeat("z", 4000), "de": strings.Repeat("w", 4000), "es": strings.Repeat("v", 4000)}}}), 422, []string{"content"}},
		{"unknown field", notice(map[string]any{"colour": "red"}), 400, []string{"colour"}},
		{"time not RFC 3339", notice(map[string]any{"expires_at": "tomorrow"}), 422, []string{"expires_at"}},
		{"time of the wrong type", notice(map[string]any{"starts_at": 1767225600}), 400, []string{"starts_at"}},
		{"expiry past year 9999 in UTC", notice(map[string]any{"expires_at": "9999-12-31T23:59:59-23:59"}), 422, []string{"expires_at"}},
		{"expiry after 2100", notice(map[string]any{"expires_at": "2101-01-01T00:00:00Z"}), 422, []string{"expires_at"}},
		{"start before year 1 in UTC", notice(map[string]any{"starts_at": "0000-01-01T00:00:00+01:00"}), 422, []string{"starts_at"}},
		{"schedule in year 0", notice(map[string]any{"schedule": map[string]any{"at": "0000-01-01T00:00:00+01:00"}}), 422, []string{"schedule.at"}},
		{"schedule not a time", notice(map[string]any{"schedule": map[string]any{"at": "tonight"}}), 422, []string{"schedule.at"}},
		{"schedule far ahead", notice(map[string]any{"schedule": map[string]any{"at": "9999-01-01T00:00:00Z"}}), 422, []string{"schedule.at"}},
		{"control character in name", notice(map[string]any{"name": "evil\x1b[2J"}), 422, []string{"name"}},
		{"NUL in name", notice(map[string]any{"name": "a\x00b"}), 422, []string{"name"}},
		{"invalid UTF-8 in name", []byte("{\"kind\":\"notice\",\"name\":\"bad\xff\"}"), 422, []string{"name"}},
		{"invalid UTF-8 in text", []byte("{\"kind\":\"notice\",\"name\":\"n\",\"content\":{\"title\":{\"en\":\"t\"},\"body\":{\"en\":\"\xc3(\"}}}"), 422, []string{"content.body.en"}},
		{"escape sequence in text", notice(map[string]any{"content": map[string]any{"title": map[string]any{"en": "t\x1b[2J"}, "body": map[string]any{"en": "b"}}}), 422, []string{"content.title.en"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, problem := s.do("POST", "/v1/games/g1/campaigns", c.body)
			require.Equal(t, c.status, status, "%v", problem)
			require.Equal(t, c.fields, fields(problem), "%v", problem)
		})
	}
	page := s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns", nil)
	require.Empty(t, page["items"], "nothing refused was stored")
	s.must(http.StatusNotFound, "POST", "/v1/games/nope/campaigns", notice(nil))
}

func TestCampaignDryRunStoresNothing(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	preview := s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns?dry_run=true", notice(map[string]any{
		"audience": map[string]any{"rule": map[string]any{"tag": "level", "between": []int{25, 39}}}, "priority": 2,
	}))
	require.Equal(t, map[string]any{"exact": false, "topics": 2.0, "players": nil,
		"players_note": "unknown: the plan publishes to tag topics, and Herald does not know how many players subscribe to them", "targets": []any{
			map[string]any{"topic": "herald/g1/tag/level/20-29", "filter": map[string]any{"tag": "level", "between": []any{25.0, 39.0}}},
			map[string]any{"topic": "herald/g1/tag/level/30-39"},
		}}, preview["plan"])
	env := preview["envelope"].(map[string]any)
	require.Equal(t, "notice", env["kind"])
	require.Equal(t, 2.0, env["priority"])
	require.Equal(t, map[string]any{"tag": "level", "between": []any{25.0, 39.0}}, env["filter"])
	require.Equal(t, "live", preview["campaign"].(map[string]any)["status"])
	page := s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns", nil)
	require.Empty(t, page["items"])
}

func TestCampaignPatchListAndCancel(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	later := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"schedule": map[string]any{"at": at}, "name": "later"}))
	id := later["id"].(string)
	require.Equal(t, "scheduled", later["status"])
	require.Equal(t, at.Format(time.RFC3339), later["send_at"])
	require.Equal(t, at.Add(7*24*time.Hour).Format(time.RFC3339), later["expires_at"], "a notice lives 7 days from its send time")

	patched := s.must(http.StatusOK, "PATCH", "/v1/games/g1/campaigns/"+id, map[string]any{"name": "renamed", "priority": 9})
	require.Equal(t, "renamed", patched["name"])
	require.Equal(t, 9.0, patched["priority"])
	bad := s.must(http.StatusUnprocessableEntity, "PATCH", "/v1/games/g1/campaigns/"+id, map[string]any{"priority": -1})
	require.Equal(t, []string{"priority"}, fields(bad))

	now := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"name": "now", "kind": "ad",
		"content": map[string]any{"image_url": "https://cdn.example.com/a.png"}, "expires_at": time.Now().Add(time.Hour)}))
	require.Equal(t, "live", now["status"])
	require.Len(t, now["dispatches"], 1)
	s.must(http.StatusConflict, "PATCH", "/v1/games/g1/campaigns/"+now["id"].(string), map[string]any{"name": "too late"})

	ads := s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns?kind=ad", nil)["items"].([]any)
	require.Len(t, ads, 1)
	require.Equal(t, "now", ads[0].(map[string]any)["name"])
	scheduled := s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns?status=scheduled", nil)["items"].([]any)
	require.Len(t, scheduled, 1)
	require.Equal(t, "renamed", scheduled[0].(map[string]any)["name"])
	badFilter := s.must(http.StatusUnprocessableEntity, "GET", "/v1/games/g1/campaigns?status=gone&kind=popup", nil)
	require.Equal(t, []string{"status", "kind"}, fields(badFilter))

	canceled := s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+id+"/cancel", nil)
	require.Equal(t, "canceled", canceled["status"])
	s.must(http.StatusConflict, "PATCH", "/v1/games/g1/campaigns/"+id, map[string]any{"name": "again"})
	dispatches := s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+now["id"].(string)+"/dispatches", nil)
	require.Len(t, dispatches["items"], 1)
	require.Equal(t, "pending", dispatches["items"].([]any)[0].(map[string]any)["state"])
	recalled := s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+now["id"].(string)+"/cancel", nil)
	require.Equal(t, "recalling", recalled["dispatches"].([]any)[0].(map[string]any)["state"],
		"the cancel answers with the state it produced: no worker runs here to clear it")

	s.must(http.StatusNotFound, "GET", "/v1/games/g1/campaigns/not-an-id", nil)
	s.must(http.StatusNotFound, "POST", "/v1/games/g1/campaigns/01a214d1-eb0d-78a0-a273-2ad44985fccd/cancel", nil)
	s.must(http.StatusNotFound, "GET", "/v1/games/g2/campaigns/"+id, nil)
}

func TestSegmentInUseCannotBeDeleted(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	seg := s.must(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "all", "rule": map[string]any{"everyone": true}})
	s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"audience": map[string]any{"segment_id": seg["id"]}}))
	s.must(http.StatusConflict, "DELETE", "/v1/games/g1/segments/"+seg["id"].(string), nil)
}
