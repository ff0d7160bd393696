"""The incident catalogue: the one place the wave-1 incidents' commands live.

`runbook.md` (`chaoslab runbook --write`) and the Chaos Toolkit experiments in
chaos/experiments/ are generated from this file, and the drills run these very
commands, so the runbook, the experiments and the drills cannot drift apart. Commands
run from the repository root; `chaoslab` finds the stack through $CHAOSLAB_RUN_DIR
(default ./.chaoslab) and the scripts find Redis through $REDIS_URL.
"""

from __future__ import annotations

from chaos.drills.model import Incident, Page, Step, sh

STATUS = sh("chaoslab status")
BREAKERS = sh("chaoslab breakers")
ALERTS = sh("chaoslab alerts")
FAULTS = sh("chaoslab chaos list")
VERIFY_NOTE = (
    "Run `chaoslab verify`: every confirmed order has exactly one successful charge, no failed "
    "order keeps one, stock is conserved and every outbox event reached its destination once."
)


def _load(scenario: str, note: str) -> Step:
    return Step(action=f"start_load:{scenario}", note=note)


# The SLOs of prometheus/slos.yml an incident can spend (docs/slo.md).
AVAILABILITY = "orders-availability"
LATENCY = "orders-latency"

# The payments version the migration-failure drill's migration sits on.
PAYMENTS_LATEST = "0001"

STOP_LOAD = Step(action="stop_load", note="Stop the runaway load (Ctrl-C in locust, or stop the client).")

