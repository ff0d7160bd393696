-- One row per idempotency key: a retry of the same charge finds it and gets the same
-- answer. `voided` is both a refunded charge and a tombstone that refuses a late one.
CREATE TABLE IF NOT EXISTS charges (
    idempotency_key text PRIMARY KEY,
    order_id        text NOT NULL,
    customer_id     text NOT NULL,
    amount_cents    bigint NOT NULL CHECK (amount_cents >= 0),
    status          text NOT NULL CHECK (status IN ('succeeded', 'declined', 'voided')),
    reason          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS charges_order_id ON charges (order_id);
