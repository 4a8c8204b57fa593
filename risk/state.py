"""Pack a RiskConfig into the kernel's two flat buffers (float64 and int64).

Limits are folded here once: each account row holds min(global, account) and each instrument row
min(global, instrument), so the kernel applies the tightest scope with one min() per limit.
Warn levels are absolute (limit x warn fraction) and fold the same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from config.risk_models import Limit, RiskConfig
from risk import kernel as K


def _lim(*limits: Limit | None) -> tuple[float, float]:
    vals = [x for x in limits if x is not None]
    if not vals:
        return math.inf, math.inf
    return min(x.limit for x in vals), min(x.warn_level for x in vals)


def _min_qty(*limits: Limit | None) -> float:
    vals = [x.limit for x in limits if x is not None]
    return max(vals) if vals else 0.0


def tail_count(confidence: float, n_scenarios: int) -> int:
    """Number of scenarios in the loss tail: VaR is the k-th largest loss, ES their mean."""
    return max(1, min(n_scenarios, int(round((1.0 - confidence) * n_scenarios))))


@dataclass(frozen=True)
class Dims:
    n_acc: int
    n_ins: int
    n_sec: int
    n_sess: int
    max_orders: int
    n_scen: int
    cap_sess: int
    cap_acc: int


def dims_for(cfg: RiskConfig, n_sessions: int, max_orders: int) -> Dims:
    lim = cfg.limits
    g = lim.global_
    msg_cap = int(g.message_rate_max.limit) if g.message_rate_max else 1
    rates = [int(a.order_rate_max.limit) for a in lim.accounts.values() if a.order_rate_max]
    if g.order_rate_max:
        rates.append(int(g.order_rate_max.limit))
    var_on = _var_on(cfg)
    return Dims(len(cfg.accounts), len(cfg.instruments), len(cfg.sectors), n_sessions, max_orders,
                cfg.scenarios.shape[0] if var_on and cfg.scenarios is not None else 0,
                max(1, msg_cap), max([1] + rates))


def _var_on(cfg: RiskConfig) -> bool:
    lim = cfg.limits
    scopes = [lim.global_, *lim.accounts.values()]
    return cfg.scenarios is not None and any(s.var_max or s.es_max for s in scopes)


def allocate(d: Dims) -> tuple[np.ndarray, np.ndarray]:
    """Lay out the sections and return zeroed buffers with the header filled in."""
    fshapes = [None] * K.N_FV
    fshapes[K.FV_INS] = (d.n_ins, K.NI)
    fshapes[K.FV_ACC] = (d.n_acc, K.NA)
    fshapes[K.FV_SEC] = (d.n_sec, K.NS)
    fshapes[K.FV_ACCSEC] = (d.n_acc, d.n_sec)
    fshapes[K.FV_LEG] = (d.n_acc * d.n_ins, K.NL)
    fshapes[K.FV_ORD] = (d.max_orders, K.NO)
    fshapes[K.FV_MISC] = (1, K.NM)
    fshapes[K.FV_SCEN] = (d.n_ins, d.n_scen)
    fshapes[K.FV_BOOK] = (d.n_acc, d.n_scen)
    fshapes[K.FV_HEAP] = (1, max(1, d.n_scen))
    fshapes[K.FV_OUT] = (1, K.NOUT)
    ishapes = [None] * K.N_IV
    ishapes[K.IV_GFLAGS] = (1, 2)
    ishapes[K.IV_ACCF] = (d.n_acc, 2)
    ishapes[K.IV_INSF] = (d.n_ins, 3)
    ishapes[K.IV_ALLOW] = (d.n_acc, d.n_ins)
    ishapes[K.IV_RS] = (d.n_sess, 2 + d.cap_sess)
    ishapes[K.IV_RA] = (d.n_acc, 2 + d.cap_acc)
    ishapes[K.IV_FREE] = (1, 1 + d.max_orders)
    hdr = np.zeros(K.HDR_LEN, np.int64)
    off = 0
    for k, (r, c) in enumerate(fshapes):
        hdr[K.H_FV + 3 * k: K.H_FV + 3 * k + 3] = (off, r, c)
        off += r * c
    f = np.zeros(off, np.float64)
    off = K.HDR_LEN
    for k, (r, c) in enumerate(ishapes):
        hdr[K.H_IV + 3 * k: K.H_IV + 3 * k + 3] = (off, r, c)
        off += r * c
    ib = np.zeros(off, np.int64)
    ib[: K.HDR_LEN] = hdr
    ib[K.H_NACC], ib[K.H_NINS], ib[K.H_NSEC] = d.n_acc, d.n_ins, d.n_sec
    ib[K.H_NSESS], ib[K.H_MAXORD], ib[K.H_NSCEN] = d.n_sess, d.max_orders, d.n_scen
    return f, ib


def fview(f: np.ndarray, ib: np.ndarray, k: int) -> np.ndarray:
    s, r, c = (int(x) for x in ib[K.H_FV + 3 * k: K.H_FV + 3 * k + 3])
    return f[s:s + r * c].reshape(r, c)


def iview(ib: np.ndarray, k: int) -> np.ndarray:
    s, r, c = (int(x) for x in ib[K.H_IV + 3 * k: K.H_IV + 3 * k + 3])
    return ib[s:s + r * c].reshape(r, c)


def build(cfg: RiskConfig, n_sessions: int, max_orders: int) -> tuple[np.ndarray, np.ndarray]:
    """Fresh buffers for cfg: flat book, no orders, limits and reference data filled in."""
    if n_sessions < 1 or max_orders < 1:
        raise ValueError("n_sessions and max_orders must be positive")
    d = dims_for(cfg, n_sessions, max_orders)
    f, ib = allocate(d)
    lim = cfg.limits
    g = lim.global_
    st = cfg.settings
    sec_idx = {s: n for n, s in enumerate(cfg.sectors)}
    sym_idx = {x.symbol: n for n, x in enumerate(cfg.instruments)}

    ins = fview(f, ib, K.FV_INS)
    for n, x in enumerate(cfg.instruments):
        il = lim.instruments.get(x.symbol)
        row = ins[n]
        row[K.I_MULT] = x.multiplier
        row[K.I_TICK] = x.tick_size
        row[K.I_REF_CFG] = x.reference_price or 0.0
        row[K.I_SECTOR] = sec_idx[x.sector]
        row[K.I_QTY_MIN] = _min_qty(g.qty_min, il and il.qty_min)
        row[K.I_QTY_MAX: K.I_QTY_MAX + 2] = _lim(g.qty_max, il and il.qty_max)
        row[K.I_NOTIONAL: K.I_NOTIONAL + 2] = _lim(g.notional_max, il and il.notional_max)
        row[K.I_COLLAR: K.I_COLLAR + 2] = _lim(g.collar_pct, il and il.collar_pct)
        row[K.I_POS: K.I_POS + 2] = _lim(g.position_max, il and il.position_max)

    acc = fview(f, ib, K.FV_ACC)
    for n, a in enumerate(cfg.accounts):
        al = lim.accounts.get(a.name)
        row = acc[n]
        row[K.A_CASH] = a.cash
        row[K.A_PNL_BASE] = a.cash
        row[K.A_QTY_MIN] = _min_qty(g.qty_min, al and al.qty_min)
        for col, kind in ((K.A_QTY_MAX, "qty_max"), (K.A_NOTIONAL, "notional_max"),
                          (K.A_POS, "position_max"), (K.A_GROSS_MAX, "gross_max"), (K.A_NET_MAX, "net_max"),
                          (K.A_LEV, "leverage_max"), (K.A_LOSS, "daily_loss_max"), (K.A_VAR, "var_max"),
                          (K.A_ES, "es_max"), (K.A_ORATE, "order_rate_max")):
            row[col: col + 2] = _lim(getattr(g, kind), al and getattr(al, kind))

    sec = fview(f, ib, K.FV_SEC)
    for name, n in sec_idx.items():
        sl = lim.sectors.get(name)
        sec[n] = _lim(g.sector_gross_max, sl and sl.gross_max)

    misc = fview(f, ib, K.FV_MISC)[0]
    misc[K.M_MSG_LIM], misc[K.M_MSG_WARN] = _lim(g.message_rate_max)
    misc[K.M_QTY_SANE] = st.max_order_qty
    misc[K.M_PX_SANE] = st.max_price
    ib[K.H_MSG_WIN] = st.message_rate_window_ms * 1_000_000
    ib[K.H_ORD_WIN] = st.order_rate_window_ms * 1_000_000

    if d.n_scen:
        assert cfg.scenarios is not None
        fview(f, ib, K.FV_SCEN)[:] = cfg.scenarios.T  # instrument-major: one contiguous column per order
        ib[K.H_KTAIL] = tail_count(st.var_confidence, d.n_scen)
        ib[K.H_VAR_ON] = 1

    insf = iview(ib, K.IV_INSF)
    for sym in cfg.restricted:
        if sym in sym_idx:
            insf[sym_idx[sym], 2] = 1
    allow = iview(ib, K.IV_ALLOW)
    for n, a in enumerate(cfg.accounts):
        if a.allowed_instruments is None:
            allow[n, :] = 1
        else:
            for sym in a.allowed_instruments:
                allow[n, sym_idx[sym]] = 1
    free = iview(ib, K.IV_FREE)[0]
    free[0] = max_orders
    free[1:] = np.arange(max_orders - 1, -1, -1)  # slot 0 is handed out first
    K.rebuild(f, ib)
    return f, ib


def ring_times(ring: np.ndarray) -> np.ndarray:
    """The timestamps a rate-window ring holds, oldest first."""
    cap = ring.shape[0] - 2
    n, head = int(ring[0]), int(ring[1])
    return np.array([ring[2 + (head - n + j) % cap] for j in range(n)], dtype=np.int64)


def ring_fill(ring: np.ndarray, times: np.ndarray) -> None:
    """Refill a rate-window ring with these timestamps (the newest that fit)."""
    cap = ring.shape[0] - 2
    times = times[-cap:]
    ring[:] = 0
    ring[2: 2 + len(times)] = times
    ring[0] = len(times)
    ring[1] = len(times) % cap
