"""Carry live risk state from one engine into another built on reloaded limits/reference data.

State is matched by account and symbol names, so accounts and instruments can be added or
reordered. Order slots keep their numbers (the gateway's ledger stores them). Cash follows the
running value plus any change of the configured cash (a deposit is not P&L).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from risk import kernel as K
from risk import state

if TYPE_CHECKING:
    from risk.engine import RiskEngine


def _ring_times(ring: np.ndarray) -> np.ndarray:
    cap = ring.shape[0] - 2
    n, head = int(ring[0]), int(ring[1])
    return np.array([ring[2 + (head - n + j) % cap] for j in range(n)], dtype=np.int64)


def _ring_fill(ring: np.ndarray, times: np.ndarray) -> None:
    cap = ring.shape[0] - 2
    times = times[-cap:]
    ring[:] = 0
    ring[2: 2 + len(times)] = times
    ring[0] = len(times)
    ring[1] = len(times) % cap


def carry_over(old: RiskEngine, new: RiskEngine) -> None:
    if (old.n_sessions, old.max_orders) != (new.n_sessions, new.max_orders):
        raise ValueError("sessions and order capacity must not change on reload")
    acc_map = {a: new.account_index(name) for name, a in old._acc_idx.items()}
    ins_map = {i: new.instrument_index(sym) for sym, i in old._ins_idx.items()}
    n_old, n_new = old._n_ins, new._n_ins

    for name, a in old._acc_idx.items():
        for sym, i in old._ins_idx.items():
            leg = old._legs[a * n_old + i]
            if leg[K.L_POS] == 0 and leg[K.L_OB] == 0 and leg[K.L_OS] == 0:
                continue
            na, ni = acc_map[a], ins_map[i]
            if na < 0 or ni < 0:
                raise ValueError(f"{name}/{sym} holds a position or open orders but is missing from the new config")
            new._legs[na * n_new + ni, : K.L_CG] = leg[: K.L_CG]

    old_cash = {a.name: a.cash for a in old.cfg.accounts}
    for a_new_cfg in new.cfg.accounts:
        na = new.account_index(a_new_cfg.name)
        a = old.account_index(a_new_cfg.name)
        if a < 0:
            continue
        deposit = a_new_cfg.cash - old_cash[a_new_cfg.name]
        for col in (K.A_CASH, K.A_PNL_BASE):
            new._acc[na, col] = old._acc[a, col] + deposit
        new._acc[na, K.A_REALISED] = old._acc[a, K.A_REALISED]
        new._accf[na] = old._accf[a]
        _ring_fill(state.iview(new._ib, K.IV_RA)[na], _ring_times(state.iview(old._ib, K.IV_RA)[a]))

    for sym, i in old._ins_idx.items():
        ni = ins_map[i]
        if ni < 0:
            continue
        new._ins[ni, K.I_REF_LIVE] = old._ins[i, K.I_REF_LIVE]
        new._ins[ni, K.I_LAST_FILL] = old._ins[i, K.I_LAST_FILL]
        new._insf[ni, :2] = old._insf[i, :2]  # kill, reduce-only; restricted comes from the new file
    new._gflags[:] = old._gflags

    old_rs, new_rs = state.iview(old._ib, K.IV_RS), state.iview(new._ib, K.IV_RS)
    for s in range(old.n_sessions):
        _ring_fill(new_rs[s], _ring_times(old_rs[s]))

    new._ord[:] = old._ord
    for slot in np.flatnonzero(old._ord[:, K.O_STATE] != K.ST_FREE):
        a, i = int(old._ord[slot, K.O_ACC]), int(old._ord[slot, K.O_INS])
        na, ni = acc_map[a], ins_map[i]
        if na < 0 or ni < 0:
            raise ValueError(f"open order in slot {slot} refers to an account or symbol missing from the new config")
        new._ord[slot, K.O_ACC] = na
        new._ord[slot, K.O_INS] = ni
    state.iview(new._ib, K.IV_FREE)[:] = state.iview(old._ib, K.IV_FREE)
