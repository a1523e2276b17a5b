package campaigns

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
)

// MaxTestPlayers is how many players one test send may reach: a few QA
// devices, not an audience.
const MaxTestPlayers = 50

// testLifetime is how long a test lives when its campaign's expiry has
// passed (or it has none): long enough to look at it.
const testLifetime = time.Hour

// TestSend is what a test send published.
type TestSend struct {
	ID       uuid.UUID       `json:"id"` // the envelope's id, new for each test
	Topics   []string        `json:"topics"`
	Acked    int             `json:"acked"`  // publishes the broker acknowledged
	Failed   int             `json:"failed"` // publishes given up on
	Envelope json.RawMessage `json:"envelope"`
}

// SendTest publishes the envelope of campaign id of game once to each of
// players' own topics ({prefix}/{game}/player/{player}/{kind}/{campaign id}),
// QoS 1, not retained, marked as a test, through pub: an operator sees the
// campaign on a real device before it goes out, whatever the campaign's
// status. Nothing is recorded as a dispatch; the test is audited
// (campaign.test), in a transaction committed only once the broker took the
// publishes. The envelope has no starts_at (a test shows at once) and expires
// as a send of the campaign made now would (its expires_at, or its ttl from
// now), or in an hour if that has passed.
//
// It returns a fielderr.List on "players" (1 to MaxTestPlayers valid ids),
// ErrNotFound, or the publish's error.
func (s *Store) SendTest(ctx context.Context, game string, id uuid.UUID, players []string, pub dispatch.Publisher, prefix string) (TestSend, error) {
	players, err := testPlayers(players)
	if err != nil {
		return TestSend{}, err
	}
	var sent TestSend
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		c, err := get(ctx, tx, game, id, "")
		if err != nil {
			return err
		}
		now := s.now()
		if sent.ID, err = uuid.NewV7(); err != nil {
			return fmt.Errorf("new test id: %w", err)
		}
		e := c.sendAt(now).template().Envelope(sent.ID, now, nil)
		e.StartsAt, e.Test = time.Time{}, true
		if !e.ExpiresAt.After(now) {
			e.ExpiresAt = now.Add(testLifetime)
		}
		if sent.Envelope, err = protocol.EncodeEnvelope(e, s.maxEnvelope); err != nil {
			return fmt.Errorf("encode test envelope: %w", err)
		}
		msgs := make([]dispatch.Message, len(players))
		for i, p := range players {
			topic := protocol.Message(protocol.Base(prefix, game, protocol.ScopePlayer, p), c.Kind, c.ID.String())
			msgs[i] = dispatch.Message{Topic: topic, Payload: sent.Envelope}
			sent.Topics = append(sent.Topics, topic)
		}
		if err := audit.Record(ctx, tx, audit.Entry{Action: "campaign.test", Game: game, ObjectType: "campaign",
			ObjectID: id.String(), Detail: map[string]any{"test": sent.ID, "players": players}}); err != nil {
			return err
		}
		res, err := pub.PublishAll(ctx, msgs)
		if err != nil {
			return fmt.Errorf("publish test of campaign %s: %w", id, err)
		}
		sent.Acked, sent.Failed = res.Acked, res.Failed
		return nil
	})
	return sent, err
}

// testPlayers checks the players of a test send and returns them without
// duplicates, in their order.
func testPlayers(players []string) ([]string, error) {
	var errs fielderr.List
	switch {
	case len(players) == 0:
		errs.Add("players", "give 1 to %d player ids to send the test to", MaxTestPlayers)
	case len(players) > MaxTestPlayers:
		errs.Add("players", "at most %d players: a test goes to a few devices", MaxTestPlayers)
	}
	var out []string
	for i, p := range players {
		if err := protocol.CheckID(p); err != nil {
			errs.Add(fielderr.Index("players", i), "%v", err)
		} else if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
