"""The order path: client requests in, decisions, venue requests out, venue reports routed back.

Everything here runs on QuickFIX's socket threads: a client's message is decided and forwarded on the acceptor's
thread, the venue's reports are routed on the initiator's. One lock guards the ledger and the risk state; it is
never held while calling QuickFIX (sends take the session's own mutex, and QuickFIX calls back into toApp under
that mutex, so holding ours across a send could deadlock against the other thread).
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import quickfix as fix

from config.settings import GatewayConfig
from gateway import fixmsg as fm
from gateway import rejects
from gateway.eventlog import EventLog
from gateway.ledger import (CANCELED, DONE_STATUSES, FILLED, NEW, PARTIALLY_FILLED, PENDING_NEW, REJECTED,
                            REPLACED, Ledger, Order, Request)

log = logging.getLogger("fixgw.router")

SIDES = frozenset({"1", "2", "5"})  # buy, sell, sell short
ORD_TYPES = frozenset({"1", "2"})  # market, limit


@dataclass(slots=True)
class Verdict:
    """What the risk stage said about a request: a reject code (None: accept) and its figures."""

    code: str | None = None
    detail: str = ""
    value: float = math.nan
    limit: float = math.nan
    warnings: tuple[str, ...] = ()


ACCEPT = Verdict()


class RiskStage(Protocol):
    """What the router needs from risk: a decision per request and the lifecycle events that move state."""

    def check_new(self, order_fields: "NewOrder", session: str, duplicate: bool) -> Verdict: ...
    def check_replace(self, order: Order, qty: float, price: float, session: str) -> Verdict: ...
    def on_sent(self, order_fields: "NewOrder") -> int: ...
    def on_event(self, order: Order, event: dict[str, object]) -> None: ...


@dataclass(slots=True)
class NewOrder:
    session: str
    cl_ord_id: str
    account: str
    symbol: str
    side: str
    ord_type: str
    qty: float
    price: float


class Router:
    def __init__(self, cfg: GatewayConfig, events: EventLog, ledger: Ledger | None = None,
                 risk: RiskStage | None = None, id_prefix: str = "G") -> None:
        self.cfg = cfg
        self.events = events
        self.ledger = ledger or Ledger()
        self.risk = risk
        self.lock = threading.Lock()
        self.id_prefix = id_prefix
        self.clients: dict[str, fix.SessionID] = {}
        self.accounts: dict[str, frozenset[str]] = {}
        for c in cfg.acceptor.clients:
            key = session_key(c.target_comp_id, c.sender_comp_id)
            self.accounts[key] = frozenset(c.accounts)
        self.logged_on: set[str] = set()
        self.venue: fix.SessionID | None = None
        self.venue_up = False
        self.stopping = False
        self.unroutable = 0
        # Venue ClOrdIDs of requests QuickFIX refused to (re)send; drained by housekeeping, not under a session mutex.
        self.undelivered: collections.deque[str] = collections.deque()
        self.listeners: list[Callable[[str, dict[str, object]], None]] = []

    # ---------------------------------------------------------------- sessions
    def client_logon(self, sid: fix.SessionID) -> None:
        key = sid_key(sid)
        self.clients[key] = copy_sid(sid)
        self.logged_on.add(key)
        log.info("client session logged on", extra={"session": key})

    def client_logout(self, sid: fix.SessionID) -> None:
        key = sid_key(sid)
        self.logged_on.discard(key)
        log.info("client session logged out", extra={"session": key})

    def venue_logon(self, sid: fix.SessionID) -> None:
        self.venue = copy_sid(sid)
        self.venue_up = True
        log.info("venue session logged on", extra={"session": sid_key(sid)})

    def venue_logout(self, sid: fix.SessionID) -> None:
        was_up, self.venue_up = self.venue_up, False
        if self.stopping or not was_up:
            log.info("venue session logged out", extra={"session": sid_key(sid)})
            return
        log.warning("venue session down: new orders are rejected with VENUE_DOWN", extra={"session": sid_key(sid)})

    # ---------------------------------------------------------------- client side
    def from_client(self, msg: fix.Message, sid: fix.SessionID) -> None:
        msg_type = msg.getHeader().getField(fm.MSG_TYPE)
        if msg_type == "D":
            self._new_order(msg, sid_key(sid))
        elif msg_type == "G":
            self._replace(msg, sid_key(sid))
        elif msg_type == "F":
            self._cancel(msg, sid_key(sid))
        else:
            # QuickFIX answers this with BusinessMessageReject(380=3) and keeps the session up.
            raise fix.UnsupportedMessageType()

    def _new_order(self, msg: fix.Message, skey: str) -> None:
        o = NewOrder(skey, msg.getField(fm.CL_ORD_ID), fm.get(msg, fm.ACCOUNT), msg.getField(fm.SYMBOL),
                     msg.getField(fm.SIDE), msg.getField(fm.ORD_TYPE), fm.get_float(msg, fm.ORDER_QTY),
                     fm.get_float(msg, fm.PRICE))
        with self.lock:
            duplicate = self.ledger.is_duplicate(skey, o.cl_ord_id)
            verdict = self._gate_new(o, duplicate)
            if verdict.code is None and self.risk is not None:
                try:
                    verdict = self.risk.check_new(o, skey, duplicate)
                except Exception:
                    log.exception("risk check failed: order rejected (fail closed)")
                    verdict = Verdict("CHECK_ERROR", "the risk check could not be evaluated")
            elif verdict.code is None and duplicate:
                verdict = Verdict("DUPLICATE_CLORDID", f"ClOrdID {o.cl_ord_id} already used in this session")
            self._record_decision("D", o, verdict)
            if verdict.code is not None:
                reject = fm.order_reject(o.cl_ord_id, o.account, o.symbol, o.side, o.qty,
                                         rejects.ord_rej_reason(verdict.code),
                                         rejects.text(verdict.code, verdict.detail, verdict.value, verdict.limit))
                order = None
            else:
                slot = self.risk.on_sent(o) if self.risk is not None else -1
                venue_cl = self._next_venue_id()
                order = self.ledger.add_new(skey, o.cl_ord_id, venue_cl, o.account, o.symbol, o.side, o.ord_type,
                                            o.qty, o.price, slot)
                self.events.append({"e": "N", "r": self._r, "s": skey, "cl": o.cl_ord_id, "v": venue_cl, "a": o.account,
                                    "sym": o.symbol, "side": o.side, "t": o.ord_type, "qty": o.qty,
                                    "px": None if math.isnan(o.price) else o.price, "slot": slot,
                                    "ts": time.time_ns()})
        if order is None:
            self._send_client(reject, skey)
            return
        out = fm.copy_for_forwarding(msg)
        out.setField(fm.CL_ORD_ID, order.venue_cl_ord_id)
        if not self._send_venue(out):
            self.undelivered.append(order.venue_cl_ord_id)

    def _gate_new(self, o: NewOrder, duplicate: bool) -> Verdict:
        """Checks the gateway itself owns; everything about limits is the risk stage's."""
        if self.stopping:
            return Verdict("GATEWAY_STOPPING", "the gateway is shutting down")
        if o.account == "":
            return Verdict("INVALID_ORDER", "Account(1) is required")
        if o.account not in self.accounts.get(o.session, ()):
            return Verdict("ACCOUNT_NOT_PERMITTED", f"session may not trade account {o.account}")
        if o.side not in SIDES:
            return Verdict("INVALID_ORDER", f"Side(54)={o.side} is not supported")
        if o.ord_type not in ORD_TYPES:
            return Verdict("INVALID_ORDER", f"OrdType(40)={o.ord_type} is not supported")
        if not (o.qty > 0) or math.isinf(o.qty):
            return Verdict("INVALID_QTY", "OrderQty(38) must be a positive number")
        if o.ord_type == "2" and (not (o.price > 0) or math.isinf(o.price)):
            return Verdict("INVALID_PRICE", "a limit order needs a positive Price(44)")
        if not self.venue_up:
            return Verdict("VENUE_DOWN", "venue session is not logged on; order not sent")
        return ACCEPT

    def _replace(self, msg: fix.Message, skey: str) -> None:
        cl = msg.getField(fm.CL_ORD_ID)
        orig = msg.getField(fm.ORIG_CL_ORD_ID)
        qty, price = fm.get_float(msg, fm.ORDER_QTY), fm.get_float(msg, fm.PRICE)
        with self.lock:
            order = self.ledger.find(skey, orig)
            verdict = self._gate_amend(order, skey, cl)
            if verdict.code is None:
                assert order is not None
                if not (qty > 0) or math.isinf(qty):
                    verdict = Verdict("INVALID_QTY", "OrderQty(38) must be a positive number")
                elif order.ord_type == "2" and (not (price > 0) or math.isinf(price)):
                    verdict = Verdict("INVALID_PRICE", "a limit order needs a positive Price(44)")
                elif fm.get(msg, fm.SYMBOL) != order.symbol or fm.get(msg, fm.SIDE) != order.side:
                    verdict = Verdict("INVALID_ORDER", "a replace may not change Symbol(55) or Side(54)")
                elif fm.get(msg, fm.ACCOUNT, order.account) != order.account:
                    verdict = Verdict("INVALID_ORDER", "a replace may not change Account(1)")
                elif self.risk is not None:
                    try:
                        verdict = self.risk.check_replace(order, qty, price, skey)
                    except Exception:
                        log.exception("risk check failed: replace rejected (fail closed)")
                        verdict = Verdict("CHECK_ERROR", "the risk check could not be evaluated")
            self._record_decision("G", NewOrder(skey, cl, order.account if order else fm.get(msg, fm.ACCOUNT),
                                                fm.get(msg, fm.SYMBOL), fm.get(msg, fm.SIDE),
                                                order.ord_type if order else "", qty, price), verdict,
                                  orig=orig)
            if verdict.code is not None:
                reply = self._cancel_reject(cl, orig, order, "2", verdict)
                venue_cl = ""
            else:
                assert order is not None
                venue_cl = self._next_venue_id()
                req = self.ledger.add_request(order, "G", cl, orig, venue_cl, qty, price)
                self.events.append({"e": "G", "r": self._r, "s": skey, "cl": cl, "orig": orig, "v": venue_cl, "n": order.number,
                                    "qty": qty, "px": None if math.isnan(price) else price, "ts": time.time_ns()})
                if self.risk is not None:
                    self.risk.on_event(order, {"e": "G", "qty": qty, "px": price})
                out = fm.copy_for_forwarding(msg)
                out.setField(fm.CL_ORD_ID, venue_cl)
                out.setField(fm.ORIG_CL_ORD_ID, req.venue_orig_cl_ord_id)
                if order.order_id:
                    out.setField(fm.ORDER_ID, order.order_id)
        if venue_cl == "":
            self._send_client(reply, skey)
        elif not self._send_venue(out):
            self.undelivered.append(venue_cl)

    def _cancel(self, msg: fix.Message, skey: str) -> None:
        cl = msg.getField(fm.CL_ORD_ID)
        orig = msg.getField(fm.ORIG_CL_ORD_ID)
        with self.lock:
            order = self.ledger.find(skey, orig)
            # Cancels reduce risk: only the gateway's own checks apply, never limits or the kill switch.
            verdict = self._gate_amend(order, skey, cl, cancel=True)
            self._record_decision("F", NewOrder(skey, cl, order.account if order else fm.get(msg, fm.ACCOUNT),
                                                fm.get(msg, fm.SYMBOL), fm.get(msg, fm.SIDE),
                                                order.ord_type if order else "", math.nan, math.nan), verdict,
                                  orig=orig)
            if verdict.code is not None:
                reply = self._cancel_reject(cl, orig, order, "1", verdict)
                venue_cl = ""
            else:
                assert order is not None
                venue_cl = self._next_venue_id()
                req = self.ledger.add_request(order, "F", cl, orig, venue_cl)
                self.events.append({"e": "F", "r": self._r, "s": skey, "cl": cl, "orig": orig, "v": venue_cl, "n": order.number,
                                    "ts": time.time_ns()})
                out = fm.copy_for_forwarding(msg)
                out.setField(fm.CL_ORD_ID, venue_cl)
                out.setField(fm.ORIG_CL_ORD_ID, req.venue_orig_cl_ord_id)
                if order.order_id:
                    out.setField(fm.ORDER_ID, order.order_id)
        if venue_cl == "":
            self._send_client(reply, skey)
        elif not self._send_venue(out):
            self.undelivered.append(venue_cl)

    def _gate_amend(self, order: Order | None, skey: str, cl: str, cancel: bool = False) -> Verdict:
        if self.stopping and not cancel:
            return Verdict("GATEWAY_STOPPING", "the gateway is shutting down")
        if order is None:
            return Verdict("UNKNOWN_ORDER", "OrigClOrdID(41) names no order of this session")
        if self.ledger.is_duplicate(skey, cl):
            return Verdict("DUPLICATE_CLORDID", f"ClOrdID {cl} already used in this session")
        if not order.is_open:
            return Verdict("UNKNOWN_ORDER", f"order is already done (OrdStatus {order.status})")
        if order.pending:
            return Verdict("REPLACE_PENDING", "a cancel or replace of this order is still pending at the venue")
        if not self.venue_up:
            return Verdict("VENUE_DOWN", "venue session is not logged on; request not sent")
        return ACCEPT

    def _cancel_reject(self, cl: str, orig: str, order: Order | None, response_to: str, v: Verdict) -> fix.Message:
        status = order.status if order is not None else REJECTED
        return fm.cancel_reject(cl, orig, order.order_id if order else "", status, response_to,
                                rejects.cxl_rej_reason(v.code or ""),
                                rejects.text(v.code or "", v.detail, v.value, v.limit),
                                order.account if order else "")

    # ---------------------------------------------------------------- venue side
    def from_venue(self, msg: fix.Message, sid: fix.SessionID) -> None:
        msg_type = msg.getHeader().getField(fm.MSG_TYPE)
        if msg_type == "8":
            self._execution_report(msg)
        elif msg_type == "9":
            self._venue_cancel_reject(msg)
        else:
            raise fix.UnsupportedMessageType()

    def _execution_report(self, msg: fix.Message) -> None:
        venue_cl = fm.get(msg, fm.CL_ORD_ID)
        exec_type = msg.getField(fm.EXEC_TYPE)
        exec_id = msg.getField(fm.EXEC_ID)
        with self.lock:
            req = self.ledger.by_venue.get(venue_cl)
            if req is None:
                self.unroutable += 1
                log.error("execution report for an unknown venue ClOrdID: not routed",
                          extra={"venue_cl_ord_id": venue_cl, "exec_id": exec_id, "exec_type": exec_type})
                return
            order = req.order
            if exec_type in ("F", "G", "H") and exec_id in self.ledger.exec_ids:
                # A venue resend after a crash window: already applied and forwarded.
                log.info("duplicate execution report ignored", extra={"exec_id": exec_id})
                return
            ev = {"e": "X", "v": venue_cl, "n": order.number, "x": exec_type, "id": exec_id,
                  "os": msg.getField(fm.ORD_STATUS), "oid": fm.get(msg, fm.ORDER_ID),
                  "lq": fm.get_float(msg, fm.LAST_QTY), "lp": fm.get_float(msg, fm.LAST_PX),
                  "cum": fm.get_float(msg, fm.CUM_QTY), "avg": fm.get_float(msg, fm.AVG_PX),
                  "ref": fm.get(msg, fm.EXEC_REF_ID), "ts": time.time_ns()}
            for k in ("lq", "lp", "cum", "avg"):
                if math.isnan(ev[k]):  # type: ignore[arg-type]
                    ev[k] = None
            self.events.append(ev)
            apply_execution(self.ledger, req, ev)
            if self.risk is not None:
                self.risk.on_event(order, ev)
            for fn in self.listeners:
                fn("X", ev)
            out = fm.copy_for_forwarding(msg)
            out.setField(fm.CL_ORD_ID, req.cl_ord_id)
            if req.orig_cl_ord_id:
                out.setField(fm.ORIG_CL_ORD_ID, req.orig_cl_ord_id)
            elif out.isSetField(fm.ORIG_CL_ORD_ID):
                out.removeField(fm.ORIG_CL_ORD_ID)
            skey = order.session
        self._send_client(out, skey)

    def _venue_cancel_reject(self, msg: fix.Message) -> None:
        venue_cl = fm.get(msg, fm.CL_ORD_ID)
        with self.lock:
            req = self.ledger.by_venue.get(venue_cl)
            if req is None:
                self.unroutable += 1
                log.error("cancel reject for an unknown venue ClOrdID: not routed", extra={"venue_cl_ord_id": venue_cl})
                return
            ev = {"e": "Z", "v": venue_cl, "n": req.order.number, "os": fm.get(msg, fm.ORD_STATUS),
                  "ts": time.time_ns()}
            self.events.append(ev)
            apply_cancel_reject(self.ledger, req, ev)
            if self.risk is not None:
                self.risk.on_event(req.order, ev)
            out = fm.copy_for_forwarding(msg)
            out.setField(fm.CL_ORD_ID, req.cl_ord_id)
            out.setField(fm.ORIG_CL_ORD_ID, req.orig_cl_ord_id)
            skey = req.order.session
        self._send_client(out, skey)

    # ---------------------------------------------------------------- undelivered requests
    def drain_undelivered(self) -> int:
        """Answer the clients of requests that never reached the venue; returns how many were answered."""
        n = 0
        while self.undelivered:
            venue_cl = self.undelivered.popleft()
            with self.lock:
                req = self.ledger.by_venue.get(venue_cl)
                if req is None or req.order.status in DONE_STATUSES and req.kind == "D":
                    continue
                order = req.order
                v = Verdict("VENUE_DOWN", "venue session dropped before the request was delivered; not sent")
                ev = {"e": "U", "v": venue_cl, "n": order.number, "k": req.kind, "ts": time.time_ns()}
                self.events.append(ev)
                apply_undelivered(self.ledger, req, ev)
                if self.risk is not None:
                    self.risk.on_event(order, ev)
                if req.kind == "D":
                    reply = fm.order_reject(req.cl_ord_id, order.account, order.symbol, order.side, order.qty,
                                            rejects.ord_rej_reason(v.code or ""), rejects.text(v.code or "", v.detail))
                else:
                    reply = self._cancel_reject(req.cl_ord_id, req.orig_cl_ord_id, order,
                                                "2" if req.kind == "G" else "1", v)
                skey = order.session
            self._send_client(reply, skey)
            n += 1
        return n

    # ---------------------------------------------------------------- helpers
    def _next_venue_id(self) -> str:
        self.ledger.next_request += 1
        return f"{self.id_prefix}{self.ledger.next_request}"

    @property
    def _r(self) -> int:
        return self.ledger.next_request

    def _record_decision(self, kind: str, o: NewOrder, v: Verdict, orig: str = "") -> None:
        ev = {"e": "DEC", "k": kind, "s": o.session, "cl": o.cl_ord_id, "orig": orig, "a": o.account,
              "sym": o.symbol, "side": o.side, "qty": None if math.isnan(o.qty) else o.qty,
              "px": None if math.isnan(o.price) else o.price, "code": v.code, "detail": v.detail,
              "val": None if math.isnan(v.value) else v.value, "lim": None if math.isnan(v.limit) else v.limit,
              "warn": list(v.warnings), "ts": time.time_ns()}
        for fn in self.listeners:
            fn("DEC", ev)

    def _send_venue(self, msg: fix.Message) -> bool:
        sid = self.venue
        if sid is None:
            return False
        try:
            return bool(fix.Session.sendToTarget(msg, sid))
        except fix.SessionNotFound:
            return False

    def _send_client(self, msg: fix.Message, skey: str) -> None:
        sid = self.clients.get(skey)
        if sid is None:
            sid = session_id_from_key(skey)
        # A client that is logged out gets it on logon: QuickFIX stores it and the client's resend request fetches it.
        fix.Session.sendToTarget(msg, sid)


