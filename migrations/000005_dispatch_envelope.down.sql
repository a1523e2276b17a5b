ALTER TABLE dispatches
    DROP COLUMN kind,
    DROP COLUMN game_id,
    DROP COLUMN msg,
    DROP COLUMN content,
    DROP COLUMN priority,
    DROP COLUMN starts_at,
    DROP COLUMN retain;
