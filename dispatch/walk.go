package dispatch

import (
	"context"

	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/segments"
)

// position is a point in a dispatch's walk over its targets: the next target and,
// inside a members target, the last player already handled. The walk goes in
// target order and, through a member list, in player-id order, so a position
// checkpointed in Postgres is all a resumed dispatch needs.
type position struct {
	Target int
	After  string
}

// before reports whether p comes before q in the walk.
func (p position) before(q position) bool {
	return p.Target < q.Target || (p.Target == q.Target && p.After < q.After)
}

// step is one topic of a walk and the index of the target it belongs to.
type step struct {
	topic  string
	target int
}

// walker reads the topics of a dispatch in walk order, a batch at a time. One
// goroutine at a time uses it.
type walker struct {
	db      postgres.DBTX
	prefix  string
	game    string
	kind    protocol.Kind
	msg     string // the last topic level
	targets []segments.Target
	list    *int64 // the member list a members target streams

	// playerHead and playerTail surround a player id in its topic, built once:
	// a fan-out builds one topic per member.
	playerHead, playerTail string
}

// playerTopic is the topic of player's message:
// protocol.Message(protocol.Base(prefix, game, ScopePlayer, player), kind, msg).
func (w *walker) playerTopic(player string) string {
	if w.playerHead == "" {
		w.playerHead = protocol.Base(w.prefix, w.game, protocol.ScopePlayer) + "/"
		w.playerTail = protocol.Message("", w.kind, w.msg)
	}
	return w.playerHead + player + w.playerTail
}

// next returns up to n topics from p onward, stopping before until (nil: the
// end), and the position after them. An empty result means the walk is over.
func (w *walker) next(ctx context.Context, p position, n int, until *position) ([]step, position, error) {
	var out []step
	for len(out) < n && p.Target < len(w.targets) {
		if until != nil && !p.before(*until) {
			break
		}
		t := w.targets[p.Target]
		if !t.Members {
			out = append(out, step{protocol.Message(protocol.Base(w.prefix, w.game, t.Scope, t.Keys...), w.kind, w.msg), p.Target})
			p = position{Target: p.Target + 1}
			continue
		}
		want := n - len(out)
		players, err := w.members(ctx, p.After, want)
		if err != nil {
			return nil, p, err
		}
		for _, player := range players {
			if until != nil && until.Target == p.Target && until.After != "" && player > until.After {
				return out, position{Target: p.Target + 1}, nil
			}
			out = append(out, step{w.playerTopic(player), p.Target})
			p.After = player
		}
		if len(players) < want { // the list ran out
			p = position{Target: p.Target + 1}
		}
	}
	return out, p, nil
}

// members returns up to n player ids of the member list after the id after.
func (w *walker) members(ctx context.Context, after string, n int) ([]string, error) {
	if w.list == nil {
		return nil, nil
	}
	return segments.Members(ctx, w.db, *w.list, after, n)
}
