CREATE TABLE IF NOT EXISTS products (
    sku              text PRIMARY KEY,
    name             text NOT NULL,
    unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
    initial          integer NOT NULL CHECK (initial >= 0),
    available        integer NOT NULL CHECK (available >= 0),
    reserved         integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    committed        integer NOT NULL DEFAULT 0 CHECK (committed >= 0)
);

-- One row per order: its lifecycle is reserved -> committed | released; rejected when
-- stock was short; a release that arrives first leaves a released tombstone.
CREATE TABLE IF NOT EXISTS reservations (
    order_id    text PRIMARY KEY,
    status      text NOT NULL CHECK (status IN ('reserved', 'committed', 'released', 'rejected')),
    items       jsonb NOT NULL,
    total_cents bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
