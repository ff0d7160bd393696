"""The training console: a web page that shows the stack live and drives it.

`chaoslab console` serves it (and `chaoslab up` starts it with the stack): the
topology with each box's health and each edge's breaker, the faults with their TTL,
the order success rate, p99 and outbox backlog, Alertmanager's alerts, and a drill
launcher. Services never import this package.
"""

DEFAULT_PORT = 8090
