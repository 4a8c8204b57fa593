"""The bridge between the order path and the pure risk engine: names to indices, events to transitions.

The router calls it under its lock, which is also what makes the (not thread-safe) engine safe to share
with the control plane: admin switches, status and reloads take the same lock.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable

import numpy as np

from config.risk_models import RiskConfig
from config.settings import ControlsSettings
from gateway.events import schema as ev_
from gateway.orders.ledger import Ledger, Order, Request
from gateway.orders.requests import NewOrder, Verdict
from risk.controls import SCOPE_KINDS, Block, Controls, Trip, strictly_reduces
from risk.decision import Decision, Outcome
from risk.engine import RiskEngine, UnknownSlot
from risk.overrides import Override, expired
from risk.overrides import apply as apply_overrides
from risk.reasons import CATALOGUE

log = logging.getLogger("fixgw.risk")

SIDE = {"1": 1, "2": 2, "5": 5}
NO_WARNINGS: tuple[tuple[str, float, float], ...] = ()


def verdict_of(d: Decision) -> Verdict:
    if d.outcome == Outcome.REJECT:
        code = d.code or "CHECK_ERROR"
        try:
            detail = CATALOGUE[code].detail.format(value=d.value, limit=d.limit)
        except (KeyError, ValueError, IndexError):
            detail = ""
        return Verdict(code, detail, d.value, d.limit, d.warnings)
    return Verdict(None, "", math.nan, math.nan, d.warnings) if d.warnings else _ACCEPT


_ACCEPT = Verdict()


def _verdict(b: Block) -> Verdict:
    return Verdict(b.code, b.detail, b.value, b.limit)


class RiskStage:
    def __init__(self, cfg: RiskConfig, sessions: list[str],
                 fills: dict[tuple[int, str], tuple[float, float, int]],
                 max_orders: int = 100_000, clock: Callable[[], int] = time.time_ns,
                 buffers: tuple[Any, ...] | None = None, controls: ControlsSettings | None = None,
                 max_price_age_s: float | None = None) -> None:
        """buffers: the state as a checkpoint saved it, made under this very configuration (snapshot()).
        max_price_age_s: how old a market-data price may be (None: no market-data session)."""
        self.fills = fills  # the ledger's: what a bust or correction undoes
        self.base_cfg = cfg  # the limits without the temporary overrides (risk.overrides)
        saved = buffers[2] if buffers is not None and len(buffers) > 2 else {}
        self.overrides: dict[str, Override] = {o[0]: Override(*o) for o in saved.get("overrides", ())}
        self.engine = RiskEngine(apply_overrides(cfg, list(self.overrides.values())),
                                 n_sessions=max(len(sessions), 1), max_orders=max_orders,
                                 _buffers=buffers[:2] if buffers is not None else None)  # type: ignore[arg-type]
        self.controls = Controls(controls or ControlsSettings(), cfg.locates, max_price_age_s, cfg.kyc)
        self._book: dict[str, list[float | None]] = {}  # the feed's latest bid, ask and last per symbol
        if saved:
            self.controls.load_state(saved)
        self.session_idx = {s: n for n, s in enumerate(sessions)}
        self.clock = clock

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        f, ib = self.engine.snapshot()
        return f, ib, {**self.controls.state(), "overrides": [
            (o.id, o.scope, o.limit, o.value, o.until_ns) for o in self.overrides.values()]}

    # ---------------------------------------------------------------- temporary overrides (risk.overrides)
    def check_override(self, o: Override) -> None:
        """ValueError, and nothing changes, for an override that does not fit the limits in force."""
        apply_overrides(self.base_cfg, [*self.overrides.values(), o])

    def override(self, ev: ev_.Override) -> None:
        """An override set or ended (live and on replay): the engine moves onto the limits with the rest."""
        if ev.action == "set":
            self.overrides[ev.id] = Override(ev.id, ev.scope, ev.limit, ev.value, ev.until)
        elif self.overrides.pop(ev.id, None) is None:
            return
        self.engine = self.engine.with_config(apply_overrides(self.base_cfg, list(self.overrides.values())))

    def expired_overrides(self, now_ns: int) -> list[Override]:
        return expired(list(self.overrides.values()), now_ns)

    @property
    def limits_version(self) -> str:
        return self.engine.limits_version

    # ---------------------------------------------------------------- controls (risk.controls)
    def check_controls(self, o: NewOrder, ledger: Ledger) -> tuple[Verdict | None, list[Order]]:
        """Kill switches by session, trader and strategy, breakers, halts, scoped reduce-only, locates and
        self-match prevention. Returns the verdict (None: go on to the limits) and, for self-match prevention
        that cancels the resting order, the orders to cancel before the new one goes."""
        c = self.controls
        now = self.clock()
        b = c.kyc_block(o.account, now) or c.blocked(o.session, o.account, o.trader, o.strategy, o.symbol) \
            or c.stale(o.symbol, now)
        if b is not None:
            return _verdict(b), []
        scope = c.reduce_only_scope(o.session, o.trader, o.strategy)
        if scope is not None and not self._reduces(o.account, o.symbol, o.side, o.qty):
            return Verdict("REDUCE_ONLY", f"reduce-only on for {scope}: the order does not reduce the position",
                           self._net_position(o.account, o.symbol)), []
        if o.side == "5":
            b = c.locate_missing(o.account, o.symbol, o.qty, ledger.short_used(o.account, o.symbol), o.locate)
            if b is not None:
                return _verdict(b), []
        if o.owner:
            crossed = ledger.crossing(o.owner, o.symbol, o.side, o.price if o.ord_type == "2" else math.nan)
            if crossed:
                names = ", ".join(r.cl_ord_id for r in crossed[:3])
                if c.smp_action(o.account) == "cancel_resting" and not any(r.pending for r in crossed):
                    return None, crossed
                return Verdict("SELF_MATCH", f"would trade against resting {names} of {o.owner}"), []
        return None, []

    def check_amend_controls(self, order: Order, qty: float, price: float, ledger: Ledger) -> Verdict | None:
        """A replace meets the same kill switches, breakers and halts; it may not add to a short sale beyond its
        locate, nor move its price through a resting order of the same owner."""
        c = self.controls
        now = self.clock()
        b = (c.kyc_block(order.account, now)
             or c.blocked(order.session, order.account, order.trader, order.strategy, order.symbol)
             or c.stale(order.symbol, now))
        if b is not None:
            return _verdict(b)
        scope = c.reduce_only_scope(order.session, order.trader, order.strategy)
        if scope is not None and qty > order.qty:
            return Verdict("REDUCE_ONLY", f"reduce-only on for {scope}: a replace may only shrink the order")
        if order.side == "5" and qty > order.qty:
            b = c.locate_missing(order.account, order.symbol, qty - order.qty,
                                 ledger.short_used(order.account, order.symbol), "")
            if b is not None:
                return _verdict(b)
        if order.owner:
            crossed = ledger.crossing(order.owner, order.symbol, order.side,
                                      price if order.ord_type == "2" else math.nan)
            if crossed:
                return Verdict("SELF_MATCH", f"would trade against resting {crossed[0].cl_ord_id} of {order.owner}")
        return None

    def _net_position(self, account: str, symbol: str) -> float:
        e = self.engine
        a, i = e.account_index(account), e.instrument_index(symbol)
        return e.position(a, i) if a >= 0 and i >= 0 else 0.0

    def _reduces(self, account: str, symbol: str, side: str, qty: float) -> bool:
        e = self.engine
        a, i = e.account_index(account), e.instrument_index(symbol)
        if a < 0 or i < 0:
            return False
        ob, os_ = e.open_exposure(a, i)
        return strictly_reduces(side, qty, e.position(a, i), ob, os_)

    def reference(self, symbol: str) -> tuple[float | None, str, float | None] | None:
        """The reference price the checks use for the symbol now, its source ('market', 'last_fill',
        'configured' or 'none') and, for a market price, its age in seconds: each decision records it."""
        e = self.engine
        i = e.instrument_index(symbol)
        if i < 0:
            return None
        px = e.reference_price(i)
        if e.live_reference_price(i) > 0:
            return px, "market", self.controls.price_age_s(symbol, self.clock())
        if math.isnan(px):
            return None, "none", None
        return px, "last_fill" if e.last_fill_price(i) > 0 else "configured", None

    def market_quote(self, symbol: str, bid: float | None, ask: float | None, last: float | None,
                     now_ns: int) -> bool:
        """An update from the market-data feed. The reference is the last trade once the feed has reported one,
        else the mid of bid and ask (the collar then centres on the market, not on a stale trade)."""
        book = self._book.setdefault(symbol, [None, None, None])
        for n, v in enumerate((bid, ask, last)):
            if v is not None:
                book[n] = v
        b, a, t = book
        px = t if t is not None else ((b + a) / 2 if b is not None and a is not None else (b or a))
        return px is not None and self.market_price(symbol, px, now_ns)

    def market_price(self, symbol: str, px: float, now_ns: int) -> bool:
        """A price from the market-data feed: the symbol's reference from now on, and fresh as of now_ns."""
        e = self.engine
        i = e.instrument_index(symbol)
        if i < 0 or not (px > 0) or math.isinf(px):
            return False
        e.set_reference_price(i, px)
        self.controls.priced_at[symbol] = now_ns
        return True

    def breaker(self, ev: ev_.Breaker) -> None:
        """A breaker trip or clear, live and on replay."""
        if ev.action == "trip":
            self.controls.trip(Trip(ev.code, ev.scope, ev.value, ev.limit))
        else:
            self.controls.clear(ev.code, ev.scope)

    def halt(self, ev: ev_.Halt) -> None:
        self.controls.halt(ev.symbol, ev.halted, "venue")

    # ---------------------------------------------------------------- checks
    def check_new(self, o: NewOrder, duplicate: bool) -> Verdict:
        e = self.engine
        d = e.check_new(self.session_idx[o.session], e.account_index(o.account), e.instrument_index(o.symbol),
                        SIDE[o.side], o.qty, o.price, o.ord_type == "1", duplicate, self.clock())
        return verdict_of(d)

    def check_replace(self, order: Order, qty: float, price: float, session: str) -> Verdict:
        if order.slot < 0:
            return Verdict("CHECK_ERROR", "the order holds no risk reservation")
        d = self.engine.check_replace(order.slot, qty, None if order.ord_type == "1" else price, self.clock(),
                                      self.session_idx[session])
        return verdict_of(d)

    def count_message(self, session: str) -> None:
        d = self.engine.count_message(self.session_idx[session], self.clock())
        if d.outcome == Outcome.REJECT:
            log.warning("message throttle exceeded by a cancel; cancels are never blocked",
                        extra={"session": session, "value": d.value, "limit": d.limit})

    # ---------------------------------------------------------------- lifecycle
    def reserve(self, session: str, account: str, symbol: str, side: str, ord_type: str, qty: float,
                price: float) -> int:
        """Reserve an accepted new order's worst case (live and on replay); returns its slot."""
        e = self.engine
        return e.on_sent(e.account_index(account), e.instrument_index(symbol), SIDE[side], qty,
                         None if ord_type == "1" else price, self.session_idx.get(session, 0))

    def apply(self, order: Order, req: Request, ev: ev_.Event) -> None:
        """Move the risk state by one event. A failure here is logged loudly; the event itself is kept."""
        try:
            self._apply(order, req, ev)
        except UnknownSlot:
            log.error("risk event for an order without a live reservation",
                      extra={"order": order.number, "event": ev.kind, "exec_type": getattr(ev, "exec_type", None)})
        except (ValueError, IndexError):
            log.exception("risk state could not apply an event",
                          extra={"order": order.number, "event": ev.kind, "exec_type": getattr(ev, "exec_type", None)})

    def _apply(self, order: Order, req: Request, ev: ev_.Event) -> None:
        e = self.engine
        kind = ev.kind
        slot = order.slot
        if kind == "G":
            if slot >= 0:
                e.on_replace_pending(slot, req.qty, None if order.ord_type == "1" else req.price)
            return
        if kind == "Z":
            if req.kind == "G" and slot >= 0:
                e.on_replace_rejected(slot)
            return
        if kind == "U":
            if slot >= 0:
                if req.kind == "D":
                    e.on_cancel(slot)
                    order.slot = -1
                elif req.kind == "G":
                    e.on_replace_rejected(slot)
            return
        if not isinstance(ev, ev_.Execution):
            return
        x = ev.exec_type
        if x == "F":
            if slot >= 0:
                if e.on_fill(slot, float(ev.last_qty), float(ev.last_px)):  # type: ignore[arg-type]
                    order.slot = -1
            else:  # a fill after the order was done: the position still moves
                self._position(order, ev, "external")
        elif x == "0":
            if slot >= 0:
                e.on_ack(slot)
        elif x in ("4", "C", "3"):  # canceled (asked or not), expired, done for day
            if slot >= 0:
                e.on_cancel(slot)
                order.slot = -1
        elif x == "8":
            if slot >= 0 and req.kind == "D":
                e.on_venue_reject(slot)
                order.slot = -1
        elif x == "5":
            if slot >= 0:
                e.on_replaced(slot, req.qty, None if order.ord_type == "1" else req.price)
        elif x in ("G", "H"):
            self._bust_or_correct(order, ev, x)
            self._reopen(order, ev)
        elif x == "I" and ev.ord_status in ("4", "8", "C") and slot >= 0:  # status: the venue has it done
            e.on_cancel(slot)
            order.slot = -1

    def _bust_or_correct(self, order: Order, ev: ev_.Execution, x: str) -> None:
        # Called before the ledger moves, so the ledger's fills still hold the trade as last booked.
        from_ledger = self.fills.get((order.number, ev.exec_ref_id))
        if from_ledger is None:
            log.error("bust/correction of a fill the gateway does not know", extra={"ref": ev.exec_ref_id})
            return
        old_qty, old_px = from_ledger[0], from_ledger[1]
        e = self.engine
        acc, ins, side = e.account_index(order.account), e.instrument_index(order.symbol), SIDE[order.side]
        if x == "H":
            e.on_bust(acc, ins, side, old_qty, old_px)
        else:
            e.on_correct(acc, ins, side, old_qty, old_px, float(ev.last_qty), float(ev.last_px))  # type: ignore[arg-type]

    def _reopen(self, order: Order, ev: ev_.Execution) -> None:
        """A bust or a correction can give a done order leaves again: reserve them, or its next fills and its
        worst case would go uncounted."""
        cum = ev.cum_qty
        if order.slot >= 0 or cum is None or ev.ord_status not in ("0", "1"):
            return
        leaves = order.qty - float(cum)
        if leaves > 0:
            order.slot = self.reserve(order.session, order.account, order.symbol, order.side, order.ord_type, leaves,
                                      order.price)

    def _position(self, order: Order, ev: ev_.Execution, why: str) -> None:
        e = self.engine
        e.on_external_fill(e.account_index(order.account), e.instrument_index(order.symbol), SIDE[order.side],
                           float(ev.last_qty), float(ev.last_px))  # type: ignore[arg-type]
        log.warning("fill on an order without a live reservation: position updated",
                    extra={"order": order.number, "why": why})

    def mirror(self, account: str, symbol: str, side: str, qty: float, px: float, sign: int) -> bool:
        """A drop-copy fill the gateway never saw moves positions (+1), or its mirror is taken back (-1).
        False, and nothing moves, for an account, instrument or side the configuration does not know."""
        e = self.engine
        a, i = e.account_index(account), e.instrument_index(symbol)
        if a < 0 or i < 0 or side not in SIDE:
            return False
        if sign > 0:
            e.on_external_fill(a, i, SIDE[side], qty, px)
        else:
            e.on_bust(a, i, SIDE[side], qty, px)
        return True

    # ---------------------------------------------------------------- control plane
    def apply_admin(self, ev: ev_.Admin | ev_.Switch) -> None:
        """An operator switch ('kill on', 'reduce_only off', ...) on 'global', 'account:X' or 'instrument:Y'.

        Also 'session:S', 'trader:T', 'strategy:X' (risk.controls), and 'halt on|off' on 'instrument:Y'.
        Raises ValueError for an unknown switch, scope or name; live and replayed switches share this code.
        """
        switch, _, state = ev.action.partition(" ")
        if switch not in ("kill", "reduce_only", "halt") or state not in ("on", "off"):
            raise ValueError(f"unknown operator action {ev.action!r}")
        scope, _, name = ev.scope.partition(":")
        e = self.engine
        if switch == "halt":
            if scope != "instrument" or e.instrument_index(name) < 0:
                raise ValueError(f"a halt names a known instrument:SYMBOL, not {ev.scope!r}")
            who = getattr(ev, "who", "")  # a carried Switch names nobody
            self.controls.halt(name, state == "on", f"operator {who}" if who else "operator")
            return
        if scope in SCOPE_KINDS:
            if not name:
                raise ValueError(f"scope {ev.scope!r} names nobody")
            if scope == "session" and name not in self.session_idx:
                raise ValueError(f"unknown session {name!r}: one of {', '.join(sorted(self.session_idx))}")
            self.controls.switch(switch, ev.scope, state == "on")
            return
        if scope == "global":
            idx = 0
        elif scope == "account":
            idx = e.account_index(name)
        elif scope == "instrument":
            idx = e.instrument_index(name)
        else:
            raise ValueError("scope must be global, account:NAME, instrument:SYMBOL, session:KEY, trader:NAME or "
                             f"strategy:NAME, not {ev.scope!r}")
        if idx < 0:
            raise ValueError(f"unknown {scope} {name!r}")
        (e.set_kill if switch == "kill" else e.set_reduce_only)(scope, idx, state == "on")

    # ---------------------------------------------------------------- trading days
    def new_day(self) -> None:
        """A fresh engine for the next trading day; the carried events then restore what carries over."""
        old_engine, old_controls = self.engine, self.controls
        self.engine = old_engine.fresh()
        self.controls = Controls(old_controls.settings, self.engine.cfg.locates,
                                 None if old_controls.max_price_age_ns is None else old_controls.max_price_age_ns / 1e9,
                                 self.engine.cfg.kyc)
        for sym, at in old_controls.priced_at.items():  # the feed's prices go on: they are no older for a new day
            i = old_engine.instrument_index(sym)
            self.market_price(sym, old_engine.live_reference_price(i), at)

    def carry(self, kill: bool, reduce_only: bool) -> list[ev_.Event]:
        """Marks, positions, cash (daily P&L restarts from the equity now) and switches as carried events."""
        e = self.engine
        out: list[ev_.Event] = []
        for i, sym in enumerate(e.instrument_symbols):
            px = e.last_fill_price(i)
            if px > 0:
                out.append(ev_.Mark(symbol=sym, px=px))
        for a, acc in enumerate(e.account_names):
            for i, sym in enumerate(e.instrument_symbols):
                qty = e.position(a, i)
                if qty != 0:
                    out.append(ev_.Position(account=acc, symbol=sym, qty=qty, avg=e.avg_cost(a, i)))
        for a, acc in enumerate(e.account_names):
            out.append(ev_.Cash(account=acc, cash=e.cash(a), base=e.equity(a)))
        for switch, wanted in (("kill", kill), ("reduce_only", reduce_only)):
            if not wanted:
                continue
            state = e.kill_state if switch == "kill" else e.reduce_only_state
            if state("global"):
                out.append(ev_.Switch(action=f"{switch} on", scope="global"))
            for scope, names in (("account", e.account_names), ("instrument", e.instrument_symbols)):
                for n, name in enumerate(names):
                    if state(scope, n):
                        out.append(ev_.Switch(action=f"{switch} on", scope=f"{scope}:{name}"))
            for scope in sorted(self.controls.kills if switch == "kill" else self.controls.reduce_only):
                out.append(ev_.Switch(action=f"{switch} on", scope=scope))
        # Breakers stay tripped until cleared, and a halt until lifted: a new day changes neither.
        c = self.controls
        for sym in sorted(c.venue_halts):
            out.append(ev_.Halt(symbol=sym, halted=True, text="carried from the previous trading day"))
        for sym in sorted(c.operator_halts):
            out.append(ev_.Switch(action="halt on", scope=f"instrument:{sym}"))
        for t in c.tripped.values():
            out.append(ev_.Breaker(action="trip", code=t.code, scope=t.scope, value=t.value, limit=t.limit,
                                   who="gateway", why="carried from the previous trading day"))
        for o in self.overrides.values():  # an override ends at its own time, not at the day's
            out.append(ev_.Override(action="set", id=o.id, scope=o.scope, limit=o.limit, value=o.value,
                                    until=o.until_ns, why="carried from the previous trading day"))
        return out

    def restore(self, ev: ev_.Mark | ev_.Position | ev_.Cash | ev_.Switch) -> None:
        """One carried MARK, POS, CASH or SW event; a name the configuration no longer has is logged, not fatal."""
        e = self.engine
        try:
            if isinstance(ev, ev_.Mark):
                e.set_last_fill_price(self._index(e.instrument_index, ev.symbol), ev.px)
            elif isinstance(ev, ev_.Position):
                e.load_position(self._index(e.account_index, ev.account), self._index(e.instrument_index, ev.symbol),
                                ev.qty, ev.avg)
            elif isinstance(ev, ev_.Cash):
                e.set_account_money(self._index(e.account_index, ev.account), ev.cash, ev.base)
            elif isinstance(ev, ev_.Switch):
                self.apply_admin(ev)
        except (ValueError, IndexError) as exc:
            log.error("carried state does not apply to this configuration", extra={"event": ev.kind, "error": str(exc)})

    @staticmethod
    def _index(lookup: Callable[[str], int], name: str) -> int:
        n = lookup(name)
        if n < 0:
            raise ValueError(f"unknown name {name!r}")
        return n

    def restore_order(self, order: Order, pending: Request | None) -> int:
        e = self.engine
        try:
            pend_qty = pending.qty if pending is not None and pending.kind == "G" else 0.0
            pend_px = pending.price if pending is not None and pending.kind == "G" else None
            return e.restore_order(self._index(e.account_index, order.account),
                                   self._index(e.instrument_index, order.symbol), SIDE[order.side], order.qty,
                                   order.cum_qty, None if order.ord_type == "1" else order.price,
                                   self.session_idx.get(order.session, 0), order.status != "A", pend_qty,
                                   None if order.ord_type == "1" else pend_px)
        except (ValueError, IndexError, RuntimeError, KeyError) as exc:
            log.error("carried order holds no reservation", extra={"order": order.number, "error": str(exc)})
            return -1

    def swap_config(self, new_cfg: RiskConfig) -> str:
        """New limits and reference data, positions and open orders kept; raises ValueError and keeps the old."""
        self.engine = self.engine.with_config(apply_overrides(new_cfg, list(self.overrides.values())))
        self.base_cfg = new_cfg
        self.controls.locates = dict(new_cfg.locates)
        self.controls.kyc = dict(new_cfg.kyc)
        return self.engine.limits_version
