"""Backtests on stored history: strategies, the runner, metrics and parameter optimisation.

No Qt in this package (enforced by tests/unit/test_core_purity.py)."""
