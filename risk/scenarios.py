"""Deterministic synthetic return scenarios for VaR/ES, for demos, tests and benchmarks.

A one-market, one-sector-factor model with Student-t shocks (fat tails); the same seed gives the
same matrix on every machine (numpy's PCG64). Real deployments load historical returns instead.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def generate_returns(sectors: Sequence[str], n_scenarios: int, seed: int, daily_vol: float = 0.02,
                     dof: float = 4.0) -> np.ndarray:
    """(n_scenarios, len(sectors)) returns; column j belongs to an instrument in sectors[j]."""
    if n_scenarios < 1 or not sectors:
        raise ValueError("need at least one scenario and one instrument")
    rng = np.random.default_rng(seed)
    names = sorted(set(sectors))
    scale = np.sqrt((dof - 2.0) / dof)  # unit-variance t shocks
    market = rng.standard_t(dof, n_scenarios) * scale
    sector_f = rng.standard_t(dof, (n_scenarios, len(names))) * scale
    idio = rng.standard_t(dof, (n_scenarios, len(sectors))) * scale
    col = np.array([names.index(s) for s in sectors])
    # variance shares: market 0.4, sector 0.3, idiosyncratic 0.3
    r = np.sqrt(0.4) * market[:, None] + np.sqrt(0.3) * sector_f[:, col] + np.sqrt(0.3) * idio
    return np.ascontiguousarray(r * daily_vol)


def scenarios_csv(symbols: Sequence[str], returns: np.ndarray) -> str:
    """CSV text of a scenario matrix, one column per symbol, as config.risk_models loads it."""
    lines = [",".join(symbols)]
    lines += [",".join(f"{x:.6f}" for x in row) for row in returns]
    return "\n".join(lines) + "\n"
