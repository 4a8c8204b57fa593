"""RiskEngine: the in-line API over the kernel's buffers.

Each hot call writes nothing but its scalar arguments and calls ONE compiled function through the
compiled overload's entry point, which skips numba's type dispatch (measured ~0.25 us saved per
call). The engine is not thread-safe: the gateway serialises calls (one order path thread or a lock).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from config.risk_models import RiskConfig
from risk import kernel as K
from risk import state
from risk.decision import ACCEPTED, Decision, Outcome
from risk.reasons import BY_ID

NAN = math.nan
_new = tuple.__new__
_REJECT, _WARN = Outcome.REJECT, Outcome.WARN
_CODE_OF = [BY_ID[k].code if k in BY_ID else "" for k in range(max(BY_ID) + 1)]
SCOPES = ("global", "account", "instrument")


class UnknownSlot(LookupError):
    """A lifecycle event for a slot that holds no live order (already done, or never sent)."""


def _entry(disp: Any, args: tuple[Any, ...]) -> Callable[..., Any]:
    """The compiled entry point for args' types, compiling (or loading from cache) on first use."""
    disp(*args)
    sig = tuple(numba.typeof(a) for a in args)
    cres = disp.overloads.get(sig)
    fn = getattr(cres, "entry_point", None)
    return fn if callable(fn) else disp


