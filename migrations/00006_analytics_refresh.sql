-- +goose Up
-- The analytics refresh pages through tickets and SLA rows changed since its
-- watermark, keyed by (updated_at, id), and recomputing an hour reads the
-- tickets resolved in it.
CREATE INDEX ticket_sla_updated_at_idx ON ticket_sla (updated_at, ticket_id);
CREATE INDEX tickets_resolved_at_idx ON tickets (resolved_at) WHERE resolved_at IS NOT NULL;

-- +goose Down
DROP INDEX tickets_resolved_at_idx;
DROP INDEX ticket_sla_updated_at_idx;
