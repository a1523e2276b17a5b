package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// storedMembers reads a segment's current member list straight from Postgres.
func (s *testServer) storedMembers(segment string) []string {
	s.t.Helper()
	rows, _ := s.db.Query(context.Background(), `
		SELECT m.player_id FROM segments s JOIN segment_members m ON m.list_id = s.member_list_id
		WHERE s.id = $1 ORDER BY m.player_id`, segment)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(s.t, err)
	return ids
}

func (s *testServer) newMemberSegment(game string) string {
	s.t.Helper()
	seg := s.must(http.StatusCreated, "POST", "/v1/games/"+game+"/segments", map[string]any{"name": "list", "rule": map[string]any{"members": true}})
	return seg["id"].(string)
}

func TestMemberUploadReplacesTheList(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	id := s.newMemberSegment("g1")
	path := "/v1/games/g1/segments/" + id + "/members"

	got := s.must(http.StatusOK, "PUT", path, "p3\r\np1\n\np2\np1\n")
	require.EqualValues(t, 3, got["member_count"], "CRLF endings, blank lines and duplicates are handled")
	require.Equal(t, []string{"p1", "p2", "p3"}, s.storedMembers(id))

	got = s.must(http.StatusOK, "PUT", path, "q1\nq2") // no final newline
	require.EqualValues(t, 2, got["member_count"])
	require.Equal(t, []string{"q1", "q2"}, s.storedMembers(id), "the old list is gone")

	var current int
	require.NoError(t, s.db.QueryRow(context.Background(), `SELECT count(*) FROM member_lists WHERE retired_at IS NULL`).Scan(&current))
	require.Equal(t, 1, current, "one current list; replaced ones are retired")

	got = s.must(http.StatusOK, "PUT", path, "")
	require.EqualValues(t, 0, got["member_count"], "an empty body empties the list")

	s.must(http.StatusOK, "PUT", path, "r1\nr2\n")
	s.must(http.StatusNoContent, "DELETE", "/v1/games/g1/segments/"+id, nil)
	var leftover int
	require.NoError(t, s.db.QueryRow(context.Background(), `SELECT count(*) FROM segment_members`).Scan(&leftover))
	require.Zero(t, leftover, "deleting a segment deletes all its lists, retired ones too")
	s.must(http.StatusNotFound, "PUT", "/v1/games/g1/segments/01a214d1-eb0d-78a0-a273-2ad44985fccd/members", "p1\n")
}

func TestMemberUploadRefusesAnInvalidLineAndKeepsTheOldList(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	id := s.newMemberSegment("g1")
	path := "/v1/games/g1/segments/" + id + "/members"
	s.must(http.StatusOK, "PUT", path, "a\nb\n")

	for _, c := range []struct{ body, line string }{
		{"x1\nx2\nbad/id\nx4\n", "line 3"},
		{"x1\n\n x2\n", "line 3"}, // blank lines still count
		{"x1\n" + strings.Repeat("y", 129) + "\n", "line 2"},
		{strings.Repeat("z", 100<<10) + "\n", "line 1"},
		{"x1\n$SYS\n", "line 2"},
	} {
		problem := s.must(http.StatusUnprocessableEntity, "PUT", path, c.body)
		require.Equal(t, []string{"body"}, fields(problem))
		require.Contains(t, problem["errors"].([]any)[0].(map[string]any)["message"], c.line+":")
		require.Equal(t, []string{"a", "b"}, s.storedMembers(id), "a refused upload leaves the previous list")
	}
	got := s.must(http.StatusOK, "GET", "/v1/games/g1/segments/"+id, nil)
	require.EqualValues(t, 2, got["member_count"])
}

