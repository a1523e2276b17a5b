DROP INDEX dispatches_work_idx;
CREATE INDEX dispatches_work_idx ON dispatches (created_at)
    WHERE state IN ('pending', 'publishing') OR (clear_reason IS NOT NULL AND cleared_at IS NULL);
ALTER TABLE dispatches
    DROP COLUMN restore_requested_at,
    DROP COLUMN restore_until_target,
    DROP COLUMN restore_until_after,
    DROP COLUMN restore_target,
    DROP COLUMN restore_after,
    DROP COLUMN restored,
    DROP COLUMN restored_at,
    DROP COLUMN restores;
DROP TABLE retained_sentinel;
