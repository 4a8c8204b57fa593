"""How events move the ledger and the risk state: one set of functions for live processing and for replay.

Replaying the event log after a restart calls exactly what the live path called, in the same order, so
positions, open orders and reservations come back as they were before the stop or the crash.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Iterable, Protocol

from gateway.orders.ledger import REJECTED, Ledger, Order, Request
from gateway.orders.trading_day import restore_order

log = logging.getLogger("fixgw.lifecycle")

Event = dict[str, Any]


class RiskHooks(Protocol):
    def replay_sent(self, order: Order) -> int: ...
    def apply(self, order: Order, req: Request, ev: Event) -> None: ...
    def apply_admin(self, ev: Event) -> None: ...
    def restore(self, ev: Event) -> None: ...
    def restore_order(self, order: Order, pending: Request | None) -> int: ...


def apply_execution(ledger: Ledger, req: Request, ev: Event) -> None:
    """Move the ledger by one venue execution report."""
    order = req.order
    exec_type = ev["x"]
    if ev.get("oid"):
        order.order_id = str(ev["oid"])
    exec_id = str(ev["id"])
    if exec_type in ("F", "G", "H"):
        ledger.exec_ids.add(exec_id)
    if exec_type == "F":
        ledger.fills[exec_id] = (float(ev["lq"]), float(ev["lp"]), order.number)
    elif exec_type in ("G", "H"):
        ref = str(ev.get("ref") or "")
        if exec_type == "H":
            ledger.fills.pop(ref, None)
        elif ref in ledger.fills and ev.get("lq") is not None and ev.get("lp") is not None:
            ledger.fills[ref] = (float(ev["lq"]), float(ev["lp"]), order.number)
    if ev.get("cum") is not None:
        order.cum_qty = float(ev["cum"])
    if ev.get("avg") is not None:
        order.avg_px = float(ev["avg"])
    if exec_type == "5" and req.kind == "G":  # replaced: the request becomes the live order
        order.qty = req.qty
        order.price = req.price
        order.cl_ord_id = req.cl_ord_id
        order.venue_cl_ord_id = req.venue_cl_ord_id
    if exec_type in ("4", "5"):
        order.pending = ""
    ledger.set_status(order, str(ev["os"]))  # OrdStatus always states the order's current status


def apply_cancel_reject(ledger: Ledger, req: Request, ev: Event) -> None:
    order = req.order
    if order.pending == req.venue_cl_ord_id:
        order.pending = ""
    status = str(ev.get("os") or "")
    if status:
        ledger.set_status(order, status)


def apply_undelivered(ledger: Ledger, req: Request, ev: Event) -> None:
    order = req.order
    if req.kind == "D":
        ledger.set_status(order, REJECTED)
    elif order.pending == req.venue_cl_ord_id:
        order.pending = ""


def replay_log(events: Iterable[Event], ledger: Ledger, risk: RiskHooks | None) -> int:
    """Rebuild the ledger (and the risk state, when given) from the event log; returns the events applied."""
    n = 0
    for ev in events:
        n += 1
        kind = ev["e"]
        if kind == "N":
            price = math.nan if ev["px"] is None else float(ev["px"])
            order = ledger.add_new(ev["s"], ev["cl"], ev["v"], ev["a"], ev["sym"], ev["side"], ev["t"],
                                   float(ev["qty"]), price, -1, str(ev.get("tif") or ""))
            if risk is not None:
                order.slot = risk.replay_sent(order)
        elif kind in ("G", "F"):
            order = ledger.orders[int(ev["n"])]
            price = math.nan if ev.get("px") is None else float(ev["px"])
            req = ledger.add_request(order, kind, ev["cl"], ev["orig"], ev["v"], float(ev.get("qty") or 0.0), price)
            if risk is not None:
                risk.apply(order, req, ev)
        elif kind in ("X", "Z", "U"):
            req = ledger.by_venue[ev["v"]]
            # Same order as the live path (gateway.orders.router): risk sees an execution before the ledger moves.
            if kind == "X":
                if risk is not None:
                    risk.apply(req.order, req, ev)
                apply_execution(ledger, req, ev)
            else:
                (apply_cancel_reject if kind == "Z" else apply_undelivered)(ledger, req, ev)
                if risk is not None:
                    risk.apply(req.order, req, ev)
        elif kind == "ADM":
            if risk is not None and str(ev.get("action", "")).split(" ")[0] in ("kill", "reduce_only"):
                try:
                    risk.apply_admin(ev)
                except ValueError:
                    log.error("operator switch from the event log no longer applies", extra={"scope": ev.get("scope")})
        elif kind == "DEC":
            # A rejected request still used its ClOrdID: a second use is a duplicate after a restart too.
            ledger.rejected_ids.add((ev["s"], ev["cl"]))
        elif kind == "OPEN":  # carried from the previous trading day
            order, pending = restore_order(ledger, ev)
            if risk is not None:
                order.slot = risk.restore_order(order, pending)
        elif kind == "IDS":
            ledger.prior_ids.update((ev["s"], cl) for cl in ev["ids"])
        elif kind in ("MARK", "POS", "CASH", "SW"):
            if risk is not None:
                risk.restore(ev)
        elif kind == "INIT" and ev.get("n0"):
            ledger.next_number = max(ledger.next_number, int(ev["n0"]))
        if "r" in ev:
            ledger.next_request = max(ledger.next_request, int(ev["r"]))
    return n
