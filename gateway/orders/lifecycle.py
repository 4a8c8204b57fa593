"""How events move the ledger and the risk state: one set of transitions for live handling and for replay.

The router builds each event, logs it and applies it with these functions; replaying the event log after a
restart (replay_log) applies the same events with the same functions, so positions, open orders and
reservations come back exactly as they were before the stop or the crash.
"""

from __future__ import annotations

import logging
import math
from typing import Iterable, Protocol

from gateway.events.schema import (Admin, AnyEvent, Breaker, CancelRejected, CarriedOrder, Cash, DayStart, Event,
                                   Execution, Halt, Mark, NewOrder, Override, Position, Rejected, Switch, Undelivered,
                                   UsedIds, AmendRequest)
from gateway.orders.ledger import REJECTED, Ledger, Order, Request
from gateway.orders.trading_day import restore_order

log = logging.getLogger("fixgw.lifecycle")


class RiskHooks(Protocol):
    def reserve(self, session: str, account: str, symbol: str, side: str, ord_type: str, qty: float,
                price: float) -> int: ...
    def apply(self, order: Order, req: Request, ev: Event) -> None: ...
    def apply_admin(self, ev: Admin) -> None: ...
    def restore(self, ev: Event) -> None: ...
    def restore_order(self, order: Order, pending: Request | None) -> int: ...
    def breaker(self, ev: Breaker) -> None: ...
    def halt(self, ev: Halt) -> None: ...
    def override(self, ev: Override) -> None: ...


def apply_new(ledger: Ledger, risk: RiskHooks | None, ev: NewOrder) -> Order:
    """A new order accepted and sent: its worst case reserved, then into the ledger (a reservation that fails
    leaves the ledger as it was)."""
    price = math.nan if ev.px is None else ev.px
    slot = (risk.reserve(ev.session, ev.account, ev.symbol, ev.side, ev.ord_type, ev.qty, price)
            if risk is not None else -1)
    return ledger.add_new(ev.session, ev.cl_ord_id, ev.venue_cl_ord_id, ev.account, ev.symbol, ev.side,
                          ev.ord_type, ev.qty, price, slot, ev.tif, ev.trader, ev.strategy, ev.owner)


def apply_amend(ledger: Ledger, risk: RiskHooks | None, ev: AmendRequest) -> Request:
    """A replace or cancel accepted and sent (the client's, or the gateway's own cancel)."""
    order = ledger.orders[ev.number]
    price = math.nan if ev.px is None else ev.px
    req = ledger.add_request(order, ev.kind, ev.cl_ord_id, ev.orig_cl_ord_id, ev.venue_cl_ord_id, ev.qty or 0.0,
                             price)
    if risk is not None:
        risk.apply(order, req, ev)
    return req


def apply_report(ledger: Ledger, risk: RiskHooks | None, req: Request,
                 ev: Execution | CancelRejected | Undelivered) -> None:
    """The venue's answer to a request: an execution report, a cancel reject, or that it never took effect."""
    if isinstance(ev, Execution):
        if risk is not None:  # risk sees an execution before the ledger moves: a bust needs the fill it undoes
            risk.apply(req.order, req, ev)
        apply_execution(ledger, req, ev)
        return
    if isinstance(ev, CancelRejected):
        apply_cancel_reject(ledger, req, ev)
    else:
        apply_undelivered(ledger, req, ev)
    if risk is not None:
        risk.apply(req.order, req, ev)


def apply_rejected(ledger: Ledger, ev: Rejected) -> None:
    """A rejected request still used its ClOrdID: a second use is a duplicate, after a restart too."""
    ledger.rejected_ids.add((ev.session, ev.cl_ord_id))


