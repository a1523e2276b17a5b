package kickouts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/postgres"
)

// store is the kick-outs' SQL.
type store struct {
	db *pgxpool.Pool
}

const kickoutColumns = `id, game_id, players, coalesce(server, ''), content, created_at, expires_at, published_at`

func scanKickout(row pgx.CollectableRow) (Kickout, error) {
	var k Kickout
	err := row.Scan(&k.ID, &k.Game, &k.Players, &k.Server, &k.Content, &k.CreatedAt, &k.ExpiresAt, &k.PublishedAt)
	return k, err
}

// insert stores k and its audit entry in one round trip (a batch commits or
// fails as a whole). Its publisher holds it until leaseUntil: recovery leaves
// it alone until then.
func (s store) insert(ctx context.Context, k Kickout, leaseUntil time.Time) error {
	var server *string
	if k.Server != "" {
		server = &k.Server
	}
	b := &pgx.Batch{}
	b.Queue(`
		INSERT INTO kickouts (id, game_id, players, server, content, created_at, expires_at, lease_until)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.Game, k.Players, server, string(k.Content), k.CreatedAt, k.ExpiresAt, leaseUntil)
	detail := map[string]any{"reason": mustReason(k), "ttl_s": int(k.TTL() / time.Second)}
	if k.Server != "" {
		detail["server"] = k.Server
	} else {
		detail["players"] = len(k.Players)
	}
	if err := audit.Queue(ctx, b, audit.Entry{Action: "kickout.create", Game: k.Game, ObjectType: "kickout",
		ObjectID: k.ID.String(), Detail: detail}); err != nil {
		return err
	}
	if err := s.db.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("insert kick-out: %w", err)
	}
	return nil
}

// mustReason reads the reason of k's canonical content for the audit log.
func mustReason(k Kickout) string {
	c, _ := decodeContent(k.Content)
	return c.Reason
}

// get returns the kick-out id of game, or ErrNotFound.
func (s store) get(ctx context.Context, game string, id uuid.UUID) (Kickout, error) {
	rows, _ := s.db.Query(ctx, `SELECT `+kickoutColumns+` FROM kickouts WHERE id = $1 AND game_id = $2`, id, game)
	k, err := pgx.CollectExactlyOneRow(rows, scanKickout)
	if errors.Is(err, pgx.ErrNoRows) {
		return Kickout{}, ErrNotFound
	}
	if err != nil {
		return Kickout{}, fmt.Errorf("load kick-out %s: %w", id, err)
	}
	return k, nil
}

// claimUnpublished takes the kick-out stored but never marked published whose
// publisher's lease passed and whose ttl has not, expiring first, if there is
// one, and leases it from now for base plus perMessage a player: what its
// publish (publishTimeout) and its mark need.
func (s store) claimUnpublished(ctx context.Context, now time.Time, base, perMessage time.Duration) (Kickout, bool, error) {
	rows, _ := s.db.Query(ctx, `
		UPDATE kickouts SET lease_until = $1::timestamptz + $2::interval + coalesce(cardinality(players), 1) * $3::interval
		WHERE id = (
			SELECT id FROM kickouts
			WHERE published_at IS NULL AND expires_at > $1 AND lease_until < $1
			ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+kickoutColumns, now, base, perMessage)
	k, err := pgx.CollectExactlyOneRow(rows, scanKickout)
	if errors.Is(err, pgx.ErrNoRows) {
		return Kickout{}, false, nil
	}
	if err != nil {
		return Kickout{}, false, fmt.Errorf("claim an unpublished kick-out: %w", err)
	}
	return k, true, nil
}

// markPublished records that the broker acknowledged every message of the
// kick-outs ids at the times at (in the same order), in one statement. It is
// not worth a disk flush: were the marks lost in a crash, recovery would
// publish again, and clients drop the duplicate.
func (s store) markPublished(ctx context.Context, ids []uuid.UUID, at []time.Time) error {
	err := postgres.SendUnflushed(ctx, s.db, func(b *pgx.Batch) {
		b.Queue(`UPDATE kickouts k SET published_at = m.at
			FROM unnest($1::uuid[], $2::timestamptz[]) AS m(id, at)
			WHERE k.id = m.id AND k.published_at IS NULL`, ids, at)
	})
	if err != nil {
		return fmt.Errorf("mark %d kick-outs published: %w", len(ids), err)
	}
	return nil
}

// purge deletes up to limit kick-outs created before before, and returns how
// many it deleted.
func (s store) purge(ctx context.Context, before time.Time, limit int) (int64, error) {
	tag, err := s.db.Exec(ctx, `
		DELETE FROM kickouts WHERE id IN (SELECT id FROM kickouts WHERE created_at < $1 LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("purge kick-outs: %w", err)
	}
	return tag.RowsAffected(), nil
}
