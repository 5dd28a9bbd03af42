-- +goose Up
-- The ID of the record that the request of a key created, written in the
-- create's own transaction. A claim whose create committed is never taken
-- over, even when its response was never stored.
ALTER TABLE idempotency_keys ADD COLUMN resource_id text;

-- +goose Down
ALTER TABLE idempotency_keys DROP COLUMN resource_id;