def apply_execution(ledger: Ledger, req: Request, ev: Execution) -> None:
    """Move the ledger by one venue execution report."""
    order = req.order
    exec_type = ev.exec_type
    if ev.order_id:
        order.order_id = ev.order_id
    exec_id = ev.exec_id
    if ev.is_fill:
        ledger.exec_ids.add((order.number, exec_id))
    short = order.side == "5"
    if exec_type == "F":
        qty, px = float(ev.last_qty), float(ev.last_px)  # type: ignore[arg-type]
        ledger.fills[(order.number, exec_id)] = (qty, px, order.number)
        if short:
            ledger.short_filled_by(order, qty)
    elif exec_type in ("G", "H"):
        ref = (order.number, ev.exec_ref_id)
        old = ledger.fills.get(ref)
        if exec_type == "H":
            ledger.fills.pop(ref, None)
            if short and old is not None:
                ledger.short_filled_by(order, -old[0])
        elif old is not None and ev.last_qty is not None and ev.last_px is not None:
            ledger.fills[ref] = (ev.last_qty, ev.last_px, order.number)
            if short:
                ledger.short_filled_by(order, ev.last_qty - old[0])
    if ev.cum_qty is not None:
        order.cum_qty = ev.cum_qty
    if ev.avg_px is not None:
        order.avg_px = ev.avg_px
    if exec_type == "5" and req.kind == "G":  # replaced: the request becomes the live order
        order.qty = req.qty
        order.price = req.price
        order.cl_ord_id = req.cl_ord_id
        order.venue_cl_ord_id = req.venue_cl_ord_id
        if order.owner:
            ledger.repriced(order)
    if exec_type in ("4", "5"):
        order.pending = ""
    ledger.set_status(order, ev.ord_status)  # OrdStatus always states the order's current status


def apply_cancel_reject(ledger: Ledger, req: Request, ev: CancelRejected) -> None:
    order = req.order
    if order.pending == req.venue_cl_ord_id:
        order.pending = ""
    if ev.ord_status:
        ledger.set_status(order, ev.ord_status)


def apply_undelivered(ledger: Ledger, req: Request, ev: Undelivered) -> None:
    order = req.order
    if req.kind == "D":
        ledger.set_status(order, REJECTED)
    elif order.pending == req.venue_cl_ord_id:
        order.pending = ""


def replay_log(events: Iterable[AnyEvent], ledger: Ledger, risk: RiskHooks | None) -> int:
    """Rebuild the ledger (and the risk state, when given) from the event log; returns the events applied."""
    n = 0
    for ev in events:
        n += 1
        if isinstance(ev, NewOrder):
            apply_new(ledger, risk, ev)
        elif isinstance(ev, AmendRequest):
            apply_amend(ledger, risk, ev)
        elif isinstance(ev, (Execution, CancelRejected, Undelivered)):
            apply_report(ledger, risk, ledger.by_venue[ev.venue_cl_ord_id], ev)
        elif isinstance(ev, Admin):
            if risk is not None and ev.action.split(" ")[0] in ("kill", "reduce_only", "halt"):
                try:
                    risk.apply_admin(ev)
                except ValueError:
                    log.error("operator switch from the event log no longer applies", extra={"scope": ev.scope})
        elif isinstance(ev, Rejected):
            apply_rejected(ledger, ev)
        elif isinstance(ev, CarriedOrder):  # carried from the previous trading day
            order, pending = restore_order(ledger, ev)
            if risk is not None:
                order.slot = risk.restore_order(order, pending)
        elif isinstance(ev, UsedIds):
            ledger.prior_ids.update((ev.session, cl) for cl in ev.ids)
        elif isinstance(ev, DayStart):
            if ev.next_number:
                ledger.next_number = max(ledger.next_number, ev.next_number)
        elif isinstance(ev, (Mark, Position, Cash, Switch)):  # carried risk state
            if risk is not None:
                risk.restore(ev)
        elif isinstance(ev, Breaker):
            if risk is not None:
                risk.breaker(ev)
        elif isinstance(ev, Halt):
            if risk is not None:
                risk.halt(ev)
        elif isinstance(ev, Override):
            if risk is not None:
                try:
                    risk.override(ev)
                except ValueError as e:
                    log.error("limit override from the event log no longer applies", extra={"id": ev.id,
                                                                                           "error": str(e)})
        request = getattr(ev, "request", None)
        if request:
            ledger.next_request = max(ledger.next_request, request)
    return n
