-- The retained-store sentinel: the value Herald keeps retained on the broker
-- at {prefix}/$herald/sentinel. A broker that lost its retained messages (a
-- restart without persistence, a kill -9) comes back without it, and the first
-- replica to notice replaces the value and marks every live dispatch for a
-- restore, in one transaction on this one row, so a loss is restored once
-- however many replicas see it. An empty value: none published yet.
CREATE TABLE retained_sentinel (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    value   text NOT NULL,
    set_at  timestamptz,   -- NULL while value is empty
    restore boolean NOT NULL DEFAULT false  -- whether setting value requested a restore
);
INSERT INTO retained_sentinel (value) VALUES ('');

-- A restore re-publishes a dispatch's retained messages after the broker lost
-- them, with its own checkpoint, so that the publish counters keep meaning
-- "sent once": restore_target/restore_after is the next topic, restore_until_*
-- where it stops (NULL: the end of the walk; a dispatch still publishing
-- restores what it had published when the loss was noticed). restores counts
-- the requests and tells a checkpoint of an old request from the current one.
ALTER TABLE dispatches
    ADD COLUMN restore_requested_at timestamptz,
    ADD COLUMN restore_until_target int,
    ADD COLUMN restore_until_after  text,
    ADD COLUMN restore_target       int NOT NULL DEFAULT 0,
    ADD COLUMN restore_after        text NOT NULL DEFAULT '',
    ADD COLUMN restored             bigint NOT NULL DEFAULT 0,
    ADD COLUMN restored_at          timestamptz,
    ADD COLUMN restores             int NOT NULL DEFAULT 0;

DROP INDEX dispatches_work_idx;
CREATE INDEX dispatches_work_idx ON dispatches (created_at)
    WHERE state IN ('pending', 'publishing') OR (clear_reason IS NOT NULL AND cleared_at IS NULL)
        OR (restore_requested_at IS NOT NULL AND cleared_at IS NULL);
