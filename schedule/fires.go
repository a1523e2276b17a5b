package schedule

import (
	"container/heap"
	"time"
)

// Zone is a named time zone a schedule fires in.
type Zone struct {
	Name string // the IANA name
	Loc  *time.Location
}

// Fire is one fire of a schedule: its instant and the zone on whose wall clock
// it falls.
type Fire struct {
	At   time.Time
	Zone Zone
}

// Zones returns the zones c fires in: its own, or when it fires per player,
// players (the zones a game declares for its players).
func (c Cron) Zones(players []Zone) []Zone {
	if c.PerPlayer() {
		return players
	}
	if c.loc == nil {
		return nil
	}
	return []Zone{{Name: c.zone, Loc: c.loc}}
}

// NextIn returns the first instant strictly after `after` at which c fires in
// any of zones, and every zone that fires then (several zones can share an
// instant: Asia/Shanghai and Asia/Singapore both read 20:00 at 12:00 UTC).
// It reports false when none of them fires again.
func (c Cron) NextIn(after time.Time, zones []Zone) (time.Time, []Zone, bool) {
	var at time.Time
	var firing []Zone
	for _, z := range zones {
		t, ok := c.Next(after, z.Loc)
		switch {
		case !ok:
		case at.IsZero() || t.Before(at):
			at, firing = t, append(firing[:0], z)
		case t.Equal(at):
			firing = append(firing, z)
		}
	}
	return at, firing, !at.IsZero()
}

// Upcoming returns the first n fires strictly after `after` across zones,
// earliest first (zones in their given order at one instant). It costs one
// evaluation per zone and one per fire.
func (c Cron) Upcoming(after time.Time, zones []Zone, n int) []Fire {
	h := make(fireHeap, 0, len(zones))
	for i, z := range zones {
		if t, ok := c.Next(after, z.Loc); ok {
			h = append(h, queued{Fire{At: t, Zone: z}, i})
		}
	}
	heap.Init(&h)
	fires := make([]Fire, 0, n)
	for len(fires) < n && h.Len() > 0 {
		f := h[0]
		fires = append(fires, f.Fire)
		if t, ok := c.Next(f.At, f.Zone.Loc); ok {
			h[0].At = t
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return fires
}

// queued is a zone's next fire, with the zone's place for a stable order.
type queued struct {
	Fire
	order int
}

type fireHeap []queued

func (h fireHeap) Len() int { return len(h) }
func (h fireHeap) Less(i, j int) bool {
	if !h[i].At.Equal(h[j].At) {
		return h[i].At.Before(h[j].At)
	}
	return h[i].order < h[j].order
}
func (h fireHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *fireHeap) Push(x any)   { *h = append(*h, x.(queued)) }
func (h *fireHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
