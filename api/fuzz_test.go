package api_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// FuzzRequestBodies sends arbitrary bodies to every endpoint that reads one (as
// an admin, so that every decoder is reached) and fails on any 5xx: no input may
// crash a handler or reach the database malformed.
//
//	go test ./api -run '^$' -fuzz FuzzRequestBodies -fuzztime 60s
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"id":"g2","name":"n","default_locale":"en"}`,
		`{"id":"g2","name":"n","default_locale":"en","tags":{"l":{"bands":[[1,2],[2,3]]}}}`,
		`{"tags":{"t":{"values":["a","a"]}}}`, `{"tags":{"t":{"bands":[[9223372036854775807,-9223372036854775808]]}}}`,
		`{"name":"s","rule":{"and":[{"or":[{"not":{"members":true}}]}]}}`,
		`{"rule":{"tag":"level","between":[-1e300,1e300]}}`, `{"segment_id":"00000000-0000-0000-0000-000000000000"}`,
		`{"rule":{"not":{"not":{"not":{"everyone":true}}}}}`, "p1\np2\n\x00\n", `{"name":"\ud800"}`,
		`{"kind":"marquee","name":"m","audience":{"rule":{"everyone":true}},"content":{"text":{"en":"x"}},"expires_at":"2099-01-01T00:00:00Z"}`,
		`{"kind":"ad","name":"a","audience":{"segment_id":"x"},"content":{"image_url":"https://a/b"},"schedule":{"at":"0001-01-01T00:00:00Z"}}`,
		`{"name":"k","role":"service","games":["g1"],"expires_at":"2099-01-01T00:00:00Z"}`,
		`{"name":"k","role":"admin","expires_at":"9999-12-31T23:59:59-23:59"}`,
		`{"kind":"notice","name":"n","audience":{"rule":{"everyone":true}},"content":{"title":{"en":"t"},"body":{"en":"b"}},"starts_at":"0000-01-01T00:00:00+01:00"}`,
		`{"kind":"notice","name":"n","audience":{"rule":{"everyone":true}},"content":{"title":{"en":"t"},"body":{"en":"b"}},"schedule":{"at":17}}`,
		"{\"id\":\"g\u0000\",\"name\":\"a\u0000\",\"default_locale\":\"en\"}", "{\"name\":\"\xff\xfe\"}", "{\"name\":\"\x1b]0;pwned\x07\"}",
		`{"kind":"notice","name":"n","audience":{"rule":{"everyone":true}},"content":{"title":{"en\u0000":"t"},"body":{"en":"\u0000"},"link":"https://x/\u0000"}}`,
		`{"players":["qa1","qa\u0000",""]}`, `{"players":[1e300]}`, `{"confirm_over":-9223372036854775808}`, `{"confirm_over":1e300}`,
		`{"kind":"notice","name":"n","audience":{"rule":{"everyone":true}},"content":{"title":{"en":"t"},"body":{"en":"b"}},"confirm_audience":-1}`,
	} {
		f.Add(seed)
	}
	// One server for the whole run: a database per input would make fuzzing crawl.
	srv := newTestServer(f)
	srv.createGame("g1")
	seg := srv.must(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "m", "rule": map[string]any{"members": true}})
	segment := seg["id"].(string)
	campaign := srv.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{"kind": "notice", "name": "n",
		"audience": map[string]any{"rule": map[string]any{"players": []string{"p1"}}},
		"content":  map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": "b"}},
		"schedule": map[string]any{"at": time.Now().Add(24 * time.Hour)}})["id"].(string)
	f.Fuzz(func(t *testing.T, body string) {
		s := *srv
		s.t = t
		for _, r := range []struct{ method, path string }{
			{"POST", "/v1/games"},
			{"PATCH", "/v1/games/g1"},
			{"POST", "/v1/games/g1/segments"},
			{"PATCH", "/v1/games/g1/segments/" + segment},
			{"POST", "/v1/games/g1/plan"},
			{"PUT", "/v1/games/g1/segments/" + segment + "/members"},
			{"POST", "/v1/games/g1/campaigns?dry_run=true"},
			{"POST", "/v1/games/g1/campaigns"},
			{"PATCH", "/v1/games/g1/campaigns/" + campaign},
			{"POST", "/v1/games/g1/campaigns/" + campaign + "/test"},
			{"POST", "/v1/api-keys"},
		} {
			if status, problem := s.do(r.method, r.path, body); status >= 500 {
				t.Fatalf("%s %s with %q answered %d: %v", r.method, r.path, body, status, problem)
			}
		}
	})
}

// FuzzPathsAndQueries puts arbitrary text where callers put ids, cursors, times
// and flags (path parameters and query parameters) and fails on any 5xx: none
// of it may reach Postgres unchecked.
//
//	go test ./api -run '^$' -fuzz FuzzPathsAndQueries -fuzztime 60s
func FuzzPathsAndQueries(f *testing.F) {
	for _, seed := range []string{"g1", "", "\x00", "a\x00b", "%00", "\x1b[2J", "\xff", "../..", "g1/segments", "0",
		"9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+01:00", "TRUE", "yes", "01a214d1-eb0d-78a0-a273-2ad44985fccd",
		"-1", "99999999999999999999", "{01a214d1-eb0d-78a0-a273-2ad44985fccd}"} {
		f.Add(seed)
	}
	srv := newTestServer(f)
	srv.createGame("g1")
	f.Fuzz(func(t *testing.T, v string) {
		s := *srv
		s.t = t
		p, q := url.PathEscape(v), url.QueryEscape(v)
		for _, r := range []struct{ method, path string }{
			{"GET", "/v1/games/" + p},
			{"GET", "/v1/games/" + p + "/segments"},
			{"GET", "/v1/games/g1/segments/" + p},
			{"GET", "/v1/games/g1/campaigns/" + p},
			{"DELETE", "/v1/api-keys/" + p},
			{"GET", "/v1/games?cursor=" + q},
			{"GET", "/v1/games/g1/segments?cursor=" + q},
			{"GET", "/v1/games/g1/campaigns?cursor=" + q + "&status=" + q + "&kind=" + q + "&archived=" + q},
			{"GET", "/v1/games?archived=" + q},
			{"DELETE", "/v1/games/g1/campaigns/" + p},
			{"POST", "/v1/games/" + p + "/unarchive"},
			{"GET", "/v1/api-keys?cursor=" + q + "&limit=" + q},
			{"GET", "/v1/audit?game=" + q + "&since=" + q + "&cursor=" + q},
			{"POST", "/v1/games/g1/campaigns?dry_run=" + q},
		} {
			if status, problem := s.do(r.method, r.path, "{}"); status >= 500 {
				t.Fatalf("%s %s answered %d: %v", r.method, r.path, status, problem)
			}
		}
	})
}
