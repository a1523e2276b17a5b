-- API keys: only a hash of each secret is kept. A key is written out once, as
-- hk_{id}_{secret}; the id finds the row, the secret's SHA-256 is compared in
-- constant time.
CREATE TABLE api_keys (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    role       text NOT NULL,
    games      text[],               -- NULL: every game
    hash       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
);

-- The audit log: one row per change, written in the transaction of the change.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    key_id      uuid,                -- NULL for the command line
    key_name    text NOT NULL,
    action      text NOT NULL,
    game_id     text,
    object_type text NOT NULL,
    object_id   text NOT NULL,
    detail      jsonb
);

CREATE INDEX audit_log_game_idx ON audit_log (game_id, id);
CREATE INDEX audit_log_at_idx ON audit_log (at);
