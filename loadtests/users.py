"""The locust users: shoppers, and duplicate storms against idempotency.

Each user names itself with an `X-Client-ID` of its own (the gateway's per-client rate
limit counts it). Tasks are tagged, so `--tags shop` or `--tags duplicates` runs one kind.
"""

from __future__ import annotations

import random
import uuid

from gevent.pool import Group
from locust import FastHttpUser, between, tag, task

from loadtests import api, checks
from loadtests.api import SETTINGS

ANY_STATUS = frozenset(range(100, 600))


class ChaoslabUser(FastHttpUser):
    """A FastHttpUser with a client id of its own and a bounded wait for every answer."""

    abstract = True
    network_timeout = SETTINGS.request_timeout_s
    connection_timeout = min(10.0, SETTINGS.request_timeout_s)
    role = "user"

    def __init__(self, environment) -> None:
        self.client_id = f"locust-{self.role}-{uuid.uuid4().hex[:12]}"
        self.customer_id = f"c-{self.client_id}"
        # Read by FastHttpUser.__init__: sent with every request of this user.
        self.default_headers = {"X-Client-ID": self.client_id}
        super().__init__(environment)
        # Every answer is judged by loadtests/checks.py, not by its status alone. Left to
        # itself, locust's client raises an exception for each status it deems bad (a 429,
        # a 402) and keeps it on the answer: a reference cycle per answer, which only the
        # garbage collector frees. Under the spike those cycles made a full collection of
        # 80-120 ms every 10 s in the load generator, stalling every request it had in flight.
        self.client.client.valid_response_codes = ANY_STATUS


class Shopper(ChaoslabUser):
    """Browses, places orders with fresh keys, reads them back; now and then sends an
    order again with the same key and checks the first answer comes back, replayed.
    `CHAOSLAB_READ_BACK_RATIO`/`CHAOSLAB_REPLAY_RATIO` set how often each happens."""

    weight = 9
    role = "shopper"
    wait_time = between(SETTINGS.think_min_s, SETTINGS.think_max_s)

    @tag("shop")
    @task(3)
    def browse(self) -> None:
        api.list_orders(self.client, limit=10)

    @tag("shop", "orders")  # `--tags orders`: nothing but orders (bench/overload.py's spike)
    @task(2)
    def order(self) -> None:
        key, body = api.new_key(), api.random_order(self.customer_id)
        placed = api.place_order(self.client, key, body)
        if placed is None:
            return
        if random.random() < SETTINGS.replay_ratio:
            api.place_order(
                self.client, key, body, name="POST /orders [retry same key]", check=checks.replay_of(placed)
            )
        if random.random() < SETTINGS.read_back_ratio:
            order = checks.body_of(placed)
            api.get_order(self.client, order["order_id"], status=order["status"])


class DuplicateStorm(ChaoslabUser):
    """Bursts of `CHAOSLAB_STORM_SIZE` concurrent requests with one key and one body:
    every answer must be the same order (the duplicate-storm incident)."""

    weight = 1
    role = "storm"
    concurrency = SETTINGS.storm_size  # connections, so the burst really is concurrent
    wait_time = between(1.0, 3.0)

    @tag("duplicates")
    @task
    def storm(self) -> None:
        key, body = api.new_key(), api.random_order(self.customer_id)
        same = checks.SameAnswer()
        burst = Group()
        try:
            for _ in range(SETTINGS.storm_size):
                burst.spawn(api.place_order, self.client, key, body, name="POST /orders [storm]", check=same.check)
            burst.join(raise_error=True)
        finally:
            burst.kill(block=False)  # the user is stopping: take its burst with it
