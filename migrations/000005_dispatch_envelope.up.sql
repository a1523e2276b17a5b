-- A dispatch carries everything its publishes need, so that the fan-out never
-- reads the campaigns table: besides the frozen plan (targets, member_list_id),
-- the envelope template (kind, game, the topics' {msg} which is also the
-- envelope's campaign, content, priority, starts_at; expires_at is already
-- here) and whether its messages are retained. A campaign cannot change once
-- it has a dispatch, so copying from it gives what the worker read until now.
ALTER TABLE dispatches
    ADD COLUMN kind      text,
    ADD COLUMN game_id   text,
    ADD COLUMN msg       text,
    ADD COLUMN content   jsonb,
    ADD COLUMN priority  int,
    ADD COLUMN starts_at timestamptz,
    ADD COLUMN retain    boolean NOT NULL DEFAULT true;

UPDATE dispatches d
SET kind = c.kind, game_id = c.game_id, msg = c.id::text, content = c.content,
    priority = c.priority, starts_at = c.starts_at
FROM campaigns c
WHERE c.id = d.campaign_id;

ALTER TABLE dispatches
    ALTER COLUMN kind SET NOT NULL,
    ALTER COLUMN game_id SET NOT NULL,
    ALTER COLUMN msg SET NOT NULL,
    ALTER COLUMN content SET NOT NULL,
    ALTER COLUMN priority SET NOT NULL,
    ALTER COLUMN retain DROP DEFAULT;
