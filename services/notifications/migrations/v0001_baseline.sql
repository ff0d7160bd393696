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

-- Alerts from Alertmanager's webhook, one row per alert and status change, so a trainee
-- without Grafana still sees alerts arrive and resolve.
CREATE TABLE IF NOT EXISTS alerts (
    id          bigserial PRIMARY KEY,
    fingerprint text NOT NULL,
    status      text NOT NULL,
    alertname   text NOT NULL,
    labels      jsonb NOT NULL,
    annotations jsonb NOT NULL,
    starts_at   timestamptz,
    ends_at     timestamptz,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alerts_received_at ON alerts (received_at DESC);

-- The Alertmanager receiver an alert was sent to: `page` (someone acts now) or `ticket`
-- (someone looks today); empty for alerts stored before receivers existed.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS receiver text NOT NULL DEFAULT '';
