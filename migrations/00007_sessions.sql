-- +goose Up
-- Agents sign in to the dashboard with a password and act with their role.
-- Existing agents get the agent role and no password, so they cannot sign
-- in until an admin or `outpost agent set-password` gives them one.
ALTER TABLE agents ADD COLUMN role text NOT NULL DEFAULT 'agent'
    CHECK (role IN ('admin', 'agent', 'viewer'));
ALTER TABLE agents ADD COLUMN password_hash text;

-- One row per dashboard session. Only a SHA-256 hash of the cookie value
-- is stored. A session ends at expires_at, or earlier when it has been
-- idle for longer than the configured idle timeout since last_seen_at.
CREATE TABLE sessions (
    id           text PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE,
    agent_id     text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    address      text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_agent_id_idx ON sessions (agent_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- Changes are now made by API keys, signed-in agents and the command line,
-- so the audit log names the kind of actor beside its ID.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_api_key_id_fkey;
ALTER TABLE audit_log RENAME COLUMN api_key_id TO actor_id;
ALTER TABLE audit_log ADD COLUMN actor_type text NOT NULL DEFAULT 'api_key'
    CHECK (actor_type IN ('api_key', 'agent', 'cli'));
ALTER TABLE audit_log ALTER COLUMN actor_type DROP DEFAULT;

-- Idempotency keys are scoped to the caller: an API key or an agent.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_api_key_id_fkey;
ALTER TABLE idempotency_keys RENAME COLUMN api_key_id TO principal_id;

-- +goose Down
DELETE FROM idempotency_keys WHERE principal_id NOT IN (SELECT id FROM api_keys);
ALTER TABLE idempotency_keys RENAME COLUMN principal_id TO api_key_id;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_api_key_id_fkey
    FOREIGN KEY (api_key_id) REFERENCES api_keys (id);

DELETE FROM audit_log WHERE actor_type <> 'api_key';
ALTER TABLE audit_log DROP COLUMN actor_type;
ALTER TABLE audit_log RENAME COLUMN actor_id TO api_key_id;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_api_key_id_fkey
    FOREIGN KEY (api_key_id) REFERENCES api_keys (id);

DROP TABLE sessions;
ALTER TABLE agents DROP COLUMN password_hash;
ALTER TABLE agents DROP COLUMN role;
