-- The transactional outbox table (services/common/data/outbox.py): part of orders' baseline
-- migration (services/orders/migrations/v0001_baseline.py).
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
-- A relay claims a batch for `claimed_until` (a lease, committed at once) and delivers it
-- outside any transaction; a relay that dies mid-delivery leaves a claim that expires.
ALTER TABLE outbox_events ADD COLUMN IF NOT EXISTS claim_token uuid;
ALTER TABLE outbox_events ADD COLUMN IF NOT EXISTS claimed_until timestamptz;
-- Answers refusing this event on its own (counted against outbox_max_attempts), and when
-- it may be tried again: a refused event backs off alone, the events behind it go on.
ALTER TABLE outbox_events ADD COLUMN IF NOT EXISTS refusals integer NOT NULL DEFAULT 0;
ALTER TABLE outbox_events ADD COLUMN IF NOT EXISTS retry_at timestamptz;
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox_events (destination, created_at) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_published ON outbox_events (published_at) WHERE published_at IS NOT NULL;
-- Events their destination refused for good (a permanent 4xx, or outbox_max_attempts
-- refusals): moved here, out of the way of the events behind them. Never delivered.
CREATE TABLE IF NOT EXISTS outbox_dead_letters (
    event_id         uuid PRIMARY KEY,
    type             text NOT NULL,
    order_id         text NOT NULL,
    correlation_id   text,
    payload          jsonb NOT NULL,
    destination      text NOT NULL,
    created_at       timestamptz NOT NULL,
    attempts         integer NOT NULL,
    last_error       text,
    dead_lettered_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS outbox_dead_letters_destination ON outbox_dead_letters (destination);
