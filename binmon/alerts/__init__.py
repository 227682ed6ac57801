"""Alert rules and their evaluation: rules as data, a pure engine, persistence and notification sinks.

No Qt in this package (enforced by tests/unit/test_core_purity.py)."""
