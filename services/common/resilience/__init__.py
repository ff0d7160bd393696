"""Resilience patterns: each module is one pattern, with a docstring that says when it
trips and which metric shows it. `policy.py` stacks them around one downstream in a
fixed order (retry outermost, then replica pick, breaker, bulkhead, timeout);
`backpressure.py` guards a service's own door."""
