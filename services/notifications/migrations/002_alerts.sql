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
