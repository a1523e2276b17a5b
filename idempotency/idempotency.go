// Package idempotency keeps the first answer to each request that creates
// something, by API key and Idempotency-Key, for 24 hours, so that a retry
// gets that answer again instead of doing the work twice. The API's
// middleware drives it: Begin before the work, Finish or Abandon after.
package idempotency

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/postgres"
)

// Lifetimes of a key.
const (
	// TTL is how long a key and its answer are kept.
	TTL = 24 * time.Hour
	// Lease is how long a request may hold a key in progress before another
	// request with the same key may take it over, its replica presumed dead.
	// It is longer than any request Herald serves (the HTTP server's write
	// timeout is a minute).
	Lease = 2 * time.Minute
)

// Request identifies one attempt: whose key, which key, and what was asked.
type Request struct {
	KeyID uuid.UUID // the API key the request authenticated with
	Key   string    // the Idempotency-Key header
	Hash  [32]byte  // Hash of the method, path, query and body
}

// Hash is the fingerprint of a request: the same key with another fingerprint
// is another request.
func Hash(method, path, query string, body []byte) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", method, path, query)
	h.Write(body)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Response is a stored answer.
type Response struct {
	Status  int
	Headers map[string]string // the headers that matter to a replay: Content-Type, Location
	Body    []byte
}

// Outcome says what a request with a key must do.
type Outcome int

// Outcomes of Begin.
const (
	// Owned: do the work, then Finish or Abandon with Claim.Owner.
	Owned Outcome = iota
	// Replay: send Claim.Response, the first answer.
	Replay
	// Mismatch: the key belongs to a different request.
	Mismatch
	// InProgress: another request with this key is at work; ask again later.
	InProgress
)

// Claim is the answer of Begin.
type Claim struct {
	Outcome  Outcome
	Owner    uuid.UUID // with Owned
	Response Response  // with Replay
}

// Store keeps keys in Postgres.
type Store struct {
	db  *pgxpool.Pool
	now func() time.Time
}

// NewStore returns a Store over db with the clock now (nil: time.Now).
func NewStore(db *pgxpool.Pool, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

// Begin tells a request with a key what to do. The first request with a key
// owns it (committed at once, so that concurrent retries see it in progress);
// an expired key, or one whose owner's lease passed without an answer, is
// owned afresh.
func (s *Store) Begin(ctx context.Context, req Request) (Claim, error) {
	for {
		now := s.now()
		owner, err := uuid.NewV7()
		if err != nil {
			return Claim{}, fmt.Errorf("new idempotency owner: %w", err)
		}
		owned, err := s.claim(ctx, req, owner, now)
		if err != nil {
			return Claim{}, err
		}
		if owned {
			return Claim{Outcome: Owned, Owner: owner}, nil
		}
		var hash []byte
		var status *int
		var resp Response
		err = s.db.QueryRow(ctx, `
			SELECT request_hash, status, coalesce(headers, '{}'), coalesce(body, '') FROM idempotency_keys
			WHERE key_id = $1 AND key = $2`, req.KeyID, req.Key).Scan(&hash, &status, &resp.Headers, &resp.Body)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			continue // its owner gave it up just now: claim it again
		case err != nil:
			return Claim{}, fmt.Errorf("read idempotency key: %w", err)
		case string(hash) != string(req.Hash[:]):
			return Claim{Outcome: Mismatch}, nil
		case status == nil:
			return Claim{Outcome: InProgress}, nil
		}
		resp.Status = *status
		return Claim{Outcome: Replay, Response: resp}, nil
	}
}

// claim inserts req's key owned by owner, or takes over an expired one or
// one whose owner's lease passed, and reports whether it did. The claim is
// committed without waiting for the disk: it is visible to concurrent retries
// at once all the same, and the work it guards commits durably after it, which
// flushes it too; lost in a crash, it guarded nothing that survived.
func (s *Store) claim(ctx context.Context, req Request, owner uuid.UUID, now time.Time) (bool, error) {
	var owned bool
	err := postgres.SendUnflushed(ctx, s.db, func(b *pgx.Batch) {
		b.Queue(`
			INSERT INTO idempotency_keys AS k (key_id, key, request_hash, owner, locked_until, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (key_id, key) DO UPDATE SET request_hash = excluded.request_hash, owner = excluded.owner,
				locked_until = excluded.locked_until, status = NULL, headers = NULL, body = NULL,
				created_at = excluded.created_at, expires_at = excluded.expires_at
			WHERE k.expires_at <= $6
				OR (k.status IS NULL AND k.locked_until <= $6 AND k.request_hash = excluded.request_hash)
			RETURNING true`,
			req.KeyID, req.Key, req.Hash[:], owner, now.Add(Lease), now, now.Add(TTL)).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&owned)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // the key is someone else's
			}
			return err
		})
	})
	if err != nil {
		return false, fmt.Errorf("claim idempotency key: %w", err)
	}
	return owned, nil
}

// Finish stores the answer of the request that owns the key.
func (s *Store) Finish(ctx context.Context, req Request, owner uuid.UUID, resp Response) error {
	_, err := s.db.Exec(ctx, `
		UPDATE idempotency_keys SET status = $4, headers = $5, body = $6
		WHERE key_id = $1 AND key = $2 AND owner = $3`, req.KeyID, req.Key, owner, resp.Status, resp.Headers, resp.Body)
	if err != nil {
		return fmt.Errorf("store idempotent answer: %w", err)
	}
	return nil
}

// Abandon gives the key up, so that a retry does the work: the request that
// owned it answered in a way worth retrying (a 5xx, a 429).
func (s *Store) Abandon(ctx context.Context, req Request, owner uuid.UUID) error {
	_, err := s.db.Exec(ctx, `DELETE FROM idempotency_keys WHERE key_id = $1 AND key = $2 AND owner = $3`,
		req.KeyID, req.Key, owner)
	if err != nil {
		return fmt.Errorf("give up idempotency key: %w", err)
	}
	return nil
}

// Purge deletes up to limit expired keys and returns how many it deleted, for
// the scheduler's janitor.
func (s *Store) Purge(ctx context.Context, limit int) (int64, error) {
	tag, err := s.db.Exec(ctx, `
		DELETE FROM idempotency_keys WHERE (key_id, key) IN (
			SELECT key_id, key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)`, s.now(), limit)
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}
