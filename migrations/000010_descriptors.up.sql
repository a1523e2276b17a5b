-- Each game's client descriptor (docs/protocol.md section 2) is retained on the
-- broker at {prefix}/{game}/descriptor. version counts what calls for publishing
-- it again: the game's creation and every change to it (the trigger below, so
-- that no code path that changes a game can forget it) and a loss of the
-- broker's retained store (the retained-store guard bumps every game's in the
-- transaction that requests the restore). published is the version whose
-- publish the broker last acknowledged: every replica publishes the games whose
-- published is behind, one replica per game at a time (an advisory lock), so a
-- descriptor changed or lost while the broker was down goes out once it is back.
CREATE TABLE game_descriptors (
    game_id      text PRIMARY KEY REFERENCES games (id) ON DELETE CASCADE,
    version      bigint NOT NULL DEFAULT 1,
    published    bigint NOT NULL DEFAULT 0,
    published_at timestamptz
);
CREATE INDEX game_descriptors_stale_idx ON game_descriptors (game_id) WHERE published < version;
INSERT INTO game_descriptors (game_id) SELECT id FROM games;

CREATE FUNCTION game_descriptor_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO game_descriptors (game_id) VALUES (NEW.id)
    ON CONFLICT (game_id) DO UPDATE SET version = game_descriptors.version + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER games_descriptor_changed AFTER INSERT OR UPDATE ON games
    FOR EACH ROW EXECUTE FUNCTION game_descriptor_changed();
