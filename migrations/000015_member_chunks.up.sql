-- Member lists are stored as chunks of sorted player ids rather than a row per
-- member: a list of ten million ids is about a hundred thousand rows, which an
-- upload writes at close to the speed of a bare COPY (a row and an index entry
-- per member cost Postgres most of the upload's time, see issue 13).
--
-- players holds the chunk's ids joined by '\n', ascending in byte order; last_player
-- is the last of them. Chunks of one list never overlap, so the key orders them,
-- and a fan-out resuming after a player starts at the first chunk whose
-- last_player is greater. Byte order ("C") is the order the uploader sorts in
-- and needs no locale; for the ids Herald allows (protocol.CheckID) it is the
-- order a C.UTF-8 database sorted segment_members in, so dispatches part-way
-- through a list resume where they were.
--
-- list_id has no foreign key, as segment_members had none: the segments store
-- deletes a list's chunks whenever it deletes the list.
CREATE TABLE member_chunks (
    list_id     bigint NOT NULL,
    last_player text COLLATE "C" NOT NULL,
    players     text NOT NULL,
    PRIMARY KEY (list_id, last_player)
);

INSERT INTO member_chunks (list_id, last_player, players)
SELECT list_id, max(player_id), string_agg(player_id, E'\n' ORDER BY player_id)
FROM (
    SELECT list_id, player_id COLLATE "C" AS player_id,
           (row_number() OVER (PARTITION BY list_id ORDER BY player_id COLLATE "C") - 1) / 100 AS chunk
    FROM segment_members
) m
GROUP BY list_id, chunk;

DROP TABLE segment_members;

-- One row per member, for people and tests reading a list by hand.
CREATE VIEW segment_members (list_id, player_id) AS
    SELECT c.list_id, m.player_id
    FROM member_chunks c CROSS JOIN LATERAL string_to_table(c.players, E'\n') AS m(player_id);
