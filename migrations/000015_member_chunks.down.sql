DROP VIEW segment_members;

CREATE TABLE segment_members (
    list_id   bigint NOT NULL,
    player_id text NOT NULL,
    PRIMARY KEY (list_id, player_id)
);

INSERT INTO segment_members (list_id, player_id)
SELECT c.list_id, m.player_id
FROM member_chunks c CROSS JOIN LATERAL string_to_table(c.players, E'\n') AS m(player_id);

DROP TABLE member_chunks;
