-- +goose Up
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    prefix       text NOT NULL UNIQUE,
    hash         bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE accounts (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    domain      text NOT NULL DEFAULT '',
    external_id text NOT NULL DEFAULT '',
    notes       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX accounts_created_at_id_idx ON accounts (created_at, id);
CREATE UNIQUE INDEX accounts_external_id_idx ON accounts (external_id) WHERE external_id <> '';

CREATE TABLE agents (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL,
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX agents_email_idx ON agents (lower(email));
CREATE INDEX agents_created_at_id_idx ON agents (created_at, id);

CREATE TABLE tickets (
    id               text PRIMARY KEY,
    title            text NOT NULL,
    description      text NOT NULL DEFAULT '',
    status           text NOT NULL,
    priority         text NOT NULL,
    source           text NOT NULL,
    account_id       text NOT NULL REFERENCES accounts (id),
    assignee_id      text REFERENCES agents (id),
    tags             text[] NOT NULL DEFAULT '{}',
    requester_name   text NOT NULL DEFAULT '',
    requester_email  text NOT NULL DEFAULT '',
    requester_handle text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    resolved_at      timestamptz,
    closed_at        timestamptz
);
-- Keyset pagination walks (created_at, id) or (updated_at, id) in either
-- direction; the single-column indexes serve the equality filters, and
-- PostgreSQL combines them with a bitmap AND when several are given.
CREATE INDEX tickets_created_at_id_idx ON tickets (created_at, id);
CREATE INDEX tickets_updated_at_id_idx ON tickets (updated_at, id);
CREATE INDEX tickets_status_created_at_idx ON tickets (status, created_at);
CREATE INDEX tickets_priority_created_at_idx ON tickets (priority, created_at);
CREATE INDEX tickets_source_created_at_idx ON tickets (source, created_at);
CREATE INDEX tickets_account_id_created_at_idx ON tickets (account_id, created_at);
CREATE INDEX tickets_assignee_id_created_at_idx ON tickets (assignee_id, created_at);
CREATE INDEX tickets_tags_idx ON tickets USING gin (tags);
-- The q filter matches this exact expression with ILIKE.
CREATE INDEX tickets_search_idx ON tickets USING gin ((title || ' ' || description) gin_trgm_ops);

CREATE TABLE messages (
    id          text PRIMARY KEY,
    ticket_id   text NOT NULL REFERENCES tickets (id),
    author_type text NOT NULL,
    author_id   text REFERENCES agents (id),
    author_name text NOT NULL DEFAULT '',
    body        text NOT NULL,
    internal    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL
);
CREATE INDEX messages_ticket_id_created_at_idx ON messages (ticket_id, created_at, id);

CREATE TABLE ticket_changes (
    id         text PRIMARY KEY,
    ticket_id  text NOT NULL REFERENCES tickets (id),
    actor      text NOT NULL DEFAULT '',
    changes    jsonb NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX ticket_changes_ticket_id_created_at_idx ON ticket_changes (ticket_id, created_at, id);

-- events is the transactional outbox. body holds the exact JSON bytes that
-- every webhook delivery of the event sends and signs, so it is text and not
-- jsonb, which would reorder keys.
CREATE TABLE events (
    id            text PRIMARY KEY,
    type          text NOT NULL,
    body          text NOT NULL,
    created_at    timestamptz NOT NULL,
    dispatched_at timestamptz
);
CREATE INDEX events_undispatched_idx ON events (created_at) WHERE dispatched_at IS NULL;

CREATE TABLE webhook_endpoints (
    id          text PRIMARY KEY,
    url         text NOT NULL,
    description text NOT NULL DEFAULT '',
    events      text[] NOT NULL,
    secret      text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX webhook_endpoints_created_at_id_idx ON webhook_endpoints (created_at, id);
CREATE INDEX webhook_endpoints_events_idx ON webhook_endpoints USING gin (events);

CREATE TABLE webhook_deliveries (
    id              text PRIMARY KEY,
    event_id        text NOT NULL REFERENCES events (id),
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type      text NOT NULL,
    status          text NOT NULL,
    attempt_count   integer NOT NULL DEFAULT 0,
    last_attempt_at timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_endpoint_id_created_at_idx ON webhook_deliveries (endpoint_id, created_at, id);

CREATE TABLE webhook_attempts (
    id            text PRIMARY KEY,
    delivery_id   text NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    number        integer NOT NULL,
    started_at    timestamptz NOT NULL,
    duration_ms   integer NOT NULL,
    status_code   integer,
    error         text NOT NULL DEFAULT '',
    response_body text NOT NULL DEFAULT ''
);
CREATE INDEX webhook_attempts_delivery_id_idx ON webhook_attempts (delivery_id, number);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DROP TABLE events;
DROP TABLE ticket_changes;
DROP TABLE messages;
DROP TABLE tickets;
DROP TABLE agents;
DROP TABLE accounts;
DROP TABLE api_keys;
