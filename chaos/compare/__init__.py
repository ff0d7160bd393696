"""`chaoslab compare`: the same fault under the same load, once per set of resilience patterns.

- `sets.py`: the pattern sets A to F (each adds patterns to the one before) and custom ones;
- `faults.py`: the faults a comparison can run, and how each is switched on and off;
- `measure.py`: the figures of one set, and which set did worse than the one before;
- `collect.py`: reading them from the client ledger, payments' metrics and the database;
- `run.py`: one fresh stack per set: warm up, fault, recovery, verify, collect;
- `plots.py`, `report.py`: report.json and report.html, one inline SVG plot per measure.

docs/compare.md explains the sets and the measures.
"""
