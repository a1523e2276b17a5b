-- Recurring (cron) campaigns. A campaign keeps send_at as its next fire, so
-- the due index serves one-off and recurring campaigns alike; a recurring one
-- stays 'scheduled' between fires (or 'paused'), and has no expires_at of its
-- own: each fire's dispatch expires ttl after the fire.
ALTER TABLE campaigns
    ALTER COLUMN expires_at DROP NOT NULL,
    ADD COLUMN ttl_ms           bigint,  -- per-send validity; NULL: expires_at
    ADD COLUMN misfire_grace_ms bigint;  -- how late a fire may still go out; NULL: HERALD_FIRE_GRACE

-- A campaign in each player's own zone fires once per zone at the zone's local
-- time: one dispatch per (campaign, fire time, zone). zone is the IANA name
-- ('' for a campaign in one zone). note says why a fire was missed or skipped.
ALTER TABLE dispatches
    ADD COLUMN zone text NOT NULL DEFAULT '',
    ADD COLUMN note text;
ALTER TABLE dispatches
    DROP CONSTRAINT dispatches_campaign_id_fire_at_key,
    ADD CONSTRAINT dispatches_fire_key UNIQUE (campaign_id, fire_at, zone);

-- The leader sleeps until the next expiry: it asks for the earliest expires_at
-- still to be cleared, so the index leaves out what is cleared already (missed
-- and skipped fires are recorded cleared).
DROP INDEX dispatches_expiry_idx;
CREATE INDEX dispatches_expiry_idx ON dispatches (expires_at) WHERE clear_reason IS NULL AND cleared_at IS NULL;

-- A game may declare one of its enumerated tags as its players' time zones.
ALTER TABLE games ADD COLUMN zone_tag text;
