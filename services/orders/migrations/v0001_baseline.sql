-- One row per idempotency key. A `pending` order is owned by whoever holds its lease
-- (the request that created it, or the sweeper once the lease has expired).
CREATE TABLE IF NOT EXISTS orders (
    order_id        uuid PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    request_hash    text NOT NULL,
    customer_id     text NOT NULL,
    requested_items jsonb NOT NULL,
    items           jsonb,
    total_cents     bigint,
    status          text NOT NULL,
    response_status integer,
    response_body   json,  -- json, not jsonb: a replay must be byte-identical to the first answer
    correlation_id  text,
    lease_token     uuid,
    lease_until     timestamptz,
    attempts        integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_pending ON orders (lease_until) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS orders_created_at ON orders (created_at DESC);
CREATE INDEX IF NOT EXISTS orders_status ON orders (status, created_at DESC);

-- The idempotency pattern can be switched off (PATTERNS without idempotency): an order is
-- then stored with `deduplicated` false and its key, still the client's, no longer makes
-- it a repeat of another order. Only deduplicated orders keep their key unique, so a key
-- with several orders is what idempotency-off allowed, and `chaoslab compare` counts them.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS deduplicated boolean NOT NULL DEFAULT true;
CREATE UNIQUE INDEX IF NOT EXISTS orders_idempotency_key ON orders (idempotency_key) WHERE deduplicated;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_idempotency_key_key;
