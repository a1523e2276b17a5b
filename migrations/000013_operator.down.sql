ALTER TABLE games DROP COLUMN confirm_over, DROP COLUMN archived_at;

-- Deleted segments come back: the version before this one has no tombstones.
ALTER TABLE segments DROP COLUMN deleted_at;

UPDATE campaigns SET status = 'completed' WHERE status = 'missed';

UPDATE campaigns SET plan_players = 0 WHERE plan_players IS NULL;
ALTER TABLE campaigns
    DROP COLUMN archived_at,
    DROP COLUMN plan_players_note,
    ALTER COLUMN plan_players SET NOT NULL;
