package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGameLifecycle(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")

	got := s.must(http.StatusOK, "GET", "/v1/games/g1", nil)
	require.Equal(t, "Game g1", got["name"])
	require.Equal(t, "en", got["default_locale"])
	require.Equal(t, []any{"eu", "na", "asia"}, got["tags"].(map[string]any)["region"].(map[string]any)["values"])

	patched := s.must(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{"name": "Renamed", "default_locale": "zh-CN"})
	require.Equal(t, "Renamed", patched["name"])
	require.Equal(t, "zh-CN", patched["default_locale"])
	require.Contains(t, patched["tags"], "level", "a PATCH without tags keeps them")

	s.must(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{"tags": map[string]any{"vip": map[string]any{"bands": [][2]int{{0, 0}, {1, 5}}}}})
	got = s.must(http.StatusOK, "GET", "/v1/games/g1", nil)
	require.Equal(t, map[string]any{"vip": map[string]any{"bands": []any{[]any{0.0, 0.0}, []any{1.0, 5.0}}}}, got["tags"])

	conflict := s.must(http.StatusConflict, "POST", "/v1/games", map[string]any{"id": "g1", "name": "again", "default_locale": "en"})
	require.Equal(t, []string{"id"}, fields(conflict))
	s.must(http.StatusNotFound, "GET", "/v1/games/nope", nil)
	s.must(http.StatusNotFound, "PATCH", "/v1/games/nope", map[string]any{"name": "x"})
}

func TestGameListPagination(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		s.createGame(id)
	}
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5, "pagination must end")
		page := s.must(http.StatusOK, "GET", "/v1/games?limit=2&cursor="+cursor, nil)
		for _, item := range page["items"].([]any) {
			seen = append(seen, item.(map[string]any)["id"].(string))
		}
		next, ok := page["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, seen)

	bad := s.must(http.StatusUnprocessableEntity, "GET", "/v1/games?limit=0", nil)
	require.Equal(t, []string{"limit"}, fields(bad))
}

func TestGameValidation(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	valid := func() map[string]any {
		return map[string]any{"id": "g", "name": "G", "default_locale": "en"}
	}
	with := func(key string, value any) map[string]any {
		g := valid()
		g[key] = value
		return g
	}
	cases := []struct {
		name   string
		body   any
		status int
		fields []string
	}{
		{"slash in id", with("id", "a/b"), 422, []string{"id"}},
		{"plus in id", with("id", "a+"), 422, []string{"id"}},
		{"hash in id", with("id", "#"), 422, []string{"id"}},
		{"space in id", with("id", "a b"), 422, []string{"id"}},
		{"NUL in id", with("id", "a\x00"), 422, []string{"id"}},
		{"leading dollar", with("id", "$SYS"), 422, []string{"id"}},
		{"empty id", with("id", ""), 422, []string{"id"}},
		{"id over 128 bytes", with("id", strings.Repeat("x", 129)), 422, []string{"id"}},
		{"no name", with("name", ""), 422, []string{"name"}},
		{"bad locale", with("default_locale", "english please"), 422, []string{"default_locale"}},
		{"overlapping bands", with("tags", map[string]any{"level": map[string]any{"bands": [][2]int{{1, 10}, {10, 19}}}}), 422, []string{"tags.level.bands[1]"}},
		{"reversed band", with("tags", map[string]any{"level": map[string]any{"bands": [][2]int{{9, 1}}}}), 422, []string{"tags.level.bands[0]"}},
		{"values and bands", with("tags", map[string]any{"t": map[string]any{"values": []string{"a"}, "bands": [][2]int{{1, 2}}}}), 422, []string{"tags.t"}},
		{"empty tag", with("tags", map[string]any{"t": map[string]any{}}), 422, []string{"tags.t"}},
		{"bad tag value", with("tags", map[string]any{"t": map[string]any{"values": []string{"ok", "no/slash"}}}), 422, []string{"tags.t.values[1]"}},
		{"duplicate tag value", with("tags", map[string]any{"t": map[string]any{"values": []string{"a", "a"}}}), 422, []string{"tags.t.values[1]"}},
		{"bad tag name", with("tags", map[string]any{"a+b": map[string]any{"values": []string{"x"}}}), 422, []string{"tags.a+b"}},
		{"unknown field", with("colour", "red"), 400, []string{"colour"}},
		{"unknown field in a tag", with("tags", map[string]any{"t": map[string]any{"vals": []string{"a"}}}), 400, []string{"vals"}},
		{"wrong type", with("name", 42), 400, []string{"name"}},
		{"band not a pair", `{"id":"g","name":"G","default_locale":"en","tags":{"l":{"bands":[[1,2],[3]]}}}`, 422, []string{"tags.l.bands[1]"}},
		{"band of strings", `{"id":"g","name":"G","default_locale":"en","tags":{"l":{"bands":[["a","b"]]}}}`, 400, []string{"tags.bands"}},
		{"malformed JSON", `{"id": "g",`, 400, []string{"body"}},
		{"not JSON", `id=g`, 400, []string{"body"}},
		{"empty body", ``, 400, []string{"body"}},
		{"two objects", `{"id":"g","name":"G","default_locale":"en"} {}`, 400, []string{"body"}},
		{"over 1 MiB", `{"id":"g","name":"` + strings.Repeat("x", 1<<20) + `"}`, 413, []string{"body"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, problem := s.do("POST", "/v1/games", c.body)
			require.Equal(t, c.status, status, "%v", problem)
			require.Equal(t, c.fields, fields(problem), "%v", problem)
		})
	}
	page := s.must(http.StatusOK, "GET", "/v1/games", nil)
	require.Empty(t, page["items"], "nothing refused was stored")
}

// TestDefaultLocaleChangeNeedsCampaignTexts: a game's default locale cannot
// move to one that a scheduled or live campaign has no text in (clients fall
// back to the default locale); the refusal names those campaigns.
func TestDefaultLocaleChangeNeedsCampaignTexts(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	later := map[string]any{"at": time.Now().Add(time.Hour)}
	englishOnly := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"name": "english only", "schedule": later}))
	s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(map[string]any{"name": "bilingual", "schedule": later,
		"content": map[string]any{"title": map[string]any{"en": "t", "zh-CN": "标题"}, "body": map[string]any{"en": "b", "zh-CN": "正文"}}}))

	problem := s.must(http.StatusUnprocessableEntity, "PATCH", "/v1/games/g1", map[string]any{"default_locale": "zh-CN", "name": "renamed"})
	require.Equal(t, []string{"default_locale"}, fields(problem))
	message := problem["errors"].([]any)[0].(map[string]any)["message"].(string)
	require.Contains(t, message, englishOnly["id"].(string))
	require.Contains(t, message, "english only")
	require.NotContains(t, problem["detail"], "bilingual")
	got := s.must(http.StatusOK, "GET", "/v1/games/g1", nil)
	require.Equal(t, "en", got["default_locale"], "nothing changed")
	require.Equal(t, "Game g1", got["name"])

	s.must(http.StatusOK, "POST", "/v1/games/g1/campaigns/"+englishOnly["id"].(string)+"/cancel", nil)
	s.must(http.StatusOK, "PATCH", "/v1/games/g1", map[string]any{"default_locale": "zh-CN"})
	require.Equal(t, "zh-CN", s.must(http.StatusOK, "GET", "/v1/games/g1", nil)["default_locale"])
}
