-- The transactional outbox table (services/common/data/outbox.py); orders runs it as a migration.
-- `destination` names the service the relay delivers to (notifications, payments).
CREATE TABLE IF NOT EXISTS outbox_events (
    event_id       uuid PRIMARY KEY,
    type           text NOT NULL,
    order_id       text NOT NULL,
    correlation_id text,
    payload        jsonb NOT NULL,
    destination    text NOT NULL DEFAULT 'notifications',
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz,
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text
);
ALTER TABLE outbox_events ADD COLUMN IF NOT EXISTS destination text NOT NULL DEFAULT 'notifications';
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox_events (destination, created_at) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_published ON outbox_events (published_at) WHERE published_at IS NOT NULL;
