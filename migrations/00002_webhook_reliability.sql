-- +goose Up
-- Secret rotation: the previous secret keeps signing until it expires.
ALTER TABLE webhook_endpoints
    ADD COLUMN previous_secret            text NOT NULL DEFAULT '',
    ADD COLUMN previous_secret_expires_at timestamptz,
    ADD COLUMN failing_since              timestamptz,
    ADD COLUMN consecutive_failures       integer NOT NULL DEFAULT 0,
    ADD COLUMN disabled_reason            text NOT NULL DEFAULT '',
    ADD COLUMN disabled_at                timestamptz;

-- next_attempt_at is when a pending delivery is due; the reconciler uses it
-- to re-enqueue deliveries whose task Redis lost.
-- retry_base is the attempt count when the current series of attempts
-- began: a manual redelivery starts a new series with the full retry
-- schedule.
ALTER TABLE webhook_deliveries
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN retry_base      integer NOT NULL DEFAULT 0,
    ADD COLUMN last_error      text NOT NULL DEFAULT '';
UPDATE webhook_deliveries SET next_attempt_at = updated_at WHERE status = 'pending';
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_status_idx ON webhook_deliveries (endpoint_id, status, created_at);

ALTER TABLE webhook_attempts
    ADD COLUMN error_class     text NOT NULL DEFAULT '',
    ADD COLUMN request_headers jsonb NOT NULL DEFAULT '{}';

-- fanned_out_at marks events whose deliveries exist; the reconciler
-- re-enqueues the fan-out of dispatched events that lack it.
ALTER TABLE events
    ADD COLUMN fanned_out_at timestamptz;
UPDATE events SET fanned_out_at = dispatched_at WHERE dispatched_at IS NOT NULL;
CREATE INDEX events_unfanned_idx ON events (dispatched_at)
    WHERE fanned_out_at IS NULL AND dispatched_at IS NOT NULL;

-- +goose Down
DROP INDEX events_unfanned_idx;
ALTER TABLE events DROP COLUMN fanned_out_at;
ALTER TABLE webhook_attempts DROP COLUMN request_headers, DROP COLUMN error_class;
DROP INDEX webhook_deliveries_endpoint_status_idx;
DROP INDEX webhook_deliveries_pending_idx;
ALTER TABLE webhook_deliveries DROP COLUMN last_error, DROP COLUMN retry_base, DROP COLUMN next_attempt_at;
ALTER TABLE webhook_endpoints
    DROP COLUMN disabled_at,
    DROP COLUMN disabled_reason,
    DROP COLUMN consecutive_failures,
    DROP COLUMN failing_since,
    DROP COLUMN previous_secret_expires_at,
    DROP COLUMN previous_secret;
