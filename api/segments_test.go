package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSegmentLifecycle(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	rule := map[string]any{"and": []any{
		map[string]any{"tag": "region", "in": []string{"eu"}},
		map[string]any{"tag": "level", "between": []int{30, 39}},
	}}
	created := s.must(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "eu veterans", "rule": rule})
	id := created["id"].(string)
	require.Equal(t, "g1", created["game"])
	require.EqualValues(t, 0, created["member_count"])

	got := s.must(http.StatusOK, "GET", "/v1/games/g1/segments/"+id, nil)
	require.Equal(t, "eu veterans", got["name"])
	require.Equal(t, map[string]any{"and": []any{
		map[string]any{"tag": "region", "in": []any{"eu"}},
		map[string]any{"tag": "level", "between": []any{30.0, 39.0}},
	}}, got["rule"])

	patched := s.must(http.StatusOK, "PATCH", "/v1/games/g1/segments/"+id, map[string]any{"rule": map[string]any{"server": []string{"s1"}}})
	require.Equal(t, "eu veterans", patched["name"], "a PATCH without name keeps it")
	require.Equal(t, map[string]any{"server": []any{"s1"}}, patched["rule"])
	patched = s.must(http.StatusOK, "PATCH", "/v1/games/g1/segments/"+id, map[string]any{"name": "shard one"})
	require.Equal(t, map[string]any{"server": []any{"s1"}}, patched["rule"], "a PATCH without rule keeps it")

	bad := s.must(http.StatusUnprocessableEntity, "PATCH", "/v1/games/g1/segments/"+id, map[string]any{"rule": map[string]any{"tag": "region", "in": []string{"mars"}}})
	require.Equal(t, []string{"rule.in[0]"}, fields(bad))

	s.must(http.StatusNoContent, "DELETE", "/v1/games/g1/segments/"+id, nil)
	s.must(http.StatusNotFound, "GET", "/v1/games/g1/segments/"+id, nil)
	s.must(http.StatusNotFound, "DELETE", "/v1/games/g1/segments/"+id, nil)
	s.must(http.StatusNotFound, "GET", "/v1/games/g1/segments/not-a-uuid", nil)
	s.must(http.StatusNotFound, "POST", "/v1/games/nope/segments", map[string]any{"name": "x", "rule": map[string]any{"everyone": true}})
	s.must(http.StatusNotFound, "GET", "/v1/games/nope/segments", nil)
}

func TestSegmentOfAnotherGameIsNotFound(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	s.createGame("g2")
	created := s.must(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "all", "rule": map[string]any{"everyone": true}})
	s.must(http.StatusNotFound, "GET", "/v1/games/g2/segments/"+created["id"].(string), nil)
	s.must(http.StatusNotFound, "DELETE", "/v1/games/g2/segments/"+created["id"].(string), nil)
}

func TestSegmentListPagination(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	var want []string
	for i := range 7 {
		seg := s.must(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": fmt.Sprint("seg", i), "rule": map[string]any{"everyone": true}})
		want = append(want, seg["name"].(string))
	}
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5, "pagination must end")
		page := s.must(http.StatusOK, "GET", "/v1/games/g1/segments?limit=3&cursor="+cursor, nil)
		for _, item := range page["items"].([]any) {
			seen = append(seen, item.(map[string]any)["name"].(string))
		}
		next, ok := page["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	require.Equal(t, want, seen, "every segment once, in creation order")
	bad := s.must(http.StatusUnprocessableEntity, "GET", "/v1/games/g1/segments?cursor=garbage", nil)
	require.Equal(t, []string{"cursor"}, fields(bad))
}

func TestSegmentRuleErrorsNameThePath(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	cases := []struct {
		name   string
		rule   string
		status int
		fields []string
	}{
		{"undeclared value deep in the rule", `{"and":[{"everyone":true},{"tag":"region","in":["eu","mars"]}]}`, 422, []string{"rule.and[1].in[1]"}},
		{"unknown tag", `{"or":[{"tag":"colour","in":["red"]}]}`, 422, []string{"rule.or[0].tag"}},
		{"band that does not exist", `{"tag":"level","between":[100,200]}`, 422, []string{"rule.between"}},
		{"between on an enumeration", `{"tag":"region","between":[1,2]}`, 422, []string{"rule.between"}},
		{"in on bands", `{"tag":"level","in":["1-9"]}`, 422, []string{"rule.in"}},
		{"bad player id", `{"players":["p1","p/2"]}`, 422, []string{"rule.players[1]"}},
		{"bad server id", `{"server":["#"]}`, 422, []string{"rule.server[0]"}},
		{"negated members", `{"not":{"and":[{"members":true},{"everyone":true}]}}`, 422, []string{"rule.not.and[0].members"}},
		{"two forms in one object", `{"everyone":true,"server":["s1"]}`, 422, []string{"rule.server"}},
		{"unknown key", `{"and":[{"colour":"red"}]}`, 422, []string{"rule.and[0].colour"}},
		{"empty and", `{"and":[]}`, 422, []string{"rule.and"}},
		{"null rule", `null`, 422, []string{"rule"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, problem := s.do("POST", "/v1/games/g1/segments", `{"name":"n","rule":`+c.rule+`}`)
			require.Equal(t, c.status, status, "%v", problem)
			require.Equal(t, c.fields, fields(problem), "%v", problem)
		})
	}
	missing := s.must(http.StatusUnprocessableEntity, "POST", "/v1/games/g1/segments", `{"name":"n"}`)
	require.Equal(t, []string{"rule"}, fields(missing))
	noName := s.must(http.StatusUnprocessableEntity, "POST", "/v1/games/g1/segments", `{"rule":{"everyone":true}}`)
	require.Equal(t, []string{"name"}, fields(noName))
	page := s.must(http.StatusOK, "GET", "/v1/games/g1/segments", nil)
	require.Empty(t, page["items"], "nothing refused was stored")
}

func TestGameTagChangeMustKeepSegmentsValid(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	s.must(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "asians", "rule": map[string]any{"tag": "region", "in": []string{"asia"}}})
	refused := s.must(http.StatusUnprocessableEntity, "PATCH", "/v1/games/g1", map[string]any{"tags": map[string]any{"region": map[string]any{"values": []string{"eu", "na"}}}})
	require.Equal(t, []string{"tags"}, fields(refused))
	require.Contains(t, refused["detail"], "asians")
	got := s.must(http.StatusOK, "GET", "/v1/games/g1", nil)
	require.Len(t, got["tags"], 2, "the refused schema was not stored")
	require.True(t, strings.Contains(fmt.Sprint(got["tags"]), "asia"))

	s.must(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{"tags": map[string]any{"region": map[string]any{"values": []string{"asia", "oceania"}}}})

	later := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{
		"name": "oceania only", "schedule": map[string]any{"at": time.Now().Add(time.Hour)},
		"audience": map[string]any{"rule": map[string]any{"tag": "region", "in": []string{"oceania"}}},
	}))
	refused = s.must(http.StatusUnprocessableEntity, "PATCH", "/v1/games/g1", map[string]any{"tags": map[string]any{"region": map[string]any{"values": []string{"asia"}}}})
	require.Contains(t, refused["detail"], later["id"], "a campaign's inline audience counts too")
}
