-- The inbox de-duplicates deliveries: an event id is processed once, however often the
-- outbox relay sends it; `duplicates` counts the redeliveries it absorbed.
CREATE TABLE IF NOT EXISTS inbox (
    event_id       uuid PRIMARY KEY,
    type           text NOT NULL,
    order_id       text NOT NULL,
    correlation_id text,
    payload        jsonb NOT NULL,
    created_at     timestamptz NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    duplicates     integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS inbox_order_id ON inbox (order_id);
CREATE INDEX IF NOT EXISTS inbox_received_at ON inbox (received_at DESC);
