-- The idempotency pattern can be switched off (PATTERNS without idempotency): an order is
-- then stored with `deduplicated` false and its key, still the client's, no longer makes
-- it a repeat of another order. Only deduplicated orders keep their key unique, so a key
-- with several orders is what idempotency-off allowed, and `chaoslab compare` counts them.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS deduplicated boolean NOT NULL DEFAULT true;
CREATE UNIQUE INDEX IF NOT EXISTS orders_idempotency_key ON orders (idempotency_key) WHERE deduplicated;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_idempotency_key_key;
