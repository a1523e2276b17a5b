package bench

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"
)

// apiLoad sends GET of a campaign, and POST of a dry-run campaign, each at a
// fixed sz.apiRate requests/s for sz.apiSecs (open loop, one after the
// other), and reports latency p50 and p99 and errors. The target is absolute
// (p99 <= 25 ms).
func apiLoad(t *testing.T, sz sizes, runs int, rec *recorder) {
	h := startHerald(t, 0)
	campaign := map[string]any{
		"kind": "notice", "name": "api bench", "audience": map[string]any{"rule": map[string]any{"everyone": true}},
		"content":    map[string]any{"title": map[string]any{"en": "Season 4 starts"}, "body": map[string]any{"en": "Log in for your gift"}},
		"expires_at": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
	}
	id := h.call(http.StatusCreated, "POST", "/v1/games/g1/campaigns", campaign)["id"].(string)
	kinds := []struct {
		name string
		do   func(int) error
	}{
		{"GET a campaign", func(int) error { _, err := h.do(http.StatusOK, "GET", "/v1/games/g1/campaigns/"+id, nil); return err }},
		{"POST a dry-run", func(int) error {
			_, err := h.do(http.StatusOK, "POST", "/v1/games/g1/campaigns?dry_run=true", campaign)
			return err
		}},
	}
	for _, k := range kinds {
		for i := range 100 { // connections and caches warm
			if err := k.do(i); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.http.Timeout = 10 * time.Second
	for range runs {
		for _, k := range kinds {
			lat, errs := openLoop(sz.apiRate, sz.apiSecs, k.do)
			for _, err := range errs[:min(3, len(errs))] {
				t.Logf("%s: %v", k.name, err)
			}
			slices.Sort(lat)
			name := fmt.Sprintf("API %s at %d/s for %d s", k.name, sz.apiRate, sz.apiSecs)
			rec.add(figure{row: name + ": p50", unit: "ms", herald: percentile(lat, 50), base: math.NaN()})
			rec.add(figure{row: name + ": p99", unit: "ms", herald: percentile(lat, 99), base: math.NaN(), goal: ptr(atMost(25, "ms"))})
			rec.add(figure{row: name + ": errors", unit: "", herald: float64(len(errs)), base: math.NaN(), goal: ptr(atMost(0, ""))})
		}
	}
}
