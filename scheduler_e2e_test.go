package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/internal/brokertest"
	"github.com/heraldpush/herald/internal/dbtest"
)

// passTime makes time pass for Herald: it runs sql against its database,
// moving the times of its campaigns into the past. Waiting on the wall clock
// instead would make these tests depend on how fast a loaded machine stops and
// starts Herald or a broker.
func passTime(t *testing.T, dbURL, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, sql, args...)
	require.NoError(t, err)
	require.Positive(t, tag.RowsAffected(), "nothing changed: %s", sql)
}

// queryBool reads one boolean from the database at dbURL.
func queryBool(t *testing.T, dbURL, sql string, args ...any) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var v bool
	require.NoError(t, conn.QueryRow(ctx, sql, args...).Scan(&v))
	return v
}

func TestRestartClearsWhatExpiredWhileDown(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": brokertest.Start(t).URL, "HERALD_TOPIC_PREFIX": randomPrefix()}
	h := startHeraldWith(t, vars)
	h.createGame()
	online := subscribe(t, h.broker, h.prefix+"/g1/all/#")
	c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
		"kind": "marquee", "name": "short", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content": map[string]any{"text": map[string]any{"en": "Flash sale"}}, "expires_at": time.Now().Add(time.Hour),
	})
	id := c["id"].(string)
	waitFor(t, "the dispatch to be published", patience, func() bool { return h.dispatch(id)["state"] == "published" })
	h.stop()

	// The marquee expires while Herald is down.
	passTime(t, vars["HERALD_DATABASE_URL"], `UPDATE dispatches SET expires_at = now() - interval '1 second'`)
	passTime(t, vars["HERALD_DATABASE_URL"], `UPDATE campaigns SET expires_at = now() - interval '1 second'`)
	require.Len(t, online.messages(), 1, "nobody cleared it while Herald was down")
	require.Len(t, h.onlyRetained(h.prefix+"/g1/all/#"), 1, "it is still retained")

	h = startHeraldWith(t, vars)
	waitFor(t, "the removal after the restart", patience, func() bool { return len(online.messages()) == 2 })
	require.Empty(t, online.messages()[1].Payload)
	waitFor(t, "the dispatch to be expired", patience, func() bool { return h.dispatch(id)["state"] == "expired" })
	require.Empty(t, h.onlyRetained(h.prefix+"/g1/all/#"))
}

func TestFiresMissedWhileDownAreSentLateWithinTheGrace(t *testing.T) {
	t.Parallel()
	// The grace is long enough for a loaded machine to start Herald again
	// before "late" is past it.
	vars := map[string]string{"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": brokertest.Start(t).URL,
		"HERALD_TOPIC_PREFIX": randomPrefix(), "HERALD_FIRE_GRACE": "1m"}
	h := startHeraldWith(t, vars)
	h.createGame()
	online := subscribe(t, h.broker, h.prefix+"/g1/all/#")
	schedule := func(name string) string {
		c := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", map[string]any{
			"kind": "notice", "name": name, "audience": map[string]any{"rule": map[string]any{"everyone": true}},
			"content":  map[string]any{"title": map[string]any{"en": name}, "body": map[string]any{"en": "b"}},
			"schedule": map[string]any{"at": time.Now().Add(time.Hour)},
		})
		return c["id"].(string)
	}
	missed := schedule("missed")
	late := schedule("late")
	h.stop()

	// Both fire times pass while Herald is down: "missed" by more than the grace,
	// "late" by a second.
	passTime(t, vars["HERALD_DATABASE_URL"], `UPDATE campaigns SET send_at = now() - interval '5 minutes' WHERE id = $1`, missed)
	passTime(t, vars["HERALD_DATABASE_URL"], `UPDATE campaigns SET send_at = now() - interval '1 second' WHERE id = $1`, late)
	h = startHeraldWith(t, vars)
	waitFor(t, "the late send", patience, func() bool {
		return h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+late, nil)["status"] == "live" &&
			h.dispatch(late)["state"] == "published"
	})
	m := h.call(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+missed, nil)
	require.Equal(t, "completed", m["status"])
	require.Equal(t, "missed", h.dispatch(missed)["state"])
	msgs := online.messages()
	require.Len(t, msgs, 1, "only the send within the grace period went out")
	require.Equal(t, h.prefix+"/g1/all/notice/"+late, msgs[0].Topic)
}

func TestTwoReplicasSendEachFireOnce(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"HERALD_DATABASE_URL": dbtest.New(t), "HERALD_MQTT_URL": brokertest.Start(t).URL, "HERALD_TOPIC_PREFIX": randomPrefix()}
	a := startHeraldWith(t, vars)
	b := startHeraldWith(t, vars)
	a.createGame()
	online := subscribe(t, a.broker, a.prefix+"/g1/all/#")
	at := time.Now().Add(time.Second)
	var ids []string
	for i, h := range []*herald{a, b, a, b} {
		body := map[string]any{
			"kind": "notice", "name": "n", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
			"content": map[string]any{"title": map[string]any{"en": "t"}, "body": map[string]any{"en": "b"}},
		}
		if i >= 2 {
			body["schedule"] = map[string]any{"at": at}
		}
		ids = append(ids, h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", body)["id"].(string))
	}
	for _, id := range ids {
		waitFor(t, "every campaign published", patience, func() bool { return a.dispatch(id)["state"] == "published" })
	}
	waitFor(t, "four envelopes", patience, func() bool { return len(online.messages()) >= 4 })
	seen := map[string]int{}
	for _, m := range online.messages() {
		seen[m.Topic]++
	}
	for _, id := range ids {
		require.Equal(t, 1, seen[a.prefix+"/g1/all/notice/"+id], "campaign %s sent once by two replicas", id)
	}
}
