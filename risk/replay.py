"""Batch replay of recorded order flow through the same rules, for what-if on new limits.

Events are a numpy structured array (EVENT_DTYPE). The replay runs in one compiled loop over an
engine's state, which it mutates: pass ``engine.copy()`` or ``engine.with_config(new_cfg)`` to
leave the live engine alone, or a fresh ``RiskEngine(cfg)`` to start flat.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from risk import kernel as K
from risk.engine import RiskEngine
from risk.reasons import BY_ID

NEW, REPLACE, CANCEL, FILL, PRICE, MSG = K.EV_NEW, K.EV_REPLACE, K.EV_CANCEL, K.EV_FILL, K.EV_PRICE, K.EV_MSG

EVENT_DTYPE = np.dtype([
    ("kind", np.int8),          # NEW, REPLACE, CANCEL, FILL, PRICE, MSG
    ("session", np.int64),
    ("account", np.int64),
    ("instrument", np.int64),
    ("side", np.int64),         # 1 buy, 2/5/6 sell
    ("qty", np.float64),        # order qty (NEW, REPLACE: new total), last qty (FILL)
    ("price", np.float64),      # limit price (NaN: market), fill price, reference price (PRICE)
    ("is_market", np.int8),
    ("duplicate", np.int8),
    ("now_ns", np.int64),
    ("ref", np.int64),          # REPLACE/CANCEL/FILL: index of the NEW event of the order
])
_COLUMNS = ("kind", "session", "account", "instrument", "side", "qty", "price", "is_market", "duplicate",
            "now_ns", "ref")


@dataclass(frozen=True)
class ReplayResult:
    codes: np.ndarray   # per event: 0 accept, -n accept with n warnings, >0 reject reason id
    values: np.ndarray  # measured value of a reject (NaN otherwise)
    limits: np.ndarray  # limit of a reject (NaN otherwise)

    def rejects(self) -> Counter[str]:
        ids, counts = np.unique(self.codes[self.codes > 0], return_counts=True)
        return Counter({BY_ID[int(i)].code: int(c) for i, c in zip(ids, counts)})

    @property
    def accepted(self) -> int:
        return int((self.codes <= 0).sum())


def columns(events: np.ndarray) -> tuple[np.ndarray, ...]:
    """Contiguous per-field arrays (the compiled loop reads columns, not records)."""
    return tuple(np.ascontiguousarray(events[c]) for c in _COLUMNS)


def replay_columns(engine: RiskEngine, cols: tuple[np.ndarray, ...]) -> ReplayResult:
    n = len(cols[0])
    codes = np.zeros(n, np.int64)
    values = np.full(n, np.nan)
    limits = np.full(n, np.nan)
    K.replay(engine._f, engine._ib, *cols, codes, values, limits, np.empty(n, np.int64))
    return ReplayResult(codes, values, limits)


def replay(engine: RiskEngine, events: np.ndarray) -> ReplayResult:
    if events.dtype != EVENT_DTYPE:
        raise TypeError(f"events must have dtype EVENT_DTYPE, not {events.dtype}")
    return replay_columns(engine, columns(events))
