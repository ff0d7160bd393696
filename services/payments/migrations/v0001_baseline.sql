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

-- The idempotency pattern can be switched off (PATTERNS without idempotency): every charge
-- request is then a new charge, stored with `deduplicated` false, so a retried charge is
-- charged again. Only deduplicated charges keep their key unique; every charge has its
-- own id.
ALTER TABLE charges ADD COLUMN IF NOT EXISTS deduplicated boolean NOT NULL DEFAULT true;
ALTER TABLE charges ADD COLUMN IF NOT EXISTS charge_id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX IF NOT EXISTS charges_idempotency_key ON charges (idempotency_key) WHERE deduplicated;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
               WHERE c.conrelid = 'charges'::regclass AND c.contype = 'p' AND a.attname = 'idempotency_key') THEN
        ALTER TABLE charges DROP CONSTRAINT charges_pkey;
        ALTER TABLE charges ADD PRIMARY KEY (charge_id);
    END IF;
END
$$;
