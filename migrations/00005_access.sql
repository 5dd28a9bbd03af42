-- +goose Up
-- Keys created before roles existed keep full access: they become admin.
-- The default is dropped afterwards, so that every new key names its role.
ALTER TABLE api_keys ADD COLUMN role text NOT NULL DEFAULT 'admin'
    CHECK (role IN ('admin', 'agent', 'viewer'));
ALTER TABLE api_keys ALTER COLUMN role DROP DEFAULT;
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;

-- One row per Idempotency-Key of an API key. status is NULL while the first
-- request runs; then the row stores its response for replays until
-- expires_at.
CREATE TABLE idempotency_keys (
    api_key_id   text NOT NULL REFERENCES api_keys (id),
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status       integer,
    content_type text NOT NULL DEFAULT '',
    body         bytea,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- One row per change to agents, API keys, SLA policies, business hours or
-- webhook endpoints made through the API.
CREATE TABLE audit_log (
    id            text PRIMARY KEY,
    api_key_id    text NOT NULL REFERENCES api_keys (id),
    action        text NOT NULL,
    resource_type text NOT NULL,
    resource_id   text NOT NULL,
    fields        text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL
);
CREATE INDEX audit_log_created_at_id_idx ON audit_log (created_at, id);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE idempotency_keys;
ALTER TABLE api_keys DROP COLUMN expires_at;
ALTER TABLE api_keys DROP COLUMN role;