def apply_execution(ledger: Ledger, req: Request, ev: dict[str, object]) -> None:
    """Move the ledger by one venue execution report; shared by live processing and replay."""
    order = req.order
    exec_type = ev["x"]
    if ev.get("oid"):
        order.order_id = str(ev["oid"])
    if exec_type in ("F", "G", "H"):
        ledger.exec_ids.add(str(ev["id"]))
    if ev.get("cum") is not None:
        order.cum_qty = float(ev["cum"])  # type: ignore[arg-type]
    if ev.get("avg") is not None:
        order.avg_px = float(ev["avg"])  # type: ignore[arg-type]
    status = str(ev["os"])
    if exec_type == "5" and req.kind == "G":  # replaced: the request becomes the live order
        order.qty = req.qty
        order.price = req.price
        order.cl_ord_id = req.cl_ord_id
        order.venue_cl_ord_id = req.venue_cl_ord_id
        order.pending = ""
    if exec_type in ("4", "5"):
        order.pending = ""
    order.status = status  # OrdStatus always states the order's current status, whatever ExecType says


def apply_cancel_reject(ledger: Ledger, req: Request, ev: dict[str, object]) -> None:
    order = req.order
    if order.pending == req.venue_cl_ord_id:
        order.pending = ""
    status = str(ev.get("os") or "")
    if status:
        order.status = status


