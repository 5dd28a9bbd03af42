-- +goose Up
-- One row per UTC hour and dimension combination. Facts about a ticket are
-- attributed to its current source, priority and account. agent_id is the
-- ticket's assignee for ticket facts and the author for messages_sent; ''
-- means no agent.
CREATE TABLE analytics_hourly (
    bucket                timestamptz NOT NULL,
    source                text NOT NULL,
    priority              text NOT NULL,
    account_id            text NOT NULL,
    agent_id              text NOT NULL,
    created               integer NOT NULL DEFAULT 0,
    resolved              integer NOT NULL DEFAULT 0,
    reopened              integer NOT NULL DEFAULT 0,
    messages_sent         integer NOT NULL DEFAULT 0,
    frt_achieved          integer NOT NULL DEFAULT 0,
    frt_breached          integer NOT NULL DEFAULT 0,
    res_achieved          integer NOT NULL DEFAULT 0,
    res_breached          integer NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, source, priority, account_id, agent_id)
);

-- Duration histograms of the same hours and dimensions, one row per
-- non-empty bin. metric is first_response, first_resolution or
-- full_resolution; bin is the fixed log-spaced bin that analytics.Bin
-- computes from seconds.
CREATE TABLE analytics_hourly_durations (
    bucket     timestamptz NOT NULL,
    source     text NOT NULL,
    priority   text NOT NULL,
    account_id text NOT NULL,
    agent_id   text NOT NULL,
    metric     text NOT NULL,
    bin        smallint NOT NULL,
    count      integer NOT NULL,
    PRIMARY KEY (bucket, source, priority, account_id, agent_id, metric, bin)
);

-- A single row: the ticket watermark of the incremental refresh, and when
-- the rollup was last rewritten (NULL before the first run).
CREATE TABLE analytics_state (
    id                 integer PRIMARY KEY CHECK (id = 1),
    ticket_watermark   timestamptz NOT NULL,
    updated_at         timestamptz
);
INSERT INTO analytics_state (id, ticket_watermark) VALUES (1, '1970-01-01T00:00:00Z');

-- Recomputing an hour reads the facts that happened in it.
CREATE INDEX ticket_changes_created_at_idx ON ticket_changes (created_at);
CREATE INDEX messages_created_at_idx ON messages (created_at);
CREATE INDEX ticket_sla_achieved_at_idx ON ticket_sla (achieved_at) WHERE achieved_at IS NOT NULL;
CREATE INDEX ticket_sla_breached_at_idx ON ticket_sla (breached_at) WHERE breached_at IS NOT NULL;

-- +goose Down
DROP INDEX ticket_sla_breached_at_idx;
DROP INDEX ticket_sla_achieved_at_idx;
DROP INDEX messages_created_at_idx;
DROP INDEX ticket_changes_created_at_idx;
DROP TABLE analytics_state;
DROP TABLE analytics_hourly_durations;
DROP TABLE analytics_hourly;
