package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// memberUpload streams sz.upload ids (in a shuffled order, as an export
// would) to a segment's member list through the API, and reports ids/s and
// Herald's peak RSS meanwhile, next to a bare CopyFrom of the same ids, in
// the same order, into a logged table keyed by (list_id, player_id): a
// member list's key, stored the plainest way, a row per member.
func memberUpload(t *testing.T, sz sizes, runs int, rec *recorder) {
	h := startHerald(t, 0)
	seg := h.call(http.StatusCreated, "POST", "/v1/games/g1/segments", map[string]any{"name": "listed", "rule": map[string]any{"members": true}})
	path := "/v1/games/g1/segments/" + seg["id"].(string) + "/members"
	db := connect(t, h.dbURL)
	ctx := context.Background()
	rowName := fmt.Sprintf("member upload of %s ids: ids/s", number(float64(sz.upload)))

	for run := range runs {
		h.resetPeakRSS()
		profiled := h.profile(fmt.Sprintf("upload-run%d", run+1))
		cpu := meterCPU(t, h.pid)
		start := time.Now()
		raw, err := h.do(http.StatusOK, "PUT", path, ids("player-", sz.upload, true))
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		took := time.Since(start)
		heraldCPU := cpu.cores()[0]
		rss := h.peakRSSMiB()
		profiled()
		var got struct {
			MemberCount int `json:"member_count"`
		}
		if err := json.Unmarshal(raw, &got); err != nil || got.MemberCount != sz.upload {
			t.Fatalf("upload answered %s, want member_count %d", raw, sz.upload)
		}

		if _, err := db.Exec(ctx, `DROP TABLE IF EXISTS bare_members;
			CREATE TABLE bare_members (list_id bigint NOT NULL, player_id text NOT NULL, PRIMARY KEY (list_id, player_id))`); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		i := 0
		n, err := db.CopyFrom(ctx, pgx.Identifier{"bare_members"}, []string{"list_id", "player_id"}, pgx.CopyFromFunc(func() ([]any, error) {
			if i == sz.upload {
				return nil, nil
			}
			id := fmt.Sprintf("player-%07d", (i*7919)%sz.upload)
			i++
			return []any{int64(run + 1), id}, nil
		}))
		bareTook := time.Since(start)
		if err != nil || n != int64(sz.upload) {
			t.Fatalf("bare CopyFrom: %d rows, %v", n, err)
		}
		rec.add(figure{row: rowName, unit: "ids/s", herald: float64(sz.upload) / took.Seconds(), base: float64(sz.upload) / bareTook.Seconds(), goal: ptr(ratioAtLeast(0.7))})
		rec.add(figure{row: "member upload: Herald's peak RSS", unit: "MiB", herald: rss, base: math.NaN(), goal: ptr(atMost(100, "MiB"))})
		// Herald's share of the work: the rest of the time is Postgres's.
		rec.add(figure{row: "member upload: Herald's CPU", unit: "cores", herald: heraldCPU, base: math.NaN()})
	}
}
