"""Fault injection: the catalogue of faults (`catalogue.py`), their home in Redis under
`chaos:<service>:<fault>` with a TTL (`store.py`), a service's cached view of them
(`runtime.py`), their effect on requests (`injection.py`) and `/chaos/config` (`routes.py`)."""
