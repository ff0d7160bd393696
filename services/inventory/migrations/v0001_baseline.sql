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

-- The stock rules of services/inventory/stock.py, each one function, so that each is one
-- round trip to the database (and one implicit transaction) instead of seven statements
-- from Python. Every statement in a function sees what committed before it began (read
-- committed), so the steps keep the order they had as separate statements:
--
--   1. the order's advisory lock, which serialises every operation on one order;
--   2. the order's reservation, read under that lock: a repeat answers what it holds;
--   3. the products' rows locked in SKU order (`FOR UPDATE`), so that two orders never
--      deadlock, then read again under those locks;
--   4. the writes.
--
-- Each answers (outcome, status, items, total_cents, detail): outcome 'ok' with the
-- reservation, or why not ('unknown_sku' with the SKUs in `detail`, 'not_found',
-- 'committed', 'not_active'); stock.py turns a refusal into its error. A refusal is
-- decided before anything is written.

CREATE OR REPLACE FUNCTION stock_reserve(
    p_order_id text, p_skus text[], p_quantities integer[], p_hold_locks_s double precision,
    OUT outcome text, OUT res_status text, OUT res_items jsonb, OUT res_total_cents bigint, OUT detail text
) LANGUAGE plpgsql AS $$
DECLARE
    existing reservations%ROWTYPE;
    wanted_skus text[];
    wanted_quantities integer[];
    locked integer;
    short boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('reservation:' || p_order_id));
    SELECT * INTO existing FROM reservations r WHERE r.order_id = p_order_id;
    IF FOUND THEN
        outcome := 'ok';
        res_status := existing.status;
        res_items := existing.items;
        res_total_cents := existing.total_cents;
        RETURN;
    END IF;
    -- Units per SKU (an order may list one SKU twice).
    SELECT array_agg(w.sku ORDER BY w.sku), array_agg(w.qty ORDER BY w.sku) INTO wanted_skus, wanted_quantities
    FROM (SELECT u.sku, sum(u.qty)::integer AS qty FROM unnest(p_skus, p_quantities) AS u(sku, qty) GROUP BY u.sku) AS w;
    PERFORM 1 FROM products p WHERE p.sku = ANY(wanted_skus) ORDER BY p.sku FOR UPDATE;
    GET DIAGNOSTICS locked = ROW_COUNT;
    IF locked < cardinality(wanted_skus) THEN
        SELECT string_agg(w.sku, ', ' ORDER BY w.sku COLLATE "C") INTO detail
        FROM unnest(wanted_skus) AS w(sku) WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.sku = w.sku);
        outcome := 'unknown_sku';
        RETURN;
    END IF;
    IF p_hold_locks_s > 0 THEN
        PERFORM pg_sleep(p_hold_locks_s);  -- the lock-contention fault: keep the row locks that long
    END IF;
    SELECT jsonb_agg(jsonb_build_object('sku', u.sku, 'quantity', u.qty, 'unit_price_cents', p.unit_price_cents)
                     ORDER BY u.pos),
           sum(u.qty::bigint * p.unit_price_cents)::bigint,
           (SELECT bool_or(p.available < w.qty)
            FROM unnest(wanted_skus, wanted_quantities) AS w(sku, qty) JOIN products p ON p.sku = w.sku)
    INTO res_items, res_total_cents, short
    FROM unnest(p_skus, p_quantities) WITH ORDINALITY AS u(sku, qty, pos) JOIN products p ON p.sku = u.sku;
    res_status := CASE WHEN short THEN 'rejected' ELSE 'reserved' END;
    IF NOT short THEN
        UPDATE products p SET available = p.available - w.qty, reserved = p.reserved + w.qty
        FROM unnest(wanted_skus, wanted_quantities) AS w(sku, qty) WHERE p.sku = w.sku;
    END IF;
    INSERT INTO reservations (order_id, status, items, total_cents)
    VALUES (p_order_id, res_status, res_items, res_total_cents);
    outcome := 'ok';
END
$$;

-- Settle a reserved order: commit it (paid) or release it (compensation). With no
-- reservation yet, a release leaves a tombstone so that a late reserve for the order
-- cannot take stock after the order has given up.
CREATE OR REPLACE FUNCTION stock_settle(
    p_order_id text, p_commit boolean,
    OUT outcome text, OUT res_status text, OUT res_items jsonb, OUT res_total_cents bigint, OUT detail text
) LANGUAGE plpgsql AS $$
DECLARE
    existing reservations%ROWTYPE;
    wanted_skus text[];
    wanted_quantities integer[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('reservation:' || p_order_id));
    SELECT * INTO existing FROM reservations r WHERE r.order_id = p_order_id;
    IF NOT FOUND THEN
        IF p_commit THEN
            outcome := 'not_found';
            RETURN;
        END IF;
        INSERT INTO reservations (order_id, status, items, total_cents) VALUES (p_order_id, 'released', '[]', 0);
        outcome := 'ok';
        res_status := 'released';
        res_items := '[]';
        res_total_cents := 0;
        RETURN;
    END IF;
    res_status := existing.status;
    res_items := existing.items;
    res_total_cents := existing.total_cents;
    IF existing.status = 'committed' THEN
        outcome := CASE WHEN p_commit THEN 'ok' ELSE 'committed' END;
        RETURN;
    END IF;
    IF existing.status <> 'reserved' THEN
        outcome := CASE WHEN p_commit THEN 'not_active' ELSE 'ok' END;
        RETURN;
    END IF;
    -- Units per SKU (an order may list one SKU twice).
    SELECT array_agg(w.sku ORDER BY w.sku), array_agg(w.qty ORDER BY w.sku) INTO wanted_skus, wanted_quantities
    FROM (SELECT e->>'sku' AS sku, sum((e->>'quantity')::integer)::integer AS qty
          FROM jsonb_array_elements(existing.items) AS e GROUP BY 1) AS w;
    PERFORM 1 FROM products p WHERE p.sku = ANY(wanted_skus) ORDER BY p.sku FOR UPDATE;
    IF p_commit THEN
        UPDATE products p SET reserved = p.reserved - w.qty, committed = p.committed + w.qty
        FROM unnest(wanted_skus, wanted_quantities) AS w(sku, qty) WHERE p.sku = w.sku;
        res_status := 'committed';
    ELSE
        UPDATE products p SET available = p.available + w.qty, reserved = p.reserved - w.qty
        FROM unnest(wanted_skus, wanted_quantities) AS w(sku, qty) WHERE p.sku = w.sku;
        res_status := 'released';
    END IF;
    UPDATE reservations SET status = res_status, updated_at = now() WHERE order_id = p_order_id;
    outcome := 'ok';
END
$$;
