package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/postgres"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/valid"
)

// Errors returned by Store methods.
var (
	// ErrUnauthenticated covers every way a presented key fails: malformed,
	// unknown, wrong secret, revoked or expired. Callers learn nothing more.
	ErrUnauthenticated = errors.New("missing, invalid, revoked or expired API key")
	ErrNotFound        = errors.New("api key not found")
)

// Key is an API key as stored: everything but its secret.
type Key struct {
	ID        uuid.UUID  `json:"id"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	Games     []string   `json:"games,omitempty"` // nil: every game
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Allows reports whether the key may touch game.
func (k Key) Allows(game string) bool {
	return k.Games == nil || slices.Contains(k.Games, game)
}

// Covers reports whether every game of a key limited to games (nil: every game)
// is one k may touch. A key limited to some games covers only keys limited to
// some of those: it may create, list and revoke nothing wider than itself.
func (k Key) Covers(games []string) bool {
	if k.Games == nil {
		return true
	}
	if games == nil {
		return false
	}
	for _, g := range games {
		if !k.Allows(g) {
			return false
		}
	}
	return true
}

// Input describes a key to create.
type Input struct {
	Name      string      `json:"name"`
	Role      Role        `json:"role"`
	Games     []string    `json:"games"`
	ExpiresAt *valid.Time `json:"expires_at"`
}

func (in Input) validate(now time.Time) error {
	var errs fielderr.List
	if err := valid.Name(in.Name); err != nil {
		errs.Add("name", "%v", err)
	}
	if !in.Role.Valid() {
		errs.Add("role", "must be admin, operator, marketing or service")
	}
	if in.Games != nil && len(in.Games) == 0 {
		errs.Add("games", "leave games out for every game, or name at least one")
	}
	for i, g := range in.Games {
		if err := protocol.CheckID(g); err != nil {
			errs.Add(fielderr.Index("games", i), "%v", err)
		}
	}
	if in.ExpiresAt != nil {
		if err := valid.CheckTime(in.ExpiresAt.Time); err != nil {
			errs.Add("expires_at", "%v", err)
		} else if !in.ExpiresAt.After(now) {
			errs.Add("expires_at", "must be in the future")
		}
	}
	return errs.Err()
}

// Store keeps API keys in Postgres.
type Store struct {
	db  *pgxpool.Pool
	now func() time.Time
}

// NewStore returns a Store over db. Its clock is time.Now.
func NewStore(db *pgxpool.Pool) *Store {
	return &Store{db: db, now: time.Now}
}

// WithClock returns a copy of s that takes the time from now: whether a key
// being created expires in the past, and whether a presented key has expired.
func (s *Store) WithClock(now func() time.Time) *Store {
	c := *s
	c.now = now
	return &c
}

const keyColumns = `id, name, role, games, created_at, expires_at, revoked_at`

// secretPrefix starts every key, so that leaked keys are easy to recognize.
const secretPrefix = "hk_"

// Create makes a new key and returns it with its secret, the only time the
// secret exists outside the caller's hands. It returns a fielderr.List for bad
// input.
func (s *Store) Create(ctx context.Context, in Input) (Key, string, error) {
	if err := in.validate(s.now()); err != nil {
		return Key{}, "", err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Key{}, "", fmt.Errorf("new key id: %w", err)
	}
	var raw [32]byte // 256 bits
	if _, err := rand.Read(raw[:]); err != nil {
		return Key{}, "", fmt.Errorf("new key secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	var key Key
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			INSERT INTO api_keys (id, name, role, games, hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING `+keyColumns, id, in.Name, in.Role, in.Games, sum[:], in.ExpiresAt.Std())
		var err error
		if key, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Key]); err != nil {
			return fmt.Errorf("insert api key: %w", err)
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "api_key.create", ObjectType: "api_key", ObjectID: id.String(),
			Detail: map[string]any{"name": in.Name, "role": in.Role, "games": in.Games}})
	})
	if err != nil {
		return Key{}, "", err
	}
	return key, secretPrefix + strings.ReplaceAll(id.String(), "-", "") + "_" + secret, nil
}

// secretLen is the length of a key's secret: 32 bytes in unpadded base64url.
const secretLen = 43

// Authenticate returns the live key whose secret is presented, or
// ErrUnauthenticated. A presented string that is not shaped like a key
// (hk_, 32 hex digits, _, 43 base64url characters) is refused without asking
// the database.
func (s *Store) Authenticate(ctx context.Context, presented string) (Key, error) {
	rest, ok := strings.CutPrefix(presented, secretPrefix)
	if !ok || len(rest) != 32+1+secretLen || rest[32] != '_' || !isHex(rest[:32]) {
		return Key{}, ErrUnauthenticated
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(rest[33:]); err != nil {
		return Key{}, ErrUnauthenticated
	}
	id, err := uuid.Parse(rest[:32])
	if err != nil {
		return Key{}, ErrUnauthenticated
	}
	var key Key
	var stored []byte
	err = s.db.QueryRow(ctx, `SELECT `+keyColumns+`, hash FROM api_keys WHERE id = $1`, id).Scan(
		&key.ID, &key.Name, &key.Role, &key.Games, &key.CreatedAt, &key.ExpiresAt, &key.RevokedAt, &stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, ErrUnauthenticated
	}
	if err != nil {
		return Key{}, fmt.Errorf("look up api key: %w", err)
	}
	sum := sha256.Sum256([]byte(rest[33:]))
	if subtle.ConstantTimeCompare(sum[:], stored) != 1 || key.RevokedAt != nil ||
		(key.ExpiresAt != nil && !key.ExpiresAt.After(s.now())) {
		return Key{}, ErrUnauthenticated
	}
	return key, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f' || 'A' <= s[i] && s[i] <= 'F') {
			return false
		}
	}
	return true
}

// List returns up to limit keys in creation order after the key after, only
// those limited to some of the games within unless within is nil (see
// Key.Covers).
func (s *Store) List(ctx context.Context, after uuid.UUID, limit int, within []string) ([]Key, bool, error) {
	rows, _ := s.db.Query(ctx, `
		SELECT `+keyColumns+` FROM api_keys WHERE id > $1 AND ($3::text[] IS NULL OR games <@ $3)
		ORDER BY id LIMIT $2`, after, limit+1, within)
	keys, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Key])
	if err != nil {
		return nil, false, fmt.Errorf("list api keys: %w", err)
	}
	keys, more := postgres.TrimPage(keys, limit)
	return keys, more, nil
}

// Revoke makes a key unusable from now on. Revoking a revoked key changes
// nothing. Unless within is nil, only a key limited to some of the games within
// can be revoked (see Key.Covers). It returns ErrNotFound.
func (s *Store) Revoke(ctx context.Context, id uuid.UUID, within []string) (Key, error) {
	var key Key
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
			WHERE id = $1 AND ($2::text[] IS NULL OR games <@ $2) RETURNING `+keyColumns, id, within)
		var err error
		key, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Key])
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("revoke api key %s: %w", id, err)
		}
		return audit.Record(ctx, tx, audit.Entry{Action: "api_key.revoke", ObjectType: "api_key", ObjectID: id.String(),
			Detail: map[string]any{"name": key.Name}})
	})
	return key, err
}