class RiskEngine:
    def __init__(self, cfg: RiskConfig, n_sessions: int = 16, max_orders: int = 100_000,
                 _buffers: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.cfg = cfg
        self.n_sessions = n_sessions
        self.max_orders = max_orders
        self.limits_version = cfg.limits_version
        self._f, self._ib = _buffers if _buffers is not None else state.build(cfg, n_sessions, max_orders)
        self._acc_idx = {a.name: n for n, a in enumerate(cfg.accounts)}
        self._ins_idx = {x.symbol: n for n, x in enumerate(cfg.instruments)}
        self._sec_idx = {s: n for n, s in enumerate(cfg.sectors)}
        self._bind()

    # ------------------------------------------------------------------ plumbing
    def _bind(self) -> None:
        f, ib = self._f, self._ib
        self._ins = state.fview(f, ib, K.FV_INS)
        self._acc = state.fview(f, ib, K.FV_ACC)
        self._sec = state.fview(f, ib, K.FV_SEC)
        self._accsec = state.fview(f, ib, K.FV_ACCSEC)
        self._legs = state.fview(f, ib, K.FV_LEG)
        self._ord = state.fview(f, ib, K.FV_ORD)
        self._out = state.fview(f, ib, K.FV_OUT)[0]
        self._outmv = memoryview(self._out)
        self._gflags = state.iview(ib, K.IV_GFLAGS)[0]
        self._accf = state.iview(ib, K.IV_ACCF)
        self._insf = state.iview(ib, K.IV_INSF)
        self._n_ins = len(self.cfg.instruments)
        # compile/load and take entry points on scratch copies: warming up must not touch state
        sf, sib = f.copy(), ib.copy()
        self._ep_check = _entry(K.check_new, (sf, sib, 0, 0, 0, 1, 1.0, 1.0, False, False, 0))
        self._ep_replace = _entry(K.check_replace, (sf, sib, 0, 0, 1.0, 1.0, False, 0))
        self._ep_msg = _entry(K.count_message, (sf, sib, 0, 0))
        self._ep_sent = _entry(K.on_sent, (sf, sib, 0, 0, 0, 1, 1.0, 1.0))
        self._ep_slot = _entry(K.slot_transition, (sf, sib, 0, 0, 1.0, 1.0))
        self._ep_posfill = _entry(K.position_fill, (sf, sib, 0, 0, 1.0, 1.0, 1.0, True))
        self._ep_ref = _entry(K.set_reference, (sf, sib, 0, 1.0))

    def _decision(self, r: int) -> Decision:
        # a memoryview and tuple.__new__: numpy scalar reads and NamedTuple.__new__ cost
        # microseconds on the warn/reject path (measured)
        out = self._outmv
        nw = int(out[3])
        warns: tuple[tuple[str, float, float], ...] = ()
        if nw:
            w = out[K.OUT_W0: K.OUT_W0 + 3 * nw].tolist()
            if nw == 1:
                warns = ((_CODE_OF[int(w[0])], w[1], w[2]),)
            else:
                warns = tuple([(_CODE_OF[int(w[j])], w[j + 1], w[j + 2]) for j in range(0, 3 * nw, 3)])
        if r > 0:
            return _new(Decision, (_REJECT, _CODE_OF[r], out[1], out[2], warns))
        return _new(Decision, (_WARN, None, 0.0, 0.0, warns)) if warns else ACCEPTED

    def _leg(self, account_idx: int, instr_idx: int) -> np.ndarray:
        if not (0 <= account_idx < len(self._acc) and 0 <= instr_idx < self._n_ins):
            raise IndexError(f"no leg ({account_idx}, {instr_idx})")
        return self._legs[account_idx * self._n_ins + instr_idx]

    # ------------------------------------------------------------------ names
    def account_index(self, name: str) -> int:
        return self._acc_idx.get(name, -1)

    def instrument_index(self, symbol: str) -> int:
        return self._ins_idx.get(symbol, -1)

    @property
    def account_names(self) -> tuple[str, ...]:
        return tuple(self._acc_idx)

    @property
    def instrument_symbols(self) -> tuple[str, ...]:
        return tuple(self._ins_idx)

    # ------------------------------------------------------------------ checks
    def check_new(self, session_idx: int, account_idx: int, instr_idx: int, side: int, qty: float,
                  price: float | None, is_market: bool, duplicate: bool, now_ns: int) -> Decision:
        """Every rule in one compiled call. Market orders: price is ignored (None/NaN allowed), the
        collar and tick checks are skipped and notional/exposure use the reference price."""
        if price is None:
            price = NAN
        try:
            r = self._ep_check(self._f, self._ib, session_idx, account_idx, instr_idx, side, qty, price,
                               is_market, duplicate, now_ns)
        except (TypeError, ValueError, OverflowError):
            return Decision(Outcome.REJECT, "CHECK_ERROR", NAN, NAN)
        return ACCEPTED if r == 0 else self._decision(r)

    def check_replace(self, slot: int, new_qty: float, new_price: float | None, now_ns: int,
                      session_idx: int, duplicate: bool = False) -> Decision:
        """Judged on the change: the replacement's leaves replace the original's, never both."""
        if new_price is None:
            new_price = NAN
        try:
            r = self._ep_replace(self._f, self._ib, session_idx, slot, new_qty, new_price, duplicate, now_ns)
        except (TypeError, ValueError, OverflowError):
            return Decision(Outcome.REJECT, "CHECK_ERROR", NAN, NAN)
        return ACCEPTED if r == 0 else self._decision(r)

    def count_message(self, session_idx: int, now_ns: int) -> Decision:
        """A non-order message (cancel request, ...) against the session's message throttle.
        check_new / check_replace count their own message; do not count them twice."""
        try:
            r = self._ep_msg(self._f, self._ib, session_idx, now_ns)
        except (TypeError, ValueError, OverflowError):
            return Decision(Outcome.REJECT, "CHECK_ERROR", NAN, NAN)
        return ACCEPTED if r == 0 else self._decision(r)

    # ------------------------------------------------------------------ order lifecycle
    def on_sent(self, account_idx: int, instr_idx: int, side: int, qty: float, price: float | None,
                session_idx: int = 0) -> int:
        """Reserve the worst-case exposure of an accepted order; returns its slot."""
        slot = int(self._ep_sent(self._f, self._ib, session_idx, account_idx, instr_idx, side, qty,
                                 NAN if price is None else price))
        if slot == K.S_INVALID:
            raise ValueError(f"on_sent: invalid order ({account_idx}, {instr_idx}, {side}, {qty})")
        if slot < 0:
            raise RuntimeError(f"on_sent: all {self.max_orders} order slots in use")
        return slot

    def _slot(self, slot: int, kind: int, q: float = 0.0, px: float = 0.0) -> bool:
        r = self._ep_slot(self._f, self._ib, slot, kind, q, NAN if px is None else px)
        if r == K.S_STALE:
            raise UnknownSlot(slot)
        if r == K.S_INVALID:
            raise ValueError(f"slot {slot}: invalid quantity/price ({q}, {px}) or state")
        return r == K.S_DONE

    def on_ack(self, slot: int) -> None:
        if not (0 <= slot < self.max_orders) or self._ord[slot, K.O_STATE] == K.ST_FREE:
            raise UnknownSlot(slot)
        if self._ord[slot, K.O_STATE] == K.ST_PENDING_NEW:
            self._ord[slot, K.O_STATE] = K.ST_LIVE

    def on_fill(self, slot: int, last_qty: float, last_px: float, now_ns: int = 0) -> bool:
        """Position, average cost, cash, realised P&L, last-fill price; releases the filled part
        of the reservation. Returns True when the order is done and the slot freed (forget it).
        now_ns is accepted for the journal's symmetry; P&L is not time-bucketed."""
        return self._slot(slot, 0, last_qty, last_px)

    def on_cancel(self, slot: int) -> bool:
        """Cancel confirmed (also unsolicited): releases the reservation and frees the slot."""
        return self._slot(slot, 1)

    def on_venue_reject(self, slot: int) -> bool:
        return self._slot(slot, 1)

    def on_replace_pending(self, slot: int, new_qty: float, new_price: float | None) -> bool:
        """While a replace is pending, the order may still fill at either size, so the
        reservation is the larger of the old and the new leaves."""
        return self._slot(slot, 2, new_qty, NAN if new_price is None else new_price)

    def on_replaced(self, slot: int, new_qty: float, new_price: float | None) -> bool:
        return self._slot(slot, 3, new_qty, NAN if new_price is None else new_price)

    def on_replace_rejected(self, slot: int) -> bool:
        return self._slot(slot, 4)

    def _position_fill(self, account_idx: int, instr_idx: int, sd: float, qty: float, px: float,
                       set_last: bool) -> None:
        r = self._ep_posfill(self._f, self._ib, account_idx, instr_idx, sd, qty, px, set_last)
        if r != K.S_OK:
            raise ValueError(f"invalid fill ({account_idx}, {instr_idx}, {qty}, {px})")

    @staticmethod
    def _sd(side: int) -> float:
        if side == 1:
            return 1.0
        if side in (2, 5, 6):
            return -1.0
        raise ValueError(f"side {side}")

    def on_external_fill(self, account_idx: int, instr_idx: int, side: int, qty: float, px: float,
                         now_ns: int = 0) -> None:
        """A fill of an order the gateway never saw (drop copy): mirrored into positions."""
        self._position_fill(account_idx, instr_idx, self._sd(side), qty, px, True)

    def on_bust(self, account_idx: int, instr_idx: int, side: int, qty: float, px: float) -> None:
        """Trade cancel (ExecType H): the fill is reversed at its own price, so cash, position and
        daily P&L return exactly; under average cost the realised-P&L split may differ slightly."""
        self._position_fill(account_idx, instr_idx, -self._sd(side), qty, px, False)

    def on_correct(self, account_idx: int, instr_idx: int, side: int, old_qty: float, old_px: float,
                   new_qty: float, new_px: float) -> None:
        """Trade correct (ExecType G): bust the old fill, book the corrected one."""
        sd = self._sd(side)
        if not (new_qty > 0 and math.isfinite(new_qty) and new_px > 0 and math.isfinite(new_px)):
            raise ValueError(f"invalid correction ({new_qty}, {new_px})")
        self._position_fill(account_idx, instr_idx, -sd, old_qty, old_px, False)
        self._position_fill(account_idx, instr_idx, sd, new_qty, new_px, False)

    def load_position(self, account_idx: int, instr_idx: int, qty: float, avg_px: float) -> None:
        """Start-of-day position; daily P&L is measured from avg_px."""
        if K.load_position(self._f, self._ib, account_idx, instr_idx, float(qty), float(avg_px)) != K.S_OK:
            raise ValueError(f"invalid position ({account_idx}, {instr_idx}, {qty}, {avg_px})")

    def restore_order(self, account_idx: int, instr_idx: int, side: int, qty: float, cum_qty: float,
                      price: float | None, session_idx: int, acknowledged: bool, pending_qty: float = 0.0,
                      pending_price: float | None = None) -> int:
        """An order carried into a new trading day: its slot holds exactly the leaves it held before
        (cum_qty already filled, a pending replace's larger size), with no effect on positions."""
        if not (0.0 <= cum_qty < qty):
            raise ValueError(f"restore_order: cum_qty {cum_qty} must be in [0, {qty})")
        slot = self.on_sent(account_idx, instr_idx, side, qty, price, session_idx)
        o = self._ord[slot]
        before = qty
        o[K.O_CUM] = cum_qty
        if pending_qty > 0:
            o[K.O_STATE] = K.ST_PENDING_REPLACE
            o[K.O_PQTY] = pending_qty
            o[K.O_PPX] = NAN if pending_price is None else pending_price
        elif acknowledged:
            o[K.O_STATE] = K.ST_LIVE
        after = max(max(qty, pending_qty) - cum_qty, 0.0) if pending_qty > 0 else qty - cum_qty
        K._reserve(self._f, self._ib, account_idx, instr_idx, float(o[K.O_SIDE]), after - before)
        return slot

    def set_account_money(self, account_idx: int, cash: float, pnl_base: float | None = None) -> None:
        """Cash carried into a new trading day; daily P&L is measured from pnl_base (default: cash)."""
        if not (0 <= account_idx < len(self._acc)) or not math.isfinite(cash):
            raise ValueError(f"invalid cash {cash!r} for account {account_idx}")
        row = self._acc[account_idx]
        row[K.A_CASH] = cash
        row[K.A_PNL_BASE] = cash if pnl_base is None else pnl_base
        row[K.A_REALISED] = 0.0

    def set_last_fill_price(self, instr_idx: int, px: float) -> None:
        """The last trade price carried into a new trading day (the mark until a fill or market data)."""
        if not (0 <= instr_idx < self._n_ins) or not (px > 0 and math.isfinite(px)):
            raise ValueError(f"invalid last price {px!r} for instrument {instr_idx}")
        self._ins[instr_idx, K.I_LAST_FILL] = px
        K.rebuild(self._f, self._ib)

    def last_fill_price(self, instr_idx: int) -> float:
        return float(self._ins[instr_idx, K.I_LAST_FILL])

    def live_reference_price(self, instr_idx: int) -> float:
        return float(self._ins[instr_idx, K.I_REF_LIVE])

    def open_orders(self) -> list[tuple[int, float, float]]:
        """(slot, leaves reserved, cum_qty) of every live slot: what a rollover checks against the ledger."""
        out = []
        for slot in np.flatnonzero(self._ord[:, K.O_STATE] != K.ST_FREE):
            o = self._ord[slot]
            q = max(o[K.O_QTY], o[K.O_PQTY]) if o[K.O_STATE] == K.ST_PENDING_REPLACE else o[K.O_QTY]
            out.append((int(slot), float(max(q - o[K.O_CUM], 0.0)), float(o[K.O_CUM])))
        return out

    def set_reference_price(self, instr_idx: int, px: float) -> None:
        """Live market data; positive and finite or ValueError (a bad tick must not poison marks)."""
        if self._ep_ref(self._f, self._ib, instr_idx, px) != K.S_OK:
            raise ValueError(f"invalid reference price {px!r} for instrument {instr_idx}")

    # ------------------------------------------------------------------ operator switches
    def _flag(self, scope: str, idx: int, col: int, on: bool) -> None:
        if scope == "global":
            self._gflags[col] = int(on)
        elif scope == "account":
            if not 0 <= idx < len(self._accf):
                raise IndexError(f"account {idx}")
            self._accf[idx, col] = int(on)
        elif scope == "instrument":
            if not 0 <= idx < len(self._insf):
                raise IndexError(f"instrument {idx}")
            self._insf[idx, col] = int(on)
        else:
            raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")

    def set_kill(self, scope: str, idx: int, on: bool) -> None:
        self._flag(scope, idx, 0, on)

    def set_reduce_only(self, scope: str, idx: int, on: bool) -> None:
        self._flag(scope, idx, 1, on)

    def kill_state(self, scope: str, idx: int = 0) -> bool:
        return bool(self._gflags[0] if scope == "global" else
                    (self._accf if scope == "account" else self._insf)[idx, 0])

    def reduce_only_state(self, scope: str, idx: int = 0) -> bool:
        return bool(self._gflags[1] if scope == "global" else
                    (self._accf if scope == "account" else self._insf)[idx, 1])

    # ------------------------------------------------------------------ read-outs
    def position(self, account_idx: int, instr_idx: int) -> float:
        return float(self._leg(account_idx, instr_idx)[K.L_POS])

    def avg_cost(self, account_idx: int, instr_idx: int) -> float:
        return float(self._leg(account_idx, instr_idx)[K.L_AVG])

    def open_exposure(self, account_idx: int, instr_idx: int) -> tuple[float, float]:
        leg = self._leg(account_idx, instr_idx)
        return float(leg[K.L_OB]), float(leg[K.L_OS])

    def account_gross(self, account_idx: int) -> float:
        return float(self._acc[account_idx, K.A_GROSS])

    def account_net(self, account_idx: int) -> float:
        row = self._acc[account_idx]
        return float(max(abs(row[K.A_NETBUY]), abs(row[K.A_NETSELL])))

    def sector_exposure(self, account_idx: int, sector: str) -> float:
        return float(self._accsec[account_idx, self._sec_idx[sector]])

    def cash(self, account_idx: int) -> float:
        return float(self._acc[account_idx, K.A_CASH])

    def equity(self, account_idx: int) -> float:
        row = self._acc[account_idx]
        return float(row[K.A_CASH] + row[K.A_MTM])

    def daily_pnl(self, account_idx: int) -> float:
        """Realised plus marked P&L since the start (cash + marked positions - start base)."""
        row = self._acc[account_idx]
        return float(row[K.A_CASH] + row[K.A_MTM] - row[K.A_PNL_BASE])

    def realised_pnl(self, account_idx: int) -> float:
        return float(self._acc[account_idx, K.A_REALISED])

    def reference_price(self, instr_idx: int) -> float:
        """The price the checks use now (live, else last fill, else configured; NaN if none)."""
        return float(self._ins[instr_idx, K.I_MARK])

    def var_es(self, account_idx: int) -> tuple[float, float]:
        """Current historical-simulation VaR and ES of the account book (NaN when VaR is off)."""
        if self._ib[K.H_VAR_ON] == 0:
            return NAN, NAN
        ib = self._ib
        n = int(ib[K.H_NSCEN])
        v, e = K.var_es(self._f, K.fo(ib, K.FV_BOOK) + account_idx * n, K.fo(ib, K.FV_SCEN), 0.0,
                        K.fo(ib, K.FV_HEAP), n, int(ib[K.H_KTAIL]))
        return float(v), float(e)

    def order(self, slot: int) -> dict[str, float] | None:
        o = self._ord[slot]
        if o[K.O_STATE] == K.ST_FREE:
            return None
        names = ("account", "instrument", "side", "qty", "cum_qty", "price", "state", "pending_qty",
                 "pending_price", "session")
        return {n: float(v) for n, v in zip(names, o)}

    def open_order_count(self) -> int:
        return int(self.max_orders - state.iview(self._ib, K.IV_FREE)[0, 0])

    def utilisation(self, account_idx: int) -> dict[str, float]:
        """value / limit for every finite account-level limit (telemetry, status)."""
        row = self._acc[account_idx]
        out: dict[str, float] = {}

        def put(name: str, value: float, limit: float) -> None:
            if math.isfinite(limit) and limit > 0:
                out[name] = float(value / limit)

        put("gross_exposure", self.account_gross(account_idx), row[K.A_GROSS_MAX])
        put("net_exposure", self.account_net(account_idx), row[K.A_NET_MAX])
        eq = self.equity(account_idx)
        lev = self.account_gross(account_idx) / eq if eq > 0 else math.inf
        put("leverage", lev, row[K.A_LEV])
        put("daily_loss", -self.daily_pnl(account_idx), row[K.A_LOSS])
        if self._ib[K.H_VAR_ON]:
            v, e = self.var_es(account_idx)
            put("var", v, row[K.A_VAR])
            put("es", e, row[K.A_ES])
        for name, n in self._sec_idx.items():
            put(f"sector:{name}", self._accsec[account_idx, n], self._sec[n, 0])
        return out

    def warn_fractions(self, account_idx: int) -> dict[str, float]:
        """warn level / limit of each limit `utilisation` reports (inf where the limit has no warn level)."""
        row = self._acc[account_idx]
        out: dict[str, float] = {}

        def put(name: str, limit: float, warn: float) -> None:
            if math.isfinite(limit) and limit > 0:
                out[name] = float(warn / limit) if math.isfinite(warn) else math.inf

        for name, col in (("gross_exposure", K.A_GROSS_MAX), ("net_exposure", K.A_NET_MAX), ("leverage", K.A_LEV),
                          ("daily_loss", K.A_LOSS)):
            put(name, row[col], row[col + 1])
        if self._ib[K.H_VAR_ON]:
            put("var", row[K.A_VAR], row[K.A_VAR + 1])
            put("es", row[K.A_ES], row[K.A_ES + 1])
        for name, n in self._sec_idx.items():
            put(f"sector:{name}", self._sec[n, 0], self._sec[n, 1])
        return out

    # ------------------------------------------------------------------ state management
    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        return self._f.copy(), self._ib.copy()

    def restore(self, snap: tuple[np.ndarray, np.ndarray]) -> None:
        f, ib = snap
        if f.shape != self._f.shape or ib.shape != self._ib.shape:
            raise ValueError("snapshot was taken from an engine of another shape")
        np.copyto(self._f, f)
        np.copyto(self._ib, ib)

    def fresh(self) -> RiskEngine:
        """A new engine on the same configuration: flat book, no orders, empty rate windows, no switches."""
        return RiskEngine(self.cfg, self.n_sessions, self.max_orders)

    def copy(self) -> RiskEngine:
        return RiskEngine(self.cfg, self.n_sessions, self.max_orders, _buffers=self.snapshot())

    def rebuild_aggregates(self) -> None:
        """Recompute every aggregate from positions and open orders (removes float drift)."""
        K.rebuild(self._f, self._ib)

    def with_config(self, new_cfg: RiskConfig) -> RiskEngine:
        """A new engine on new limits/reference data that keeps positions, cash, open orders (same
        slots), rate windows, switches and prices, matched by account and symbol names. Raises
        ValueError if an account or instrument that holds a position or an order is gone."""
        new = RiskEngine(new_cfg, self.n_sessions, self.max_orders)
        self._carry_state_into(new)
        K.rebuild(new._f, new._ib)
        return new

    def _carry_state_into(self, new: RiskEngine) -> None:
        """with_config's work: state matched by account and symbol names, so accounts and instruments can be
        added or reordered; order slots keep their numbers (the gateway's ledger stores them); cash follows the
        running value plus any change of the configured cash (a deposit is not P&L)."""
        old = self
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
            state.ring_fill(state.iview(new._ib, K.IV_RA)[na], state.ring_times(state.iview(old._ib, K.IV_RA)[a]))

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
            state.ring_fill(new_rs[s], state.ring_times(old_rs[s]))

        new._ord[:] = old._ord
        for slot in np.flatnonzero(old._ord[:, K.O_STATE] != K.ST_FREE):
            a, i = int(old._ord[slot, K.O_ACC]), int(old._ord[slot, K.O_INS])
            na, ni = acc_map[a], ins_map[i]
            if na < 0 or ni < 0:
                raise ValueError(f"open order in slot {slot} refers to an account or symbol missing from the new config")
            new._ord[slot, K.O_ACC] = na
            new._ord[slot, K.O_INS] = ni
        state.iview(new._ib, K.IV_FREE)[:] = state.iview(old._ib, K.IV_FREE)