INCIDENTS: tuple[Incident, ...] = (
    Incident(
        id="payments-errors",
        title="Payments fails most calls",
        severity="SEV1",
        slos=(AVAILABILITY,),
        page=Page(AVAILABILITY, bad_share=0.5),
        what_happens=(
            "payments answers 5xx to most charges. Orders' breaker on payments opens, so calls fail at once "
            "instead of piling up; orders end payment_failed and their stock is released."
        ),
        alert="PaymentsErrors",
        symptoms=(
            '`downstream_requests_total{to_service="payments",outcome="error"}` climbing, then '
            '`outcome="breaker_open"`',
            '`breaker_state{downstream="payments"}` = 1 on orders',
            '`order_success_rate` far below 0.9; `orders_total{status="payment_failed"}` rising',
        ),
        diagnose=(BREAKERS, FAULTS, sh("chaoslab logs payments --lines 20")),
        inject=(sh("chaos/scripts/payment_errors.sh enable 0.9"),),
        remediate=(sh("chaos/scripts/payment_errors.sh disable"),),
        recovered=(
            "The breaker goes half-open after its wait, the trial calls succeed and it closes; "
            "`order_success_rate` is back above 0.9."
        ),
        data_loss=(
            VERIFY_NOTE + " Orders that failed while payments erred have their stock released; any charge "
            "whose answer was lost is voided through the outbox."
        ),
        compose=(
            "docker compose exec redis redis-cli SET chaos:payments:error_rate 0.9 EX 600",
            "docker compose exec redis redis-cli DEL chaos:payments:error_rate",
        ),
        faults=(("payments", "error_rate", 0.9),),
        recover_gates=("breaker_wait_open_s",),  # orders' breaker stays open this long
    ),
    Incident(
        id="payments-latency",
        title="Payments is slow",
        severity="SEV2",
        slos=(LATENCY, AVAILABILITY),
        what_happens=(
            "payments takes seconds to answer. Orders' calls time out at their budget and the slow-call "
            "breaker opens, so the gateway keeps answering in bounded time."
        ),
        alert="PaymentsLatency",
        symptoms=(
            '`job:http_request_duration_seconds:p99_rate1m{job="payments"}` over 1 s',
            '`downstream_requests_total{to_service="payments",outcome="timeout"}` rising',
            '`breaker_calls_total{downstream="payments",outcome=~"slow.*"}` rising',
        ),
        diagnose=(BREAKERS, sh("chaoslab query 'job:http_request_duration_seconds:p99_rate1m'")),
        inject=(sh("chaos/scripts/payment_slow.sh enable 2500"),),
        remediate=(sh("chaos/scripts/payment_slow.sh disable"),),
        recovered="Payments' p99 falls under 1 s and the breaker closes.",
        data_loss=VERIFY_NOTE + " A charge that finished after orders gave up is voided through the outbox.",
        compose=("docker compose exec redis redis-cli SET chaos:payments:latency_ms 2500 EX 600",),
        faults=(("payments", "latency_ms", 2500),),
        recover_gates=("breaker_wait_open_s",),  # orders' breaker stays open this long
    ),
    Incident(
        id="payments-down",
        title="Payments process dead",
        severity="SEV1",
        slos=(AVAILABILITY,),
        page=Page(AVAILABILITY, bad_share=0.5),
        what_happens=(
            "The payments process is gone and does not come back. Its target is down in Prometheus; orders' "
            "breaker opens on refused connections and orders end payment_failed."
        ),
        alert="PaymentsDown",
        symptoms=(
            '`up{job="payments"}` = 0',
            '`downstream_requests_total{to_service="payments",outcome="unreachable"}`',
        ),
        diagnose=(STATUS, BREAKERS),
        inject=(sh("chaoslab stop payments"),),
        remediate=(sh("chaoslab start payments"),),
        recovered='`up{job="payments"}` is 1 and the breaker closes.',
        data_loss=VERIFY_NOTE,
        compose=("docker compose stop payments", "docker compose start payments"),
        recover_gates=("breaker_wait_open_s",),  # orders' breaker stays open this long
    ),
    Incident(
        id="inventory-lock",
        # The bulkhead refuses instead of queueing: most orders get 503 while inventory holds its
        # locks (measured 77% in ci, 74% in training).
        max_5xx_share=0.9,
        title="Inventory lock contention",
        severity="SEV2",
        slos=(AVAILABILITY, LATENCY),
        what_happens=(
            "inventory holds its stock row locks for seconds. Under load, orders' bulkhead on inventory "
            "fills and rejects the excess at once instead of queueing it."
        ),
        alert="InventoryLock",
        symptoms=(
            '`bulkhead_rejections_total{downstream="inventory"}` rising',
            '`bulkhead_inflight{downstream="inventory"}` at its limit',
            "inventory's p99 in seconds",
        ),
        diagnose=(BREAKERS, sh("chaoslab query 'sum by (downstream) (rate(bulkhead_rejections_total[1m]))'")),
        inject=(
            sh("chaos/scripts/inventory_lock.sh enable 1500"),
            _load("shop", "The usual evening peak of shoppers."),
        ),
        remediate=(sh("chaos/scripts/inventory_lock.sh disable"), STOP_LOAD),
        recovered=(
            "Bulkhead rejections stop and orders succeed again (or scale inventory: `chaoslab scale inventory 2`)."
        ),
        data_loss=VERIFY_NOTE,
        compose=("docker compose exec redis redis-cli SET chaos:inventory:lock_contention_ms 1500 EX 600",),
        extra={"users": "40"},
        faults=(("inventory", "lock_contention_ms", 1500),),
        recover_gates=("breaker_wait_open_s",),  # orders' breaker stays open this long
    ),
    Incident(
        id="gateway-overload",
        # The default static door of 128 lets part of the surge through as 5xx (28% in ci):
        # the drill allows half. With ADMISSION=adaptive the gateway sheds it with 429
        # instead (0.05% and 7% 5xx in two ci runs on a loaded machine).
        title="Traffic surge past capacity",
        severity="SEV2",
        slos=(AVAILABILITY,),
        page=Page(AVAILABILITY, bad_share=0.3),
        what_happens=(
            "A surge sends more requests than the gateway admits. It sheds the excess with 429 and "
            "Retry-After while the admitted requests keep their latency."
        ),
        alert="GatewayOverload",
        symptoms=(
            "`load_shed_total` rising on the gateway",
            '`http_inflight_requests{job="gateway"}` at `concurrency_limit` (MAX_INFLIGHT with static admission)',
            '`job:http_requests_429:ratio_rate1m{job="gateway"}` over 0.05',
        ),
        diagnose=(
            sh("chaoslab query 'rate(load_shed_total[1m])'"),
            sh("chaoslab query 'job:http_request_duration_seconds:p99_rate1m{job=\"gateway\"}'"),
        ),
        inject=(_load("shop/surge", "A marketing push: locust's SurgeShape (CHAOSLAB_SHAPE=surge)."),),
        remediate=(STOP_LOAD,),
        recovered=(
            "Shedding stops once the surge is over "
            "(or scale the stack: a learning door, as the training gateway's, follows it)."
        ),
        data_loss=VERIFY_NOTE + " A shed request never reached orders: its client retries with the same key.",
        extra={
            "CHAOSLAB_SURGE_BASE_USERS": "5",
            "CHAOSLAB_SURGE_PEAK_USERS": "250",
            "CHAOSLAB_SURGE_BASE_SECONDS": "2",
            "CHAOSLAB_SURGE_SECONDS": "300",
            "CHAOSLAB_THINK_MIN_S": "0",
            "CHAOSLAB_THINK_MAX_S": "0.05",
        },
        max_5xx_share=0.5,
    ),
    Incident(
        id="cannot-scale",
        title="Load beyond one payments replica",
        severity="SEV2",
        slos=(LATENCY,),
        what_happens=(
            "More charges arrive than one payments replica can authorise. Each replica has a few card-processor "
            "connections (capacity: connections / service time: 30 charges/s in ci, 1280 in training, which a "
            "small machine cannot reach: there, drill it in ci or start with "
            "`--set payments:PROCESSOR_CONNECTIONS=2`, 40 charges/s, as `make drills` does); "
            "all of them stay busy, charges queue for one, and latency climbs while throughput stays flat. Each new "
            "replica brings its own connections."
        ),
        alert="CannotScale",
        symptoms=(
            "`payments_processor_waiting` at 1 or more: every one of `payments_processor_connections` busy",
            '`payments_processor_wait_seconds` rising; `job:http_request_duration_seconds:p99_rate1m{job="payments"}` '
            "over 0.5 s, or the gateway's adaptive door shedding the excess (`load_shed_total`, GatewayOverload) "
            "to keep latency near the quiet one",
            "orders/s flat while shoppers grow",
        ),
        diagnose=(
            sh("chaoslab query 'payments_processor_waiting'"),
            sh("chaoslab query 'payments_processor_connections_in_use / payments_processor_connections'"),
            sh("chaoslab query 'job:http_request_duration_seconds:p99_rate1m{job=\"payments\"}'"),
        ),
        inject=(
            _load(
                "shop/step",
                "A capacity step: locust's StepShape (CHAOSLAB_SHAPE=step) adds shoppers past one replica's capacity.",
            ),
        ),
        remediate=(sh("chaoslab scale payments 3"),),
        recovered=(
            "No charge waits for a connection any more, payments' p99 falls under 0.5 s and the alert resolves; "
            "orders/s follows the shoppers again. Scale back down once the load is gone."
        ),
        data_loss=(
            VERIFY_NOTE + " A charge that queued past its caller's deadline is never made: the processor hands the "
            "connection back, so no order is charged behind a timeout."
        ),
        extra={
            "users": "60",
            "CHAOSLAB_STEP_USERS": "60",
            "CHAOSLAB_STEP_MAX_USERS": "60",
            "CHAOSLAB_STEP_SECONDS": "300",
            "CHAOSLAB_THINK_MIN_S": "0.3",
            "CHAOSLAB_THINK_MAX_S": "0.7",
        },
        recovered_when='max(job:http_request_duration_seconds:p99_rate1m{job="payments"}) < 0.5',
    ),
    Incident(
        id="outbox-backlog",
        title="Notifications down, outbox grows",
        severity="SEV3",
        what_happens=(
            "notifications is down. Orders keep succeeding; their events wait in the outbox, which grows, "
            "then drains once notifications is back. Nothing is lost, nothing is sent twice."
        ),
        alert="OutboxBacklog",
        symptoms=(
            '`outbox_pending{destination="notifications"}` growing',
            "`outbox_oldest_age_seconds` over 30",
            '`outbox_delivery_failures_total` rising; `up{job="notifications"}` = 0',
        ),
        diagnose=(STATUS, sh("chaoslab query 'outbox_pending'")),
        inject=(sh("chaoslab stop notifications"),),
        remediate=(sh("chaoslab start notifications"),),
        recovered="`outbox_pending` falls back to 0 on its own: the relay drains the backlog.",
        data_loss=VERIFY_NOTE + " Each event is in notifications' inbox exactly once (duplicates are absorbed).",
        compose=("docker compose stop notifications", "docker compose start notifications"),
        detect_extra_s=30,  # the oldest event must first age past OutboxBacklog's 30 s
        recovered_when='max(outbox_oldest_age_seconds{destination="notifications"}) < 5',
    ),
    Incident(
        id="outbox-stuck",
        title="Outbox relay stuck",
        severity="SEV3",
        what_happens=(
            "The relay in orders hangs while notifications is healthy: events pile up and none fail. "
            "Only a restart of orders brings delivery back."
        ),
        alert="OutboxStuck",
        symptoms=(
            '`outbox_pending{destination="notifications"}` growing while `up{job="notifications"}` = 1',
            "no `outbox_delivered_total` increase and no delivery failures",
            "the log line `outbox.relay_stuck` in `chaoslab logs orders`",
        ),
        diagnose=(STATUS, sh("chaoslab logs orders --lines 30")),
        inject=(sh("chaos/scripts/outbox_pause.sh enable --ttl 5"),),
        remediate=(sh("chaoslab restart orders"),),
        recovered="`outbox_pending` drains to 0 after the restart.",
        data_loss=VERIFY_NOTE,
        compose=("docker compose restart orders",),
        detect_extra_s=30,  # the oldest event must first age past OutboxStuck's 30 s
        faults=(("orders", "outbox_paused", True),),
        recovered_when='max(outbox_oldest_age_seconds{destination="notifications"}) < 5',
    ),
    Incident(
        id="duplicate-storm",
        # A duplicate that arrives while its key is in flight is told 503 "still being processed,
        # retry with the same key" (measured 19% of answers in ci).
        max_5xx_share=0.4,
        title="Duplicate request storm",
        severity="SEV3",
        slos=(AVAILABILITY,),
        what_happens=(
            "Clients retry one order many times at once with the same idempotency key. Orders answers "
            "them all with the one order: one reservation, one charge."
        ),
        alert="DuplicateStorm",
        symptoms=('`idempotency_conflicts_total{kind=~"replayed|in_flight"}` rising',),
        diagnose=(sh("chaoslab query 'sum by (kind) (rate(idempotency_conflicts_total[1m]))'"),),
        inject=(_load("duplicates", "A buggy client retrying in bursts (locust's DuplicateStorm users)."),),
        remediate=(STOP_LOAD,),
        recovered="Nothing to fix in the stack: the conflicts stop with the storm.",
        data_loss=VERIFY_NOTE + " One order and at most one charge per key, whatever the storm.",
        extra={"users": "10"},
    ),
    Incident(
        id="retry-amplification",
        title="Retries amplify a partial failure",
        severity="SEV2",
        slos=(AVAILABILITY,),
        what_happens=(
            "About one in seven of payments' answers fails: far under the breaker's 50 % over its window of 100 "
            "calls (50 in ci), so it stays closed (at 40 % a small window passes 50 % by chance, and in training "
            "the breaker then stays open 30 s and hides the retries), enough to make orders retry one call in "
            "six. Orders retries with the same key, but only inside its retry budget, so a failing downstream "
            "never gets a multiple of its normal load."
        ),
        alert="RetryAmplification",
        symptoms=(
            '`downstream:retry_attempts:ratio_rate1m{downstream="payments"}` over 0.1',
            '`retry_budget_exhausted_total{downstream="payments"}` rising when the budget is spent',
        ),
        diagnose=(sh("chaoslab query 'downstream:retry_attempts:ratio_rate1m'"), BREAKERS),
        inject=(sh("chaos/scripts/payment_errors.sh enable 0.15"),),
        remediate=(sh("chaos/scripts/payment_errors.sh disable"),),
        recovered="The retry ratio falls back near 0.",
        data_loss=VERIFY_NOTE + " Retries carried the order's key: no charge is doubled.",
        faults=(("payments", "error_rate", 0.15),),
    ),
    Incident(
        id="cascading-failure",
        # Payments hangs and inventory is slow: orders are refused fast with 503 rather than
        # hanging (measured 72% in ci, 49% in training).
        max_5xx_share=0.9,
        title="Payments hangs and inventory slows",
        severity="SEV1",
        slos=(AVAILABILITY, LATENCY),
        page=Page(AVAILABILITY, bad_share=0.5),
        what_happens=(
            "payments stops answering and inventory slows down together. Timeouts, breakers and bulkheads "
            "keep the gateway answering quickly instead of hanging with them."
        ),
        alert="CascadingFailure",
        symptoms=(
            "`breaker_state` = 1 on more than one service",
            "timeouts to payments and inventory",
            "the gateway still answers in bounded time",
        ),
        diagnose=(BREAKERS, ALERTS),
        # Inventory slow for orders' breaker yet within its timeout (inventory_slow.sh's
        # default follows the profile), so reservations succeed and orders reach payments:
        # both of orders' breakers open. Past the timeout, orders would never call payments,
        # and only one breaker would (the gateway's on orders ignores 503s naming inventory).
        inject=(sh("chaos/scripts/payment_hang.sh enable 1.0"), sh("chaos/scripts/inventory_slow.sh enable")),
        remediate=(sh("chaos/scripts/payment_hang.sh disable"), sh("chaos/scripts/inventory_slow.sh disable")),
        recovered=(
            "Recover from the deepest service up: payments, then inventory; the breakers close one after the other."
        ),
        data_loss=VERIFY_NOTE,
        faults=(("payments", "hang_rate", 1.0), ("inventory", "latency_ms", 2000)),  # training's values
        # Two breakers must open, each over a count window that the steady state filled with
        # successes: half its calls (50 of 100 in training, 25 of 50 in ci) must fail first, and
        # at the drill's few orders/s, every one of them waiting for a timeout, that takes
        # 15-25 s on each edge (measured 137 s of 153 to detect in training, 27 of 31 in ci).
        detect_extra_s=30,
        recover_gates=("breaker_wait_open_s",),  # orders' breaker stays open this long
    ),
    Incident(
        id="database-down",
        title="PostgreSQL unreachable",
        severity="SEV1",
        slos=(AVAILABILITY,),
        page=Page(AVAILABILITY, bad_share=0.5),
        what_happens="PostgreSQL is down. Services answer 503 fast instead of hanging; no order is half-written.",
        alert="DatabaseDown",
        symptoms=("`db_up` = 0 on every service with a database", "503 `database_unavailable` answers"),
        diagnose=(STATUS,),
        inject=(sh("chaoslab stop postgres"),),
        remediate=(sh("chaoslab start postgres"),),
        recovered="`db_up` is 1 everywhere; pending orders are finished by the sweeper.",
        data_loss=VERIFY_NOTE,
        compose=("docker compose stop postgres", "docker compose start postgres"),
        steady_success=0.9,
        recover_gates=("breaker_wait_open_s",),  # 503s from the database open orders' breakers
        max_5xx_share=1.0,  # every order is answered 503 while the database is down: that is the incident
    ),
    Incident(
        id="db-pool-exhaustion",
        title="Database pool exhausted",
        severity="SEV2",
        slos=(AVAILABILITY, LATENCY),
        what_happens=(
            "Connections are held and not given back. Requests wait for the pool up to its acquire timeout, "
            "then fail with 503: never for ever."
        ),
        alert="DbPoolExhaustion",
        symptoms=("`db_pool_in_use` = `db_pool_size`", "`db_pool_waiting` > 0", "`db_pool_timeouts_total` rising"),
        diagnose=(sh("chaoslab query 'db_pool_in_use / db_pool_size'"),),
        inject=(sh("chaos/scripts/db_pool_hold.sh enable 10 --service payments"),),
        remediate=(sh("chaos/scripts/db_pool_hold.sh disable --service payments"),),
        recovered="The pool has idle connections again and the timeouts stop.",
        data_loss=VERIFY_NOTE,
        faults=(("payments", "db_pool_hold", 10),),
        recover_gates=("breaker_wait_open_s",),  # payments' 503s open orders' breaker
    ),
    Incident(
        id="redis-down",
        title="Redis (the chaos store) down",
        severity="SEV3",
        what_happens="Redis is gone. Services keep serving, with no faults, and say so in `chaos_store_up`.",
        alert="RedisDown",
        symptoms=("`chaos_store_up` = 0 on every service", "orders keep succeeding"),
        diagnose=(STATUS,),
        inject=(sh("chaoslab stop redis"),),
        remediate=(sh("chaoslab start redis"),),
        recovered="`chaos_store_up` is 1 everywhere.",
        data_loss=VERIFY_NOTE,
        compose=("docker compose stop redis", "docker compose start redis"),
    ),
    Incident(
        id="worker-unhealthy",
        title="One payments replica fails every call",
        severity="SEV2",
        slos=(AVAILABILITY,),
        what_happens=(
            "Of three payments replicas, one fails every call. Orders ejects it from its pool and the two "
            "healthy replicas take the traffic."
        ),
        alert="WorkerUnhealthy",
        symptoms=(
            '`instance:http_requests_5xx:ratio_rate1m{job="payments"}` high on one instance only',
            '`replica_ejections_total{downstream="payments"}` rising',
        ),
        diagnose=(BREAKERS, STATUS),
        inject=(sh("chaoslab scale payments 3"), sh("chaos/scripts/payment_errors.sh enable 1.0 --replica 2")),
        remediate=(sh("chaoslab scale payments 2"), sh("chaos/scripts/payment_errors.sh disable --replica 2")),
        recovered="The faulty replica is gone; the 5xx ratio of every remaining replica is near 0.",
        data_loss=VERIFY_NOTE,
        compose=("docker compose up -d --scale payments=3",),
    ),
    Incident(
        id="monitoring-down",
        title="Prometheus down",
        severity="SEV3",
        what_happens=(
            "Prometheus dies. The stack keeps serving, but no alert can fire. Alertmanager notices: the "
            "Watchdog alert, the dead man's switch that Prometheus always fires, stops being resent and drops "
            "out of Alertmanager's active alerts within a minute (8 s in ci)."
        ),
        alert="Watchdog",
        detection="dead-mans-switch",
        symptoms=(
            "`Watchdog` missing from Alertmanager's active alerts "
            "(`amtool alert query alertname=Watchdog --alertmanager.url=http://127.0.0.1:9093` prints nothing)",
            "Prometheus' /-/ready does not answer",
            "Grafana panels show a gap",
        ),
        diagnose=(STATUS,),
        inject=(sh("chaoslab stop prometheus"),),
        remediate=(sh("chaoslab start prometheus"),),
        recovered="Prometheus answers, `Watchdog` is active in Alertmanager again and `order_success_rate` has data.",
        data_loss=VERIFY_NOTE + " Monitoring was blind, not the stack: orders placed during the gap are all there.",
        compose=("docker compose stop prometheus", "docker compose start prometheus"),
    ),
    Incident(
        id="memory-leak",
        title="A service leaks memory",
        severity="SEV2",
        what_happens="inventory leaks memory until it is restarted.",
        alert="MemoryLeak",
        symptoms=('`process_resident_memory_bytes{job="inventory"}` climbing', "`deriv(...)` steadily positive"),
        diagnose=(sh("chaoslab query 'process_resident_memory_bytes{job=\"inventory\"}'"),),
        inject=(sh("chaos/scripts/memory_leak.sh enable 20 --service inventory"),),
        remediate=(sh("chaos/scripts/memory_leak.sh disable --service inventory"), sh("chaoslab restart inventory")),
        recovered="Resident memory is back to its usual level after the restart.",
        data_loss=VERIFY_NOTE,
        faults=(("inventory", "memory_leak_mb_s", 20),),
    ),
    Incident(
        id="rate-limit-misconfig",
        title="Per-client rate limit set far too low",
        severity="SEV1",
        slos=(AVAILABILITY,),
        what_happens="The gateway's per-client limit is set far too low: good users get 429.",
        alert="RateLimitMisconfig",
        symptoms=(
            "`rate_limited_total` rising for known clients",
            '`job:http_requests_429:ratio_rate1m{job="gateway"}` high',
        ),
        diagnose=(FAULTS, sh("chaoslab query 'topk(5, sum by (client) (rate(rate_limited_total[1m])))'")),
        inject=(sh("chaos/scripts/rate_limit.sh enable 0.2"),),
        remediate=(sh("chaos/scripts/rate_limit.sh disable"),),
        recovered="429s stop; each client is back under the configured limit (RATE_LIMIT_RPS).",
        data_loss=VERIFY_NOTE,
        faults=(("gateway", "rate_limit_rps", 0.2),),
    ),
    Incident(
        id="crashloop",
        title="A service crashes at every start",
        severity="SEV2",
        what_happens=(
            "A bad deploy: notifications exits shortly after every start. Supervision restarts it again "
            "and again; events wait in the outbox. Roll back."
        ),
        alert="Crashloop",
        symptoms=(
            '`changes(process_start_time_seconds{job="notifications"}[5m])` climbing',
            '`up{job="notifications"}` flapping',
        ),
        diagnose=(STATUS, sh("chaoslab logs notifications --lines 20")),
        inject=(sh("chaos/scripts/crash.sh enable --loop --service notifications"),),
        remediate=(sh("chaos/scripts/crash.sh disable --service notifications"),),
        recovered="notifications stays up; the outbox drains.",
        data_loss=VERIFY_NOTE,
        faults=(("notifications", "crashloop", True),),
        recovered_when='max(outbox_oldest_age_seconds{destination="notifications"}) < 5',
    ),
    Incident(
        id="multi-failure",
        title="Redis, Prometheus and payments fail together",
        severity="SEV1",
        slos=(AVAILABILITY,),
        what_happens=(
            "Three things break at once. Recover in order: visibility first (Prometheus), then stability "
            "(Redis, so the chaos store is known), then the broken part (payments)."
        ),
        alert="Watchdog",
        detection="dead-mans-switch",
        symptoms=(
            "`Watchdog` missing from Alertmanager's active alerts: Prometheus is down, so no other alert can "
            "fire; `chaoslab status` shows the rest",
            '`chaos_store_up` = 0 and `up{job="payments"}` = 0 once Prometheus is back, with `MultiFailure` '
            "firing if Redis and payments stay down",
        ),
        diagnose=(STATUS,),
        inject=(sh("chaoslab stop redis"), sh("chaoslab stop prometheus"), sh("chaoslab stop payments")),
        remediate=(sh("chaoslab start prometheus"), sh("chaoslab start redis"), sh("chaoslab start payments")),
        recovered=(
            "Every process is RUNNING and healthy in `chaoslab status`; `Watchdog` is active in Alertmanager "
            "again, `MultiFailure` is silent and `order_success_rate` is above 0.9."
        ),
        data_loss=VERIFY_NOTE,
        recover_gates=("breaker_wait_open_s",),  # orders' breaker on payments
    ),
    Incident(
        id="secret-rotation",
        title="The service credential has leaked",
        severity="SEV2",
        what_happens=(
            "The credential the services show each other (docs/security.md) leaks: a caller that is none of "
            "the stack's programs calls internal endpoints with it, and they accept it. Rotate it: services "
            "re-read the new one at once, callers switch while the old one stays valid for a grace window "
            "(30 s; 10 s in ci), so no order fails; then the old one is refused, and the audit says who used it."
        ),
        alert="SecretRotation",
        symptoms=(
            '`service_auth_requests_total{caller="unknown",credential="current"}` rising on an internal service',
            "`chaoslab secret audit` after the rotation: the callers that still showed the old credential",
        ),
        diagnose=(
            sh("chaoslab query 'sum by (service, caller, credential) (rate(service_auth_requests_total[1m]))'"),
            sh("chaoslab secret audit"),
        ),
        inject=(sh("chaoslab secret leak --for 900"),),
        remediate=(sh("chaoslab secret rotate"),),
        recovered=(
            "`SecretRotation` is silent: the leaked credential is refused "
            '(`credential="expired"` for the unknown caller), and `chaoslab secret rotate` said so.'
        ),
        data_loss=(
            VERIFY_NOTE + " The rotation itself fails no order: `chaoslab secret rotate` fails if any program "
            "of the stack (a known caller in `service_auth_requests_total`) was refused while it ran, and the "
            "client ledger holds no failure the rotation caused."
        ),
        max_5xx_share=0.02,
        recover_gates=("service_token_grace_s",),  # the leaked credential stays valid this long
        # `chaoslab secret rotate` starts a Python process, then polls every replica until
        # it holds the new credential and, after the window, until each refuses the old one.
        recover_extra_s=10,
    ),
    Incident(
        id="migration-failure",
        title="A deploy's migration breaks payments",
        severity="SEV1",
        slos=(AVAILABILITY,),
        page=Page(AVAILABILITY, bad_share=0.5),
        what_happens=(
            "A deploy applies a migration that renames the column payments writes its charges to, then "
            "replaces the payments process. The code running does not know that schema version: payments "
            "refuses to start (`db.schema_refused` in its log, exit status 3) and supervision restarts it in "
            "vain. Orders' breaker opens and orders end payment_failed. Roll the migration back with the "
            "release's own down migration; supervision's next attempt then starts payments (`chaoslab start "
            "payments` starts it if supervision gave up)."
        ),
        alert="PaymentsDown",
        symptoms=(
            '`up{job="payments"}` = 0 while its process keeps being restarted',
            "`db.schema_refused` in `chaoslab logs payments`, naming the version it does not know",
            "`chaoslab db status` shows payments at an unknown version",
        ),
        diagnose=(
            STATUS,
            sh("chaoslab logs payments --lines 5"),
            sh("chaoslab db status --extra chaos/drills/migrations"),
        ),
        inject=(
            sh("chaoslab db migrate payments --extra chaos/drills/migrations"),
            sh("chaoslab kill payments"),
        ),
        remediate=(
            sh("chaoslab db rollback payments --extra chaos/drills/migrations"),
            sh("chaoslab start payments"),
        ),
        # Back to payments' latest own version (tests/unit/test_migrations.py holds it so):
        # nothing to do once the runbook's rollback ran.
        undo=(sh(f"chaoslab db rollback payments --extra chaos/drills/migrations --to {PAYMENTS_LATEST}"),),
        recovered=(
            '`chaoslab db status` shows payments at its latest known version, `up{job="payments"}` is 1 and '
            "orders' breaker closes."
        ),
        data_loss=(
            VERIFY_NOTE + " The rename and its rollback keep every charge: a rename moves no data. A charge "
            "refused while the column was missing ended its order payment_failed, its stock released."
        ),
        # The inject is two commands, the migration among them, before payments is down (at
        # load 30, 20-30 s: detected after 46 s, then over 51 s, in ci); the remediation too,
        # then payments starts again (and checks its schema) before it serves (at load 30,
        # recovered after 94 and 97 s in ci).
        detect_extra_s=45,
        recover_extra_s=30,
        recover_gates=("breaker_wait_open_s",),  # orders' breaker stays open this long
    ),
    Incident(
        id="db-restore",
        title="The database is lost under load",
        severity="SEV1",
        slos=(AVAILABILITY,),
        what_happens=(
            "PostgreSQL's cluster is gone (its disk died) and it cannot start again. Restore the latest base "
            "backup and replay the archived WAL to the latest moment it holds; what the archive had not received "
            "is lost. Count it against what clients were told, and follow each lost order up."
        ),
        alert="DbRestore",
        symptoms=(
            "`db_up` = 0 on every service with a database, and 503 `database_unavailable` answers",
            "`chaoslab status`: postgres in BACKOFF or FATAL; its log says its data directory does not exist",
        ),
        diagnose=(STATUS, sh("chaoslab db backups")),
        inject=(sh("chaoslab db backup"), sh("chaoslab db destroy --yes")),
        remediate=(
            sh("chaoslab db restore --yes"),
            sh("chaoslab db reconcile"),
            sh("chaoslab replay --since '30m ago' --grace 0"),
        ),
        recovered=(
            "`db_up` is 1 everywhere and orders succeed; `chaoslab db reconcile` lists the orders clients were "
            "answered for that the restored database lacks (the RPO), each to follow up."
        ),
        data_loss=(
            "The orders committed after the last archived WAL segment are gone, with their charges and "
            "reservations: `chaoslab db reconcile` (with the client ledger, `--ledger` or CHAOSLAB_LEDGER) lists "
            "them. Everything else must hold: `chaoslab verify` is clean, and the ledger agrees with the database "
            "for every order it did not list."
        ),
        compose=(
            "chaoslab db backup --target compose",
            "docker compose rm -sf postgres && docker volume rm chaoslab_postgres-data",
            "docker compose up -d postgres",
            "chaoslab db restore --yes --target compose",
        ),
        measures_rpo=True,
        detect_extra_s=30,  # the base backup the inject takes first
        recover_extra_s=30,  # the restore: copying the backup, replaying the WAL
        recover_gates=("breaker_wait_open_s",),  # 503s from the database open orders' breakers
        max_5xx_share=1.0,  # every order is answered 503 while the database is gone: that is the incident
    ),
    Incident(
        id="data-loss",
        title="Events vanish in flight",
        severity="SEV2",
        what_happens=(
            "The orders relay marks events delivered that never reached notifications: customers are not "
            "notified and nothing fails. Only a reconciliation sees it: the relay's count of events delivered "
            "runs ahead of what notifications received. Stop the loss, find what vanished, replay it from the "
            "orders, the source of truth, and prove every event arrived once."
        ),
        alert="DataLoss",
        symptoms=(
            '`outbox_delivered_total{destination="notifications"}` rising faster than `inbox_events_total`',
            "orders keep succeeding; `outbox_pending` stays low",
        ),
        diagnose=(FAULTS, sh("chaoslab replay --since '30m ago' --grace 0 --dry-run")),
        inject=(sh("chaoslab chaos set orders outbox_drop 0.8"),),
        remediate=(
            sh("chaoslab chaos clear orders --fault outbox_drop"),
            sh("chaoslab replay --since '30m ago' --grace 0"),
        ),
        recovered="The relay's count and notifications' agree again; `chaoslab replay --dry-run` lists nothing.",
        data_loss=(
            VERIFY_NOTE + " `final_orders_announced` proves each finished order's event is in notifications' "
            "inbox exactly once, the replayed ones included."
        ),
        faults=(("orders", "outbox_drop", 0.8),),
    ),
)

BY_ID = {incident.id: incident for incident in INCIDENTS}
