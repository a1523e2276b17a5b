-- Games and their tag schemas: the vocabulary every segment rule is checked against.
CREATE TABLE games (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    default_locale text NOT NULL,
    tags           jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Segments: named audience rules over one game's players. member_list_id points at
-- the segment's current uploaded member list; an upload builds a new list and swaps
-- the pointer in one transaction, so a failed upload leaves the old list in place.
CREATE TABLE segments (
    id             uuid PRIMARY KEY,
    game_id        text NOT NULL REFERENCES games (id),
    name           text NOT NULL,
    rule           jsonb NOT NULL,
    member_list_id bigint,
    member_count   bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX segments_game_id_idx ON segments (game_id, id);

CREATE TABLE member_lists (
    id         bigserial PRIMARY KEY,
    segment_id uuid NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE segments
    ADD CONSTRAINT segments_member_list_fk FOREIGN KEY (member_list_id) REFERENCES member_lists (id);

-- One row per member, keyed so that a fan-out can stream a list in player-id order
-- and resume after the last player it reached. list_id has no foreign key on
-- purpose: checking one per row would slow a 10-million-row upload several-fold;
-- the segments store deletes a list's rows whenever it deletes the list.
CREATE TABLE segment_members (
    list_id   bigint NOT NULL,
    player_id text NOT NULL,
    PRIMARY KEY (list_id, player_id)
);