def apply_undelivered(ledger: Ledger, req: Request, ev: dict[str, object]) -> None:
    order = req.order
    if req.kind == "D":
        order.status = REJECTED
    elif order.pending == req.venue_cl_ord_id:
        order.pending = ""


def replay(events: EventLog, ledger: Ledger) -> int:
    """Rebuild the ledger from the event log; returns how many events were applied."""
    n = 0
    for ev in events.replay():
        n += 1
        kind = ev["e"]
        if kind == "N":
            price = math.nan if ev["px"] is None else float(ev["px"])
            ledger.add_new(ev["s"], ev["cl"], ev["v"], ev["a"], ev["sym"], ev["side"], ev["t"], float(ev["qty"]),
                           price, int(ev.get("slot", -1)))
        elif kind in ("G", "F"):
            order = ledger.orders[int(ev["n"])]
            price = math.nan if ev.get("px") is None else float(ev["px"])
            ledger.add_request(order, kind, ev["cl"], ev["orig"], ev["v"], float(ev.get("qty") or 0.0), price)
        elif kind == "X":
            apply_execution(ledger, ledger.by_venue[ev["v"]], ev)
        elif kind == "Z":
            apply_cancel_reject(ledger, ledger.by_venue[ev["v"]], ev)
        elif kind == "U":
            apply_undelivered(ledger, ledger.by_venue[ev["v"]], ev)
        if "r" in ev:
            ledger.next_request = max(ledger.next_request, int(ev["r"]))
    return n


def sid_key(sid: fix.SessionID) -> str:
    return f"{sid.getSenderCompID().getValue()}->{sid.getTargetCompID().getValue()}"


def copy_sid(sid: fix.SessionID) -> fix.SessionID:
    """QuickFIX reuses the SessionID it hands to callbacks; keep our own copy."""
    return fix.SessionID(sid.getBeginString().getValue(), sid.getSenderCompID().getValue(),
                         sid.getTargetCompID().getValue())


def session_key(our_comp_id: str, their_comp_id: str) -> str:
    return f"{our_comp_id}->{their_comp_id}"


def session_id_from_key(key: str, begin_string: str = "FIX.4.4") -> fix.SessionID:
    ours, theirs = key.split("->", 1)
    return fix.SessionID(begin_string, ours, theirs)
