"""How events move the ledger and the risk state: one set of functions for live processing and for replay.

Replaying the event log after a restart calls exactly what the live path called, in the same order, so
positions, open orders and reservations come back as they were before the stop or the crash.
"""

from __future__ import annotations

import logging
import math
from typing import Iterable, Protocol

from gateway.events.schema import (Admin, AnyEvent, CancelRejected, CarriedOrder, Cash, DayStart, Event, Execution,
                                   Mark, NewOrder, Position, Rejected, Switch, Undelivered, UsedIds, AmendRequest)
from gateway.orders.ledger import REJECTED, Ledger, Order, Request
from gateway.orders.trading_day import restore_order

log = logging.getLogger("fixgw.lifecycle")


class RiskHooks(Protocol):
    def replay_sent(self, order: Order) -> int: ...
    def apply(self, order: Order, req: Request, ev: Event) -> None: ...
    def apply_admin(self, ev: Admin) -> None: ...
    def restore(self, ev: Event) -> None: ...
    def restore_order(self, order: Order, pending: Request | None) -> int: ...


def apply_execution(ledger: Ledger, req: Request, ev: Execution) -> None:
    """Move the ledger by one venue execution report."""
    order = req.order
    exec_type = ev.exec_type
    if ev.order_id:
        order.order_id = ev.order_id
    exec_id = ev.exec_id
    if ev.is_fill:
        ledger.exec_ids.add(exec_id)
    if exec_type == "F":
        ledger.fills[exec_id] = (float(ev.last_qty), float(ev.last_px), order.number)  # type: ignore[arg-type]
    elif exec_type in ("G", "H"):
        ref = ev.exec_ref_id
        if exec_type == "H":
            ledger.fills.pop(ref, None)
        elif ref in ledger.fills and ev.last_qty is not None and ev.last_px is not None:
            ledger.fills[ref] = (ev.last_qty, ev.last_px, order.number)
    if ev.cum_qty is not None:
        order.cum_qty = ev.cum_qty
    if ev.avg_px is not None:
        order.avg_px = ev.avg_px
    if exec_type == "5" and req.kind == "G":  # replaced: the request becomes the live order
        order.qty = req.qty
        order.price = req.price
        order.cl_ord_id = req.cl_ord_id
        order.venue_cl_ord_id = req.venue_cl_ord_id
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
            price = math.nan if ev.px is None else ev.px
            order = ledger.add_new(ev.session, ev.cl_ord_id, ev.venue_cl_ord_id, ev.account, ev.symbol, ev.side,
                                   ev.ord_type, ev.qty, price, -1, ev.tif)
            if risk is not None:
                order.slot = risk.replay_sent(order)
        elif isinstance(ev, AmendRequest):
            order = ledger.orders[ev.number]
            price = math.nan if ev.px is None else ev.px
            req = ledger.add_request(order, ev.kind, ev.cl_ord_id, ev.orig_cl_ord_id, ev.venue_cl_ord_id,
                                     ev.qty or 0.0, price)
            if risk is not None:
                risk.apply(order, req, ev)
        elif isinstance(ev, Execution):
            req = ledger.by_venue[ev.venue_cl_ord_id]
            # Same order as the live path (gateway.orders.router): risk sees an execution before the ledger moves.
            if risk is not None:
                risk.apply(req.order, req, ev)
            apply_execution(ledger, req, ev)
        elif isinstance(ev, (CancelRejected, Undelivered)):
            req = ledger.by_venue[ev.venue_cl_ord_id]
            (apply_cancel_reject if isinstance(ev, CancelRejected) else apply_undelivered)(ledger, req, ev)  # type: ignore[operator]
            if risk is not None:
                risk.apply(req.order, req, ev)
        elif isinstance(ev, Admin):
            if risk is not None and ev.action.split(" ")[0] in ("kill", "reduce_only"):
                try:
                    risk.apply_admin(ev)
                except ValueError:
                    log.error("operator switch from the event log no longer applies", extra={"scope": ev.scope})
        elif isinstance(ev, Rejected):
            # A rejected request still used its ClOrdID: a second use is a duplicate after a restart too.
            ledger.rejected_ids.add((ev.session, ev.cl_ord_id))
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
        request = getattr(ev, "request", None)
        if request:
            ledger.next_request = max(ledger.next_request, request)
    return n
