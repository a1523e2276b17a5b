CREATE OR REPLACE VIEW sends (id, game_id, kind, sent_at) AS
    SELECT id, game_id, 'dispatch'::text, sent_at FROM dispatches;
DROP TABLE idempotency_keys;
DROP TABLE kickouts;
