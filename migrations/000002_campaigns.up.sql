-- A replaced member list is retired rather than deleted while a dispatch still
-- needs it: a send in progress streams it, and clearing at expiry or recall must
-- reach the same players. The scheduler purges retired lists that no
-- uncleared dispatch references.
ALTER TABLE member_lists ADD COLUMN retired_at timestamptz;

-- Campaigns: what to send, to whom, when, and for how long.
CREATE TABLE campaigns (
    id           uuid PRIMARY KEY,
    game_id      text NOT NULL REFERENCES games (id),
    kind         text NOT NULL,
    name         text NOT NULL,
    segment_id   uuid REFERENCES segments (id),
    rule         jsonb,                 -- an inline audience, when there is no segment
    content      jsonb NOT NULL,
    priority     int NOT NULL,
    starts_at    timestamptz,
    expires_at   timestamptz NOT NULL,
    schedule     jsonb,                 -- NULL: send at once
    send_at      timestamptz NOT NULL,  -- the one fire of a send-now or {"at"} schedule
    status       text NOT NULL,         -- scheduled, live, completed, expired, canceled
    plan_exact   boolean NOT NULL,
    plan_topics  bigint NOT NULL,
    plan_players bigint NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((segment_id IS NULL) <> (rule IS NULL))
);

CREATE INDEX campaigns_game_idx ON campaigns (game_id, id);
CREATE INDEX campaigns_due_idx ON campaigns (send_at) WHERE status = 'scheduled';

-- Dispatches: one send of a campaign, recorded before its first publish and unique
-- per fire, so two replicas can never send the same fire twice. The plan is frozen
-- here (targets and the member list they read), so a dispatch that resumes after a
-- crash, or is cleared at expiry, addresses exactly the topics it published to.
CREATE TABLE dispatches (
    id             uuid PRIMARY KEY,
    campaign_id    uuid NOT NULL REFERENCES campaigns (id),
    fire_at        timestamptz NOT NULL,
    state          text NOT NULL,  -- pending, publishing, published, missed, expired, recalled
    sent_at        timestamptz,
    expires_at     timestamptz NOT NULL,
    targets        jsonb NOT NULL, -- the plan's targets
    member_list_id bigint,         -- the member list a members target streams
    -- Progress, checkpointed after every acknowledged batch: the next target and,
    -- inside a members target, the last player reached.
    next_target    int NOT NULL DEFAULT 0,
    after_player   text NOT NULL DEFAULT '',
    topics_total   bigint NOT NULL DEFAULT 0,
    acked          bigint NOT NULL DEFAULT 0,
    retried        bigint NOT NULL DEFAULT 0,
    failed         bigint NOT NULL DEFAULT 0,
    first_ack_at   timestamptz,
    last_ack_at    timestamptz,
    -- Clearing (expiry or recall): an empty retained payload to every topic.
    clear_reason   text,           -- expire or recall; NULL while nothing asked for it
    clear_target   int NOT NULL DEFAULT 0,
    clear_after    text NOT NULL DEFAULT '',
    cleared        bigint NOT NULL DEFAULT 0,
    cleared_at     timestamptz,
    -- A replica works on a dispatch under a lease it renews at each checkpoint;
    -- when the replica dies the lease runs out and another takes over.
    leased_by      text,
    lease_until    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, fire_at)
);

CREATE INDEX dispatches_work_idx ON dispatches (created_at)
    WHERE state IN ('pending', 'publishing') OR (clear_reason IS NOT NULL AND cleared_at IS NULL);
CREATE INDEX dispatches_expiry_idx ON dispatches (expires_at) WHERE clear_reason IS NULL;
CREATE INDEX dispatches_member_list_idx ON dispatches (member_list_id) WHERE member_list_id IS NOT NULL;
