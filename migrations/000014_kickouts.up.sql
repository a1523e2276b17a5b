-- Kick-outs: one row per request, its id (a UUIDv7) the envelope id that every
-- targeted client confirms with a delivered receipt. The row is committed
-- before the first publish; published_at is set once the broker acknowledged
-- every message. A replica that died in between leaves published_at NULL, and
-- any replica republishes the row once its lease passed, while its ttl lasts.
CREATE TABLE kickouts (
    id           uuid PRIMARY KEY,
    game_id      text NOT NULL REFERENCES games (id),
    players      text[],                -- the targeted players; NULL for a server kick-out
    server       text,                  -- the targeted server; NULL for a player kick-out
    content      json NOT NULL,         -- json, not jsonb: the canonical bytes, republished as they were sent
    created_at   timestamptz NOT NULL,  -- the envelope's sent_at
    expires_at   timestamptz NOT NULL,  -- created_at + ttl: the envelope's expires_at
    published_at timestamptz,
    lease_until  timestamptz NOT NULL,  -- until then its publisher may still be at work
    CHECK ((players IS NULL) <> (server IS NULL))
);

-- Recovery scans the unpublished kick-outs whose ttl has not passed: those
-- that expired unpublished stay out of its way.
CREATE INDEX kickouts_unpublished_idx ON kickouts (expires_at) WHERE published_at IS NULL;
CREATE INDEX kickouts_created_idx ON kickouts (created_at);

-- Idempotency keys: the first answer to a creating POST, kept 24 h per API key
-- and Idempotency-Key, so that a retry gets it again instead of doing the work
-- twice. status is NULL while the first request is in progress; locked_until
-- is when another request may take the key over if that request's replica died.
CREATE TABLE idempotency_keys (
    key_id       uuid NOT NULL,         -- the API key whose requests the key belongs to
    key          text NOT NULL,         -- the Idempotency-Key header
    request_hash bytea NOT NULL,        -- SHA-256 of the method, path, query and body
    owner        uuid NOT NULL,         -- the request working on it
    locked_until timestamptz NOT NULL,
    status       int,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (key_id, key)
);

CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);

-- A kick-out is a send its clients acknowledge: receipt ingestion keeps the
-- receipts of the ids in sends, and stats measure latency from sent_at.
CREATE OR REPLACE VIEW sends (id, game_id, kind, sent_at) AS
    SELECT id, game_id, 'dispatch'::text, sent_at FROM dispatches
    UNION ALL
    SELECT id, game_id, 'kickout'::text, created_at FROM kickouts;
