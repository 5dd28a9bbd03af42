-- +goose Up
ALTER TABLE accounts ADD COLUMN tier text NOT NULL DEFAULT '';
CREATE INDEX accounts_tier_created_at_idx ON accounts (tier, created_at) WHERE tier <> '';

CREATE TABLE business_hours (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    time_zone  text NOT NULL,
    hours      jsonb NOT NULL,
    holidays   jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX business_hours_created_at_id_idx ON business_hours (created_at, id);

-- A deleted policy keeps its row (deleted_at is set) because ticket_sla rows
-- and emitted events refer to it.
CREATE TABLE sla_policies (
    id                  text PRIMARY KEY,
    name                text NOT NULL,
    is_default          boolean NOT NULL DEFAULT false,
    tier                text NOT NULL DEFAULT '',
    account_ids         text[] NOT NULL DEFAULT '{}',
    business_hours_id   text REFERENCES business_hours (id) ON DELETE SET NULL,
    warn_before_minutes integer,
    first_response      jsonb NOT NULL,
    resolution          jsonb NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    deleted_at          timestamptz
);
CREATE INDEX sla_policies_created_at_id_idx ON sla_policies (created_at, id);
CREATE UNIQUE INDEX sla_policies_default_idx ON sla_policies (is_default) WHERE is_default AND deleted_at IS NULL;
CREATE UNIQUE INDEX sla_policies_tier_idx ON sla_policies (tier) WHERE tier <> '' AND deleted_at IS NULL;
CREATE INDEX sla_policies_account_ids_idx ON sla_policies USING gin (account_ids);

-- The default policy counts calendar time: urgent 15 min / 4 h, high 1 h /
-- 24 h, medium 4 h / 72 h, low 24 h / 1 week.
INSERT INTO sla_policies (id, name, is_default, first_response, resolution, created_at, updated_at)
VALUES (
    'slp_01m90wf0e2fv0a0hd8q122cfj6', 'Default', true,
    '{"clock": "calendar", "urgent": 15, "high": 60, "medium": 240, "low": 1440}',
    '{"clock": "calendar", "urgent": 240, "high": 1440, "medium": 4320, "low": 10080}',
    now(), now()
);

-- One row per ticket and metric (first_response, resolution).
CREATE TABLE ticket_sla (
    ticket_id         text NOT NULL REFERENCES tickets (id),
    metric            text NOT NULL,
    policy_id         text NOT NULL REFERENCES sla_policies (id),
    target_minutes    integer NOT NULL,
    business_hours_id text REFERENCES business_hours (id) ON DELETE SET NULL,
    state             text NOT NULL,
    due_at            timestamptz,
    warn_at           timestamptz,
    achieved_at       timestamptz,
    breached_at       timestamptz,
    warned_at         timestamptz,
    running_since     timestamptz,
    calendar_used_us  bigint NOT NULL DEFAULT 0,
    business_used_us  bigint NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (ticket_id, metric)
);
-- The sweep reads running targets whose due or warning time has passed;
-- these partial indexes hold only those candidates, so a sweep costs the
-- number of due rows, not the number of open tickets.
CREATE INDEX ticket_sla_due_idx ON ticket_sla (due_at) WHERE state = 'running';
CREATE INDEX ticket_sla_warn_idx ON ticket_sla (warn_at) WHERE state = 'running' AND warned_at IS NULL;
-- Editing or deleting a policy or schedule recomputes the unfinished
-- tickets that use it.
CREATE INDEX ticket_sla_policy_id_idx ON ticket_sla (policy_id) WHERE achieved_at IS NULL;
CREATE INDEX ticket_sla_business_hours_id_idx ON ticket_sla (business_hours_id) WHERE achieved_at IS NULL;

-- +goose Down
DROP TABLE ticket_sla;
DROP TABLE sla_policies;
DROP TABLE business_hours;
DROP INDEX accounts_tier_created_at_idx;
ALTER TABLE accounts DROP COLUMN tier;