func TestInterruptedMemberUploadKeepsTheOldList(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	id := s.newMemberSegment("g1")
	path := "/v1/games/g1/segments/" + id + "/members"
	s.must(http.StatusOK, "PUT", path, "a\nb\n")

	// Stream 50,000 good lines, then break the connection mid-body.
	pr, pw := io.Pipe()
	go func() {
		for i := range 50_000 {
			if _, err := fmt.Fprintf(pw, "player-%d\n", i); err != nil {
				return
			}
		}
		pw.CloseWithError(errors.New("client gave up"))
	}()
	req, err := http.NewRequest("PUT", s.url+path, pr)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "the client aborted its own request")

	// Wait until the upload's transaction has rolled back, then look at what
	// stayed.
	deadline := time.Now().Add(10 * time.Second)
	for !s.databaseIdle() {
		require.True(t, time.Now().Before(deadline), "the interrupted upload never ended")
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, []string{"a", "b"}, s.storedMembers(id))
	got := s.must(http.StatusOK, "GET", "/v1/games/g1/segments/"+id, nil)
	require.EqualValues(t, 2, got["member_count"])
}

// databaseIdle reports whether no other session of the test's database is in
// a statement or a transaction.
func (s *testServer) databaseIdle() bool {
	s.t.Helper()
	var busy int
	require.NoError(s.t, s.db.QueryRow(context.Background(), `
		SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`).Scan(&busy))
	return busy == 0
}

// TestSlowMemberUploadOutlivesTheServerTimeouts streams a list for longer than
// the server's read and write timeouts allow a request: an upload that keeps
// sending is not cut off.
func TestSlowMemberUploadOutlivesTheServerTimeouts(t *testing.T) {
	t.Parallel()
	s := newTestServerWith(t, brokerURL(), 1000, 2000, func(srv *http.Server) {
		srv.ReadTimeout, srv.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	})
	s.createGame("g1")
	id := s.newMemberSegment("g1")
	pr, pw := io.Pipe()
	go func() {
		for i := range 12 { // 1.2 s in all, four times the timeouts
			if _, err := fmt.Fprintf(pw, "slow-%d\n", i); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, err := http.NewRequest("PUT", s.url+"/v1/games/g1/segments/"+id+"/members", pr)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, s.storedMembers(id), 12)
}

// TestStreamingMemberUploadLocksNothingSendsNeed keeps an upload streaming and
// checks that the segment can meanwhile be read for a send (the share lock a
// fire takes) and edited: only the final swap locks it, for a moment.
func TestStreamingMemberUploadLocksNothingSendsNeed(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	id := s.newMemberSegment("g1")
	s.must(http.StatusOK, "PUT", "/v1/games/g1/segments/"+id+"/members", "a\nb\n")

	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) }) // before the server's cleanup waits for the request
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("PUT", s.url+"/v1/games/g1/segments/"+id+"/members", pr)
		req.Header.Set("Authorization", "Bearer "+s.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			resp = nil
		}
		done <- resp
	}()
	_, err := io.WriteString(pw, "c\nd\n")
	require.NoError(t, err)
	require.Eventually(t, s.copying, 10*time.Second, 10*time.Millisecond, "the upload streams")

	require.NoError(t, s.shareLock(id), "a send can read the segment while its members stream")
	s.must(http.StatusOK, "PATCH", "/v1/games/g1/segments/"+id, map[string]any{"name": "renamed mid-upload"})
	require.True(t, s.copying(), "still streaming")

	_, err = io.WriteString(pw, "e\n")
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	resp := <-done
	require.NotNil(t, resp)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, []string{"c", "d", "e"}, s.storedMembers(id))
	got := s.must(http.StatusOK, "GET", "/v1/games/g1/segments/"+id, nil)
	require.Equal(t, "renamed mid-upload", got["name"])
}

// shareLock takes and gives back at once the lock a send takes on a segment
// (segments.ForSend), or fails if another transaction holds a conflicting one.
func (s *testServer) shareLock(id string) error {
	ctx := context.Background()
	tx, err := s.db.Begin(ctx)
	require.NoError(s.t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // read-only probe
	_, err = tx.Exec(ctx, `SELECT 1 FROM segments WHERE id = $1 FOR SHARE NOWAIT`, id)
	return err
}

// copying reports whether a member upload is streaming into the test database.
func (s *testServer) copying() bool {
	s.t.Helper()
	var n int
	require.NoError(s.t, s.db.QueryRow(context.Background(), `
		SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'active' AND query ILIKE 'copy%member_chunks%'`).Scan(&n))
	return n > 0
}
