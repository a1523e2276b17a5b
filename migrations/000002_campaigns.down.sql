DROP TABLE dispatches;
DROP TABLE campaigns;
DELETE FROM segment_members WHERE list_id IN (SELECT id FROM member_lists WHERE retired_at IS NOT NULL);
DELETE FROM member_lists WHERE retired_at IS NOT NULL;
ALTER TABLE member_lists DROP COLUMN retired_at;
