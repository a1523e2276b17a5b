-- Receipts: what game clients report about each send (delivered, displayed,
-- clicked, dismissed), one row per (send, player, event), so a receipt sent
-- twice counts once. The game and the player come from the MQTT topic the
-- receipt was published to, never from its payload. client_at is the client's
-- own time (kept, not trusted); received_at is Herald's clock when the receipt
-- was read from the broker, and delivery latency is received_at - sent_at.
--
-- Partitioned by range of send_id, one partition per day: a send id is a
-- UUIDv7, whose first 48 bits are its creation time in Unix milliseconds, so
-- all receipts of one send land in the partition of the send's day, and old
-- receipts go by dropping whole partitions (receipts.Store.Maintain, run by
-- the scheduler leader), never row by row. Partitions are named
-- receipts_pYYYYMMDD and created ahead of time; there is no default partition,
-- so a day without one cannot take rows (ingestion creates it first).
CREATE TABLE receipts (
    send_id     uuid NOT NULL,
    game_id     text NOT NULL,
    player_id   text NOT NULL,
    event       text NOT NULL,
    client_at   timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (send_id, player_id, event)
) PARTITION BY RANGE (send_id);

-- Every send clients acknowledge, with its game and the time its fan-out
-- started: campaign dispatches here; kick-outs join it (000014). Ingestion
-- keeps only receipts whose id is a send of the topic's game.
CREATE VIEW sends (id, game_id, kind, sent_at) AS
    SELECT id, game_id, 'dispatch'::text, sent_at FROM dispatches;
