-- What operators need around a send (issue 12): counting a plan's players
-- only where Herald can, confirming big sends, cleaning up.

-- A plan's player count is known only when every target is a player's own
-- topic (explicit ids, a member list); otherwise it is NULL and the note says
-- why. Counts recorded before this migration left broadcasts at 0: say so.
ALTER TABLE campaigns
    ALTER COLUMN plan_players DROP NOT NULL,
    ADD COLUMN plan_players_note text,
    -- A finished campaign an operator deleted: kept (its dispatches, receipts and
    -- audit rows refer to it) but hidden from lists.
    ADD COLUMN archived_at timestamptz;
UPDATE campaigns
SET plan_players = NULL, plan_players_note = 'not counted: recorded before Herald counted the players of a plan'
WHERE plan_players = 0;

-- A campaign whose only fires were missed reads missed, not completed.
UPDATE campaigns c SET status = 'missed'
WHERE status = 'completed'
    AND NOT EXISTS (SELECT 1 FROM dispatches d WHERE d.campaign_id = c.id AND d.state <> 'missed');

-- A deleted segment that finished campaigns still name stays as a tombstone
-- (their audience.segment_id keeps meaning something); its member lists are
-- retired and purged once no dispatch needs them.
ALTER TABLE segments ADD COLUMN deleted_at timestamptz;

-- An archived game keeps its rows but answers 410; confirm_over asks for a
-- confirmation of sends to more players than it (or to uncounted audiences).
ALTER TABLE games
    ADD COLUMN archived_at timestamptz,
    ADD COLUMN confirm_over bigint;
