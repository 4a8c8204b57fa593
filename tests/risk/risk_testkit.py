"""Builders shared by the risk tests: a small universe whose prices, multipliers and scenario
returns are dyadic rationals, so every product and sum the rules compute is exact in float64 and
the kernel (incremental aggregates) and the reference (recomputed sums) agree bit for bit."""
from __future__ import annotations

from typing import Any

import numpy as np

from config.risk_models import RiskConfig, risk_config_from_data

T0 = 1_700_000_000_000_000_000  # an epoch-nanosecond "now"
MS = 1_000_000

INSTRUMENTS: list[dict[str, Any]] = [
    {"symbol": "AAA", "sector": "S1", "multiplier": 1.0, "tick_size": 0.25, "reference_price": 100.0},
    {"symbol": "BBB", "sector": "S1", "multiplier": 2.0, "tick_size": 0.25, "reference_price": 50.0},
    {"symbol": "CCC", "sector": "S2", "multiplier": 10.0, "tick_size": 0.25, "reference_price": 20.0},
    {"symbol": "DDD", "sector": "S2", "multiplier": 1.0, "tick_size": 0.25, "reference_price": 8.0},
    {"symbol": "NOREF", "sector": "S2", "multiplier": 1.0, "tick_size": 0.25},
]
ACCOUNTS: list[dict[str, Any]] = [
    {"name": "A1", "cash": 1_000_000.0},
    {"name": "A2", "cash": 250_000.0},
    {"name": "A3", "cash": 500_000.0, "allowed_instruments": ["AAA", "BBB"]},
]
AAA, BBB, CCC, DDD, NOREF = range(5)
A1, A2, A3 = range(3)
BUY, SELL = 1, 2


def dyadic_scenarios(n_scen: int, n_ins: int = len(INSTRUMENTS), seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-64, 65, size=(n_scen, n_ins)).astype(np.float64) / 1024.0


def make_cfg(limits: dict[str, Any] | None = None, scenarios: np.ndarray | None = None,
             accounts: list[dict[str, Any]] | None = None) -> RiskConfig:
    return risk_config_from_data(INSTRUMENTS, accounts or ACCOUNTS, limits or {}, scenarios)


def same(d: Any, r: Any) -> bool:
    """Decisions equal, NaN figures included (an invalid NaN input is echoed as the value)."""
    def norm(x: Any) -> Any:
        if isinstance(x, float) and x != x:
            return "nan"
        if isinstance(x, tuple):
            return tuple(norm(y) for y in x)
        return x
    return norm(tuple(d)) == norm(tuple(r))
