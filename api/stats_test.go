package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/receipts"
)

// The stats routes answer a campaign's figures over all its dispatches and one
// dispatch's, to every role that may read stats (a service key too, which may
// not read campaigns), and 404 for what is not there or not the key's.
func TestStatsRoutes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.createGame("g1")
	s.createGame("g2")
	c := s.must(http.StatusCreated, "POST", "/v1/games/g1/campaigns", notice(nil))
	id := c["id"].(string)
	dispatches := c["dispatches"].([]any)
	require.Len(t, dispatches, 1)
	dispatch := dispatches[0].(map[string]any)["id"].(string)

	// Receipts as the broker would hand them to Herald.
	in := receipts.NewStore(s.db, 0).NewIngester(receipts.Config{Prefix: "herald", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	in.Start(context.Background())
	for i, e := range []string{"delivered", "delivered", "displayed"} {
		in.Handle(fmt.Sprintf("herald/g1/receipts/p%d", i%2+1), fmt.Appendf(nil, `{"id":%q,"e":%q,"t":%d}`, dispatch, e, time.Now().UnixMilli()))
	}
	in.Stop()
	require.EqualValues(t, 3, in.Counters().Stored)

	service := s.as(s.newKey(auth.Input{Name: "backend", Role: auth.RoleService}))
	service.must(http.StatusForbidden, "GET", "/v1/games/g1/campaigns/"+id, nil)
	for _, path := range []string{"/v1/games/g1/campaigns/" + id + "/stats", "/v1/games/g1/campaigns/" + id + "/dispatches/" + dispatch + "/stats"} {
		for _, role := range []auth.Role{auth.RoleService, auth.RoleMarketing, auth.RoleOperator, auth.RoleAdmin} {
			st := s.as(s.newKey(auth.Input{Name: "k", Role: role})).must(http.StatusOK, "GET", path, nil)
			assert.Equal(t, id, st["campaign"])
			assert.EqualValues(t, 1, st["dispatches"])
			assert.Equal(t, map[string]any{"delivered": 2.0, "displayed": 1.0, "clicked": 0.0, "dismissed": 0.0}, st["players"], path)
			assert.Equal(t, map[string]any{"displayed_per_delivered": 0.5, "clicked_per_displayed": 0.0, "dismissed_per_displayed": 0.0}, st["funnel"])
			assert.Len(t, st["timeline"], 1)
			assert.Contains(t, st, "publishes")
			assert.Contains(t, st, "latency")
		}
	}
	st := s.must(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+id+"/dispatches/"+dispatch+"/stats", nil)
	assert.Equal(t, dispatch, st["dispatch"])

	s.must(http.StatusNotFound, "GET", "/v1/games/g2/campaigns/"+id+"/stats", nil)
	s.must(http.StatusNotFound, "GET", "/v1/games/g1/campaigns/"+dispatch+"/stats", nil)
	s.must(http.StatusNotFound, "GET", "/v1/games/g1/campaigns/"+id+"/dispatches/"+id+"/stats", nil)
	s.must(http.StatusNotFound, "GET", "/v1/games/g1/campaigns/"+id+"/dispatches/nope/stats", nil)
	g2only := s.as(s.newKey(auth.Input{Name: "g2 only", Role: auth.RoleMarketing, Games: []string{"g2"}}))
	g2only.must(http.StatusNotFound, "GET", "/v1/games/g1/campaigns/"+id+"/stats", nil)
}
