-- Back to one-off campaigns only: recurring campaigns end (canceled, their
-- expires_at set to their last dispatch's or now), and the fires of a campaign
-- in each player's zone but one per instant are deleted with their receipts
-- left to the receipts' own retention.
UPDATE campaigns c SET status = 'canceled', expires_at = coalesce(
        (SELECT max(d.expires_at) FROM dispatches d WHERE d.campaign_id = c.id), now())
    WHERE expires_at IS NULL;
DELETE FROM dispatches d WHERE zone <> '' AND EXISTS (
    SELECT 1 FROM dispatches o WHERE o.campaign_id = d.campaign_id AND o.fire_at = d.fire_at AND o.zone < d.zone);

DROP INDEX dispatches_expiry_idx;
CREATE INDEX dispatches_expiry_idx ON dispatches (expires_at) WHERE clear_reason IS NULL;

ALTER TABLE dispatches
    DROP CONSTRAINT dispatches_fire_key,
    ADD CONSTRAINT dispatches_campaign_id_fire_at_key UNIQUE (campaign_id, fire_at);
ALTER TABLE dispatches
    DROP COLUMN zone,
    DROP COLUMN note;

ALTER TABLE campaigns
    ALTER COLUMN expires_at SET NOT NULL,
    DROP COLUMN ttl_ms,
    DROP COLUMN misfire_grace_ms;

ALTER TABLE games DROP COLUMN zone_tag;
