"""The order path: client requests in, decisions, venue requests out, venue reports routed back.

Everything here runs on QuickFIX's socket threads: a client's message is decided and forwarded on that
session's thread, the venue's reports are routed on the initiator's. One lock guards the ledger and the risk
state; it is never held while calling QuickFIX (sends take the session's own mutex, and QuickFIX calls back
into toApp under that mutex, so holding ours across a send could deadlock against the other thread).

Every decision and every state change is appended to the event log before the gateway acts on it.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, TypeVar

from config.settings import GatewayConfig
from gateway.fix import messages as fm
from gateway.fix import sessions
from gateway.fix.sessions import SessionID, copy_sid, session_key, sid_key
from gateway.orders import rejects
from gateway.fix import translate
from gateway.events import schema
from gateway.events.log import EventLog
from gateway.orders.ledger import DONE_STATUSES, PENDING_NEW, REJECTED, Ledger, Order, Request
from gateway.orders import trading_day as td
from gateway.orders.lifecycle import apply_amend, apply_new, apply_rejected, apply_report, replay_log

log = logging.getLogger("fixgw.router")
T = TypeVar("T")

SIDES = frozenset({"1", "2", "5"})  # buy, sell, sell short
ORD_TYPES = frozenset({"1", "2"})  # market, limit
VENUE_REQUESTS = frozenset({"D", "G", "F", "H"})  # what the gateway sends the venue and waits an answer for


@dataclass(slots=True)
class Verdict:
    """What the checks said about a request: a reject code (None: accept), its figures and any warnings."""

    code: str | None = None
    detail: str = ""
    value: float = math.nan
    limit: float = math.nan
    warnings: tuple[tuple[str, float, float], ...] = ()


ACCEPT = Verdict()


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


class RiskChecks(Protocol):
    """What the router needs from risk (gateway.orders.risk_stage.RiskStage implements it)."""

    limits_version: str

    def check_new(self, o: NewOrder, duplicate: bool) -> Verdict: ...
    def check_replace(self, order: Order, qty: float, price: float, session: str) -> Verdict: ...
    def count_message(self, session: str) -> None: ...
    def reserve(self, session: str, account: str, symbol: str, side: str, ord_type: str, qty: float,
                price: float) -> int: ...
    def apply(self, order: Order, req: Request, ev: schema.Event) -> None: ...
    # the control plane's changes, made through the router (the state's owner)
    fills: dict[str, tuple[float, float, int]]
    def mirror(self, account: str, symbol: str, side: str, qty: float, px: float, sign: int) -> bool: ...
    def apply_admin(self, ev: schema.Admin | schema.Switch) -> None: ...
    def swap_config(self, new_cfg: Any) -> str: ...
    def carry(self, kill: bool, reduce_only: bool) -> list[schema.Event]: ...
    def new_day(self) -> None: ...


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _poss_dup(msg: fm.Message) -> bool:
    """A resend (PossDupFlag=Y) of a request already decided must not be decided again (FIX: ignore it)."""
    hdr = msg.getHeader()
    return hdr.isSetField(fm.POSS_DUP) and hdr.getField(fm.POSS_DUP) == "Y"


@dataclass(slots=True)
class Sent:
    """A request on its way to the venue, until the venue answers it (any report or reject naming it)."""

    venue_cl_ord_id: str
    msg_type: str
    seq: int
    at: float  # monotonic seconds
    alerted: bool = False


class Router:
    def __init__(self, cfg: GatewayConfig, events: EventLog, ledger: Ledger | None = None,
                 risk: RiskChecks | None = None, id_prefix: str = "G", alert: Any = None) -> None:
        self.cfg = cfg
        self.events = events
        self.ledger = ledger or Ledger()
        self.risk = risk
        self.lock = threading.Lock()
        self.id_prefix = id_prefix
        self.clients: dict[str, SessionID] = {}
        # Per client session, keyed the way the order path knows it: entitlements, the account used when
        # Account(1) is absent, the configured SessionID (a logged-out client's reports still go to its
        # store) and how it speaks.
        self.accounts: dict[str, frozenset[str]] = {}
        self.default_account: dict[str, str] = {}
        self.client_sids: dict[str, SessionID] = {}
        self.dialects: dict[str, translate.Dialect] = {}
        for c in cfg.acceptor.clients:
            key = session_key(c.target_comp_id, c.sender_comp_id)
            self.accounts[key] = frozenset(c.accounts)
            if c.default_account:
                self.default_account[key] = c.default_account
            self.client_sids[key] = sessions.session_id(c.begin_string, c.target_comp_id, c.sender_comp_id)
            self.dialects[key] = translate.Dialect(c.begin_string, frozenset(c.extra_tags))
        all_extra = sorted({t for c in cfg.acceptor.clients for t in c.extra_tags} | set(cfg.venue.extra_tags))
        self.venue_dialect = translate.Dialect(cfg.venue.begin_string, frozenset(all_extra))
        # Requests sent to the venue and not yet answered: by venue ClOrdID, and by MsgSeqNum for the venue's
        # session-level Rejects (35=3), which name only the RefSeqNum.
        self.awaiting: dict[str, Sent] = {}
        self.sent_seq: dict[int, Sent] = {}
        self.status_unsupported: set[int] = set()  # orders whose status request the venue refused
        self._alert = alert or (lambda code: None)
        # Who is logged on is kept by the client sessions' Application (watch_logons); nothing else keeps a copy.
        self._logged_on: Callable[[], set[str]] = set
        self.venue: SessionID | None = None
        self.venue_up = False
        self.stopping = False
        self.unroutable = 0
        # Venue ClOrdIDs of requests QuickFIX refused to (re)send: answered at once where no session mutex is held
        # (_not_sent), by housekeeping for those found inside the venue's toApp (a resend being gap-filled).
        self.undelivered: collections.deque[str] = collections.deque()
        # Of those, the ones the venue's FIX version cannot express, with why (answered as such, not VENUE_DOWN).
        self.untranslatable: dict[str, str] = {}
        # Client sessions whose store a rollover resets: their reports wait here, not in the old store that the
        # reset wipes, and go out as new messages once the session has logged on to the new day (a Logon with
        # ResetSeqNumFlag would wipe a store again). `_ready`: the rollover is over, waiting for that Logon.
        self._held: dict[str, list[fm.Message]] = {}
        self._ready: set[str] = set()
        self._held_lock = threading.Lock()
        # ExecIDs of the drop-copy fills mirrored into the risk state (changed under the lock with it): a
        # rollover carries them inside the positions, and a start must not mirror those again.
        self.mirrored_exec_ids: set[str] = set()

    # ---------------------------------------------------------------- sessions
    def watch_logons(self, logged_on: Callable[[], set[str]]) -> None:
        """Where to ask which client sessions are logged on (the client Application's session_keys)."""
        self._logged_on = logged_on

    @property
    def logged_on(self) -> set[str]:
        return self._logged_on()

    def client_logon(self, sid: SessionID) -> None:
        key = sid_key(sid)
        self.clients[key] = copy_sid(sid)
        log.info("client session logged on", extra={"session": key})

    def client_logout(self, sid: SessionID) -> None:
        key = sid_key(sid)
        log.info("client session logged out", extra={"session": key})

    def venue_logon(self, sid: SessionID) -> None:
        self.venue = copy_sid(sid)
        with self.lock:
            # A new connection may have new sequence numbers: old RefSeqNums can no longer be matched.
            self.sent_seq.clear()
        self.venue_up = True
        log.info("venue session logged on", extra={"session": sid_key(sid)})

    def venue_logout(self, sid: SessionID) -> None:
        was_up, self.venue_up = self.venue_up, False
        if self.stopping or not was_up:
            log.info("venue session logged out", extra={"session": sid_key(sid)})
            return
        log.warning("venue session down: new orders are rejected with VENUE_DOWN", extra={"session": sid_key(sid)})

    # ---------------------------------------------------------------- client side
    def from_client(self, msg: fm.Message, sid: SessionID) -> None:
        msg_type = msg.getHeader().getField(fm.MSG_TYPE)
        skey = sid_key(sid)
        d = self.dialects.get(skey)
        if d is not None and not d.identity:
            try:
                msg = translate.inbound(msg, d)
            except translate.Untranslatable as e:
                # FIX 4.4 cannot say what the client asked: a session Reject, and nothing goes on.
                log.warning("client message cannot be expressed in FIX 4.4: session reject",
                            extra={"session": skey, "tag": e.tag, "value": e.value, "reason": str(e)})
                raise fm.IncorrectTagValue(e.tag) from None
        if msg_type == "D":
            self._new_order(msg, skey)
        elif msg_type == "G":
            self._replace(msg, skey)
        elif msg_type == "F":
            self._cancel(msg, skey)
        elif msg_type == "j":
            # No reject ever answers a reject: a loop of them would flood both sessions.
            log.warning("business reject from a client: logged, not answered",
                        extra={"session": skey, "fix": msg.toString().replace("\x01", "|")})
        else:
            # QuickFIX answers this with BusinessMessageReject(380=3) and keeps the session up.
            raise fm.UnsupportedMessageType()

    def _new_order(self, msg: fm.Message, skey: str) -> None:
        f = fm.to_dict(msg)
        account = f.get(fm.ACCOUNT, "")
        defaulted = account == "" and skey in self.default_account
        if defaulted:
            account = self.default_account[skey]
        o = NewOrder(skey, fm.need(f, fm.CL_ORD_ID), account, fm.need(f, fm.SYMBOL), fm.need(f, fm.SIDE),
                     fm.need(f, fm.ORD_TYPE), fm.num(f, fm.ORDER_QTY), fm.num(f, fm.PRICE))
        if f.get(fm.POSS_DUP) == "Y" and self._already_decided(skey, o.cl_ord_id):
            return
        tif = f.get(fm.TIME_IN_FORCE, "")
        with self.lock:
            t0 = time.perf_counter_ns()
            duplicate = self.ledger.is_duplicate(skey, o.cl_ord_id)
            verdict = self._gate_new(o)
            if verdict.code is None:
                if self.risk is not None:
                    verdict = self._guarded(lambda: self.risk.check_new(o, duplicate))  # type: ignore[union-attr]
                elif duplicate:
                    verdict = Verdict("DUPLICATE_CLORDID", f"ClOrdID {o.cl_ord_id} already used in this session")
            ck = time.perf_counter_ns() - t0
            if verdict.code is not None:
                self._record_reject("D", o, verdict, ck=ck, defaulted=defaulted)
                reply = fm.order_reject(o.cl_ord_id, o.account, o.symbol, o.side, o.qty,
                                        rejects.ord_rej_reason(verdict.code), rejects.text(verdict.code,
                                                                                           verdict.detail))
                order = None
            else:
                venue_cl = self._next_venue_id()
                ev = schema.NewOrder(
                    request=self.ledger.next_request, session=skey, cl_ord_id=o.cl_ord_id, venue_cl_ord_id=venue_cl,
                    number=self.ledger.next_number, account=o.account, symbol=o.symbol, side=o.side,
                    ord_type=o.ord_type, qty=o.qty, px=_num(o.price), warnings=verdict.warnings,
                    limits_version=self._limits_version, check_ns=ck, ts=time.time_ns(),
                    account_defaulted=1 if defaulted else 0, tif=tif)
                order = apply_new(self.ledger, self.risk, ev)  # a reservation that fails logs nothing
                self.events.append(ev)
        if order is None:
            self._send_client(reply, skey)
            return
        out = fm.copy_for_forwarding(msg)
        out.setField(fm.CL_ORD_ID, order.venue_cl_ord_id)
        if defaulted:
            out.setField(fm.ACCOUNT, o.account)
        if not self._send_venue(out):
            self._not_sent(order.venue_cl_ord_id)

    def _gate_new(self, o: NewOrder) -> Verdict:
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
        return self._gate_qty_price(o.ord_type, o.qty, o.price) or self._gate_venue()

    @staticmethod
    def _gate_qty_price(ord_type: str, qty: float, price: float) -> Verdict | None:
        if not (qty > 0) or math.isinf(qty):
            return Verdict("INVALID_QTY", "OrderQty(38) must be a positive number")
        if ord_type == "2" and (not (price > 0) or math.isinf(price)):
            return Verdict("INVALID_PRICE", "a limit order needs a positive Price(44)")
        return None

    def _gate_venue(self) -> Verdict:
        if not self.venue_up:
            return Verdict("VENUE_DOWN", "venue session is not logged on; not sent")
        return ACCEPT

    def _guarded(self, check: Any) -> Verdict:
        try:
            return check()
        except Exception:
            log.exception("risk check failed: request rejected (fail closed)")
            return Verdict("CHECK_ERROR", "the risk check could not be evaluated")

    def _replace(self, msg: fm.Message, skey: str) -> None:
        cl, orig = msg.getField(fm.CL_ORD_ID), msg.getField(fm.ORIG_CL_ORD_ID)
        qty, price = fm.get_float(msg, fm.ORDER_QTY), fm.get_float(msg, fm.PRICE)
        if _poss_dup(msg) and self._already_decided(skey, cl):
            return
        with self.lock:
            t0 = time.perf_counter_ns()
            order = self.ledger.find(skey, orig)
            verdict = self._gate_amend(order, skey, cl)
            if verdict.code is None:
                assert order is not None
                verdict = (self._gate_qty_price(order.ord_type, qty, price) or
                           self._gate_same_order(msg, order) or ACCEPT)
                if verdict.code is None and self.risk is not None:
                    verdict = self._guarded(lambda: self.risk.check_replace(order, qty, price, skey))  # type: ignore
            ck = time.perf_counter_ns() - t0
            if verdict.code is not None:
                self._record_reject("G", self._amend_fields(msg, skey, cl, order, qty, price), verdict, orig, ck)
                reply = self._cancel_reject(cl, orig, order, "2", verdict)
                out = None
            else:
                assert order is not None
                reply = None
                out = self._forward_amend(msg, order, "G", cl, orig, qty, price, verdict, ck)
        self._deliver(out, reply, skey)

    def _already_decided(self, skey: str, cl: str) -> bool:
        """A resend (PossDupFlag=Y) of a request already decided must not be decided again (FIX: ignore it)."""
        if self.ledger.is_duplicate(skey, cl):
            log.info("resent request already decided: ignored", extra={"session": skey, "cl_ord_id": cl})
            return True
        return False

    def _deliver(self, out: fm.Message | None, reply: fm.Message | None, skey: str) -> None:
        """Outside the lock: the accepted request to the venue, or the reject to the client."""
        if out is None:
            assert reply is not None
            self._send_client(reply, skey)
        elif not self._send_venue(out):
            self._not_sent(out.getField(fm.CL_ORD_ID))

    @staticmethod
    def _gate_same_order(msg: fm.Message, order: Order) -> Verdict | None:
        if fm.get(msg, fm.SYMBOL) != order.symbol or fm.get(msg, fm.SIDE) != order.side:
            return Verdict("INVALID_ORDER", "a replace may not change Symbol(55) or Side(54)")
        if fm.get(msg, fm.ACCOUNT, order.account) != order.account:
            return Verdict("INVALID_ORDER", "a replace may not change Account(1)")
        return None

    def _cancel(self, msg: fm.Message, skey: str) -> None:
        cl, orig = msg.getField(fm.CL_ORD_ID), msg.getField(fm.ORIG_CL_ORD_ID)
        if _poss_dup(msg) and self._already_decided(skey, cl):
            return
        with self.lock:
            t0 = time.perf_counter_ns()
            order = self.ledger.find(skey, orig)
            # Cancels reduce risk: only the gateway's own checks apply, never limits or the kill switch.
            # They count toward the session's message throttle all the same.
            verdict = self._gate_amend(order, skey, cl, cancel=True)
            if self.risk is not None:
                try:
                    self.risk.count_message(skey)
                except Exception:
                    log.exception("message-rate count failed; the cancel goes ahead")
            ck = time.perf_counter_ns() - t0
            if verdict.code is not None:
                self._record_reject("F", self._amend_fields(msg, skey, cl, order, math.nan, math.nan), verdict, orig,
                                    ck)
                reply = self._cancel_reject(cl, orig, order, "1", verdict)
                out = None
            else:
                assert order is not None
                reply = None
                out = self._forward_amend(msg, order, "F", cl, orig, math.nan, math.nan, verdict, ck)
        self._deliver(out, reply, skey)

    def _forward_amend(self, msg: fm.Message, order: Order, kind: str, cl: str, orig: str, qty: float,
                       price: float, verdict: Verdict, ck: int) -> fm.Message:
        """Record an accepted replace/cancel (under the lock) and build the venue's copy of it."""
        venue_cl = self._next_venue_id()
        ev = (schema.Replace if kind == "G" else schema.Cancel)(
            request=self.ledger.next_request, session=order.session, cl_ord_id=cl, orig_cl_ord_id=orig,
            venue_cl_ord_id=venue_cl, number=order.number, account=order.account, symbol=order.symbol,
            side=order.side, qty=_num(qty), px=_num(price), warnings=verdict.warnings,
            limits_version=self._limits_version, check_ns=ck, ts=time.time_ns())
        self.events.append(ev)
        req = apply_amend(self.ledger, self.risk, ev)
        out = fm.copy_for_forwarding(msg)
        out.setField(fm.CL_ORD_ID, venue_cl)
        out.setField(fm.ORIG_CL_ORD_ID, req.venue_orig_cl_ord_id)
        out.setField(fm.ACCOUNT, order.account)  # the venue knows the order by it, defaulted or not
        if order.order_id:
            out.setField(fm.ORDER_ID, order.order_id)
        return out

    @staticmethod
    def _amend_fields(msg: fm.Message, skey: str, cl: str, order: Order | None, qty: float,
                      price: float) -> NewOrder:
        if order is not None:
            return NewOrder(skey, cl, order.account, order.symbol, order.side, order.ord_type, qty, price)
        return NewOrder(skey, cl, fm.get(msg, fm.ACCOUNT), fm.get(msg, fm.SYMBOL), fm.get(msg, fm.SIDE), "",
                        qty, price)

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
        return self._gate_venue()

    def _cancel_reject(self, cl: str, orig: str, order: Order | None, response_to: str, v: Verdict) -> fm.Message:
        status = order.status if order is not None else REJECTED
        code = v.code or "CHECK_ERROR"
        return fm.cancel_reject(cl, orig, order.order_id if order else "", status, response_to,
                                rejects.cxl_rej_reason(code), rejects.text(code, v.detail),
                                order.account if order else "")

    # ---------------------------------------------------------------- venue side
    def from_venue(self, msg: fm.Message, sid: SessionID) -> None:
        msg_type = msg.getHeader().getField(fm.MSG_TYPE)
        if not self.venue_dialect.identity:
            try:
                msg = translate.inbound(msg, self.venue_dialect)
            except translate.Untranslatable as e:
                # The report cannot be read as FIX 4.4 says it: the venue hears so, as FIX asks, and it is logged.
                log.error("venue message cannot be expressed in FIX 4.4: session reject",
                          extra={"tag": e.tag, "value": e.value, "reason": str(e),
                                 "fix": msg.toString().replace("\x01", "|")})
                raise fm.IncorrectTagValue(e.tag) from None
        if msg_type == "8":
            self._execution_report(msg)
        elif msg_type == "9":
            self._venue_cancel_reject(msg)
        elif msg_type == "j":
            self._venue_business_reject(msg)
        else:
            raise fm.UnsupportedMessageType()

    # ---------------------------------------------------------------- venue answers and their absence
    def venue_to_app(self, msg: fm.Message, sid: SessionID) -> None:
        """QuickFIX's toApp on the venue session, under its session mutex, with MsgSeqNum already set.

        A request QuickFIX is about to resend after a reconnect is gap-filled instead (DoNotSend) and its client
        told it was not delivered: nothing reaches the market late and unasked. Every other request is
        remembered by venue ClOrdID and sequence number until the venue answers it.
        """
        hdr = msg.getHeader()
        msg_type = hdr.getField(fm.MSG_TYPE)
        if msg_type not in VENUE_REQUESTS:
            return
        venue_cl = msg.getField(fm.CL_ORD_ID)
        if hdr.isSetField(fm.POSS_DUP) and hdr.getField(fm.POSS_DUP) == "Y":
            if msg_type != "H":
                self.undelivered.append(venue_cl)
            raise fm.DoNotSend()
        sent = Sent(venue_cl, msg_type, int(hdr.getField(fm.MSG_SEQ_NUM)), time.monotonic())
        # Lock order is always session mutex -> router lock: the router never calls QuickFIX under its lock.
        with self.lock:
            self.awaiting[venue_cl] = sent
            self.sent_seq[sent.seq] = sent

    def _answered(self, venue_cl: str) -> Sent | None:
        """Under the lock: the venue said something about `venue_cl`, so it is no longer awaited."""
        sent = self.awaiting.pop(venue_cl, None)
        if sent is not None:
            self.sent_seq.pop(sent.seq, None)
            if sent.alerted:
                log.warning("venue answered a request it had left unanswered",
                            extra={"venue_cl_ord_id": venue_cl, "after_s": round(time.monotonic() - sent.at, 3)})
        return sent

    def unanswered(self, timeout_s: float, now: float | None = None) -> list[Sent]:
        """Requests older than `timeout_s` without an answer; each newly overdue one raises VENUE_NO_ANSWER."""
        now = time.monotonic() if now is None else now
        overdue, fresh = [], []
        with self.lock:
            for sent in self.awaiting.values():
                if now - sent.at > timeout_s:
                    overdue.append(sent)
                    if not sent.alerted:
                        sent.alerted = True
                        fresh.append(sent)
        for sent in fresh:
            self._alert("VENUE_NO_ANSWER")
            log.error("VENUE_NO_ANSWER: the venue neither acknowledged nor rejected a request; see "
                      "docs/runbooks/VENUE_NO_ANSWER.md",
                      extra={"venue_cl_ord_id": sent.venue_cl_ord_id, "msg_type": sent.msg_type,
                             "seq": sent.seq, "age_s": round(now - sent.at, 3)})
        return overdue

    def await_unconfirmed(self, numbers: list[int]) -> None:
        """Orders of a previous run whose fate is unknown and will not be asked about: await them all the same."""
        now = time.monotonic()
        with self.lock:
            for n in numbers:
                order = self.ledger.orders.get(n)
                if order is not None and order.status == PENDING_NEW:
                    self.awaiting.setdefault(order.venue_cl_ord_id, Sent(order.venue_cl_ord_id, "D", 0, now))

    def venue_session_reject(self, msg: fm.Message) -> None:
        """The venue's session-level Reject (35=3), matched to what it rejects by RefSeqNum."""
        ref_seq = fm.get(msg, fm.REF_SEQ_NUM)
        text = fm.get(msg, fm.TEXT) or f"SessionRejectReason {fm.get(msg, fm.SESSION_REJECT_REASON) or '?'}"
        if fm.get(msg, fm.REF_TAG_ID):
            text += f" (tag {fm.get(msg, fm.REF_TAG_ID)})"
        with self.lock:
            sent = self.sent_seq.get(int(ref_seq)) if ref_seq.isdigit() else None
        if sent is None:
            log.error("venue session reject of a message the gateway cannot match: logged only",
                      extra={"ref_seq_num": ref_seq, "text": text})
            return
        self._venue_refused(sent.venue_cl_ord_id, sent.msg_type, "VENUE_SESSION_REJECT", text)

    def _venue_business_reject(self, msg: fm.Message) -> None:
        """BusinessMessageReject (35=j): matched by BusinessRejectRefID (our venue ClOrdID), else RefSeqNum.
        Never answered: a reject of a reject is how two engines flood each other."""
        ref_id, ref_seq = fm.get(msg, fm.BUSINESS_REJECT_REF_ID), fm.get(msg, fm.REF_SEQ_NUM)
        ref_type = fm.get(msg, fm.REF_MSG_TYPE)
        text = fm.get(msg, fm.TEXT) or f"BusinessRejectReason {fm.get(msg, fm.BUSINESS_REJECT_REASON) or '?'}"
        with self.lock:
            sent = self.sent_seq.get(int(ref_seq)) if ref_seq.isdigit() else None
            if sent is not None and ref_id and sent.venue_cl_ord_id != ref_id:
                sent = None  # the sequence number is from another connection: trust the ID
            if sent is None and ref_id in self.ledger.by_venue:
                sent = Sent(ref_id, ref_type or self.ledger.by_venue[ref_id].kind, 0, 0.0)
        if sent is None:
            log.error("venue business reject of a message the gateway cannot match: logged, not answered",
                      extra={"ref_seq_num": ref_seq, "ref_id": ref_id, "ref_msg_type": ref_type, "text": text})
            return
        self._venue_refused(sent.venue_cl_ord_id, sent.msg_type, "VENUE_BUSINESS_REJECT", text)

    def _venue_refused(self, venue_cl: str, msg_type: str, code: str, text: str) -> None:
        """The venue refused a request at the session or business level: its client gets a reject of its own,
        and the order's reservation (or the pending replace) is released, exactly as if it was never sent."""
        detail = f"venue: {text}"
        reply = None
        with self.lock:
            self._answered(venue_cl)
            req = self.ledger.by_venue.get(venue_cl)
            if msg_type == "H":
                if req is not None:
                    self.status_unsupported.add(req.order.number)
                    # Still unconfirmed: it stays pending and awaited, and operators see it in status.
                    self.awaiting.setdefault(venue_cl, Sent(venue_cl, "D", 0, time.monotonic()))
                self._alert("VENUE_STATUS_UNSUPPORTED")
                log.error("VENUE_STATUS_UNSUPPORTED: the venue refused an OrderStatusRequest; the order stays "
                          "pending; see docs/runbooks/VENUE_STATUS_UNSUPPORTED.md",
                          extra={"venue_cl_ord_id": venue_cl, "text": text})
                return
            if req is None or msg_type != req.kind:
                log.error("venue reject of a request the ledger does not hold", extra={
                    "venue_cl_ord_id": venue_cl, "msg_type": msg_type, "code": code, "text": text})
                return
            order = req.order
            if (req.kind == "D" and order.status != PENDING_NEW) or (req.kind != "D" and
                                                                     order.pending != venue_cl):
                log.error("venue reject of a request already answered: the order stands as reported",
                          extra={"venue_cl_ord_id": venue_cl, "code": code, "status": order.status})
                return
            ev = self._refusal_event(req, code, detail)
            reply = self._refusal_reply(req, code, detail)
            skey = order.session
        self._alert(code)
        log.warning("venue refused a request: client answered", extra={
            "venue_cl_ord_id": venue_cl, "code": code, "text": text, "order": ev.number})
        if reply is not None:
            self._send_client(reply, skey)

    def _refusal_event(self, req: Request, code: str, detail: str) -> schema.Undelivered:
        """Under the lock: log and apply that a request never took effect at the venue."""
        order = req.order
        ev = schema.Undelivered(venue_cl_ord_id=req.venue_cl_ord_id, number=order.number, request_kind=req.kind,
                                code=code, detail=detail, session=order.session, cl_ord_id=req.cl_ord_id,
                                orig_cl_ord_id=req.orig_cl_ord_id, account=order.account, symbol=order.symbol,
                                side=order.side, ts=time.time_ns())
        self.events.append(ev)
        apply_report(self.ledger, self.risk, req, ev)
        return ev

    def _refusal_reply(self, req: Request, code: str, detail: str) -> fm.Message | None:
        order = req.order
        if req.kind == "D":
            return fm.order_reject(req.cl_ord_id, order.account, order.symbol, order.side, order.qty,
                                   rejects.ord_rej_reason(code), rejects.text(code, detail))
        if req.kind == "F" and not req.orig_cl_ord_id:
            return None  # a cancel the gateway itself sent (kill switch): the client asked for nothing
        return self._cancel_reject(req.cl_ord_id, req.orig_cl_ord_id, order, "2" if req.kind == "G" else "1",
                                   Verdict(code, detail))

    def _execution_report(self, msg: fm.Message) -> None:
        f = fm.to_dict(msg)
        venue_cl = f.get(fm.CL_ORD_ID, "")
        exec_type = fm.need(f, fm.EXEC_TYPE)
        exec_id = fm.need(f, fm.EXEC_ID)
        with self.lock:
            req = self.ledger.by_venue.get(venue_cl)
            if req is None:
                self.unroutable += 1
                log.error("execution report for an unknown venue ClOrdID: not routed",
                          extra={"venue_cl_ord_id": venue_cl, "exec_id": exec_id, "exec_type": exec_type})
                return
            order = req.order
            skey = order.session
            if self.awaiting:
                self._answered(venue_cl)
            if exec_type in ("F", "G", "H") and exec_id in self.ledger.exec_ids:
                # Already applied: a venue resend after a crash window. Whether the client got it before the
                # crash is unknown, so it goes again flagged PossResend; clients de-duplicate on ExecID.
                log.info("execution report already applied: forwarded again as PossResend",
                         extra={"exec_id": exec_id})
                out = self._client_copy(msg, req)
                out.getHeader().setField(fm.POSS_RESEND, "Y")
            else:
                ev = schema.Execution(
                    venue_cl_ord_id=venue_cl, number=order.number, exec_type=exec_type, exec_id=exec_id,
                    ord_status=fm.need(f, fm.ORD_STATUS), order_id=f.get(fm.ORDER_ID, ""),
                    last_qty=_num(fm.num(f, fm.LAST_QTY)), last_px=_num(fm.num(f, fm.LAST_PX)),
                    cum_qty=_num(fm.num(f, fm.CUM_QTY)), avg_px=_num(fm.num(f, fm.AVG_PX)),
                    exec_ref_id=f.get(fm.EXEC_REF_ID, ""), session=skey, account=order.account,
                    symbol=order.symbol, side=order.side, cl_ord_id=req.cl_ord_id, ts=time.time_ns())
                if ev.is_fill:  # what reconciliation needs to date the trade
                    ev.transact_time = f.get(fm.TRANSACT_TIME, "")
                    ev.trade_date = f.get(fm.TRADE_DATE, "")
                    # a resend's 52 is when it was re-sent; 122 when it was first sent
                    ev.sending_time = f.get(fm.ORIG_SENDING_TIME) or f.get(fm.SENDING_TIME, "")
                self.events.append(ev)
                apply_report(self.ledger, self.risk, req, ev)
                out = self._client_copy(msg, req)
        self._send_client(out, skey)

    @staticmethod
    def _client_copy(msg: fm.Message, req: Request) -> fm.Message:
        """The venue's report as the client must see it: its own ClOrdID and OrigClOrdID."""
        out = fm.copy_for_forwarding(msg)
        out.setField(fm.CL_ORD_ID, req.cl_ord_id)
        if req.orig_cl_ord_id:
            out.setField(fm.ORIG_CL_ORD_ID, req.orig_cl_ord_id)
        elif out.isSetField(fm.ORIG_CL_ORD_ID):
            out.removeField(fm.ORIG_CL_ORD_ID)
        return out

    def _venue_cancel_reject(self, msg: fm.Message) -> None:
        venue_cl = fm.get(msg, fm.CL_ORD_ID)
        with self.lock:
            req = self.ledger.by_venue.get(venue_cl)
            if req is None:
                self.unroutable += 1
                log.error("cancel reject for an unknown venue ClOrdID: not routed", extra={"venue_cl_ord_id": venue_cl})
                return
            self._answered(venue_cl)
            ev = schema.CancelRejected(venue_cl_ord_id=venue_cl, number=req.order.number,
                                       ord_status=fm.get(msg, fm.ORD_STATUS), ts=time.time_ns())
            self.events.append(ev)
            apply_report(self.ledger, self.risk, req, ev)
            out = fm.copy_for_forwarding(msg)
            out.setField(fm.CL_ORD_ID, req.cl_ord_id)
            out.setField(fm.ORIG_CL_ORD_ID, req.orig_cl_ord_id)
            skey = req.order.session
        self._send_client(out, skey)

    # ---------------------------------------------------------------- the state's owner
    # The router owns the order path's state: the ledger, the risk state and the lock that guards both. The
    # control plane reads and changes it only through these methods; no other module takes the lock.
    def read(self, fn: Callable[[Ledger, Any], T]) -> T:
        """fn(ledger, risk) under the lock, for status and gauges: it must only read."""
        with self.lock:
            return fn(self.ledger, self.risk)

    def responsive(self, timeout: float) -> bool:
        """Whether the order path releases its lock within `timeout` (the watchdog's probe)."""
        if not self.lock.acquire(timeout=timeout):
            return False
        self.lock.release()
        return True

    def mirror(self, account: str, symbol: str, side: str, qty: float, px: float, exec_id: str,
               sign: int) -> bool:
        """Move positions by a drop-copy fill the gateway never saw (+1) or take that back (-1); the ExecIDs of
        the fills inside positions are kept with them (a rollover carries both)."""
        if self.risk is None:
            return False
        with self.lock:
            if not self.risk.mirror(account, symbol, side, qty, px, sign):
                return False
            (self.mirrored_exec_ids.add if sign > 0 else self.mirrored_exec_ids.discard)(exec_id)
            return True

    def mark_mirrored(self, exec_id: str) -> None:
        """A fill already inside the positions the day began with (carried by the rollover)."""
        with self.lock:
            self.mirrored_exec_ids.add(exec_id)

    def is_mirrored(self, exec_id: str) -> bool:
        with self.lock:
            return exec_id in self.mirrored_exec_ids

    def operator_switch(self, ev: schema.Admin) -> None:
        """A kill switch or reduce-only change: applied, then logged; a bad one raises and logs nothing."""
        if self.risk is None:
            raise ValueError("no risk engine: switches need it")
        with self.lock:
            self.risk.apply_admin(ev)
            self.events.append(ev)

    def swap_limits(self, new_cfg: Any, who: str, why: str) -> tuple[str, str]:
        """New limits and reference data in force for the next order, atomically; logged with both versions."""
        if self.risk is None:
            raise ValueError("no risk engine: nothing to swap")
        with self.lock:
            old = self.risk.limits_version
            new = self.risk.swap_config(new_cfg)
            self.events.append(schema.Admin(action="reload", scope="limits", who=who, why=why,
                                            detail={"from": old, "to": new}, ts=time.time_ns()))
        return old, new

    def roll_day(self, new: str, previous: str, who: str, why: str, carry_kill: bool, carry_reduce_only: bool,
                 keep_ids: frozenset[str], archive_to: Any) -> tuple[list[dict[str, Any]], dict[tuple[str, str], float]]:
        """The trading-day boundary, under the lock: log the rollover, write what carries over as the new day's
        first events (gateway.orders.trading_day), archive the old day, and rebuild the state from those events
        exactly as a start would. Returns the DAY orders still open and the carried positions."""
        with self.lock:
            ledger = self.ledger
            day_open = td.day_orders(ledger)
            self.events.append(schema.Admin(action="rollover", scope="trading-day", who=who, why=why,
                                            detail={"from": previous, "to": new, "open_orders": len(ledger.open),
                                                    "day_orders_open": len(day_open)}, ts=time.time_ns()))
            carried: list[schema.Event] = [schema.DayStart(
                prefix=self.id_prefix, day=new, previous=previous, next_number=ledger.next_number,
                request=ledger.next_request, ts=time.time_ns())]
            if self.risk is not None:
                carried += self.risk.carry(carry_kill, carry_reduce_only)
            if self.mirrored_exec_ids:  # drop-copy fills already inside the carried positions
                carried.append(schema.Mirrored(exec_ids=sorted(self.mirrored_exec_ids)))
            carried += td.carried_orders(ledger)
            carried += td.carried_ids(ledger, keep_ids)
            positions = {(ev.account, ev.symbol): ev.qty for ev in carried if isinstance(ev, schema.Position)}
            fresh = Ledger()

            def switch_over() -> None:  # the new day's file is in place: rebuild from it, exactly as a start
                if self.risk is not None:
                    self.risk.new_day()
                    self.risk.fills = fresh.fills
                replay_log(carried, fresh, self.risk)
                self.ledger = fresh
                self.awaiting = {v: x for v, x in self.awaiting.items() if v in fresh.by_venue}
                self.sent_seq = {q: x for q, x in self.sent_seq.items() if x.venue_cl_ord_id in fresh.by_venue}
                self.status_unsupported &= set(fresh.open)

            self.events.roll(carried, archive_to, inside=switch_over)
        return day_open, positions

    # ---------------------------------------------------------------- gateway-initiated cancels
    def cancel_orders(self, pred: Any, why: str) -> int:
        """Cancel at the venue every open order for which pred(order) holds (kill switch, cancel on disconnect).

        The client later sees an unsolicited cancel (ExecType 4) on its current ClOrdID.
        """
        outs: list[fm.Message] = []
        with self.lock:
            for order in self.ledger.open_orders():
                if order.pending or not pred(order):
                    continue
                venue_cl = self._next_venue_id()
                ev = schema.Cancel(
                    request=self.ledger.next_request, session=order.session, cl_ord_id=order.cl_ord_id,
                    orig_cl_ord_id="", venue_cl_ord_id=venue_cl, number=order.number, account=order.account,
                    symbol=order.symbol, side=order.side, qty=None, px=None, limits_version=self._limits_version,
                    by="gateway", why=why, ts=time.time_ns())
                self.events.append(ev)
                req = apply_amend(self.ledger, self.risk, ev)
                m = fm.new_message("F")
                for tag, val in ((fm.CL_ORD_ID, venue_cl), (fm.ORIG_CL_ORD_ID, req.venue_orig_cl_ord_id),
                                 (fm.SYMBOL, order.symbol), (fm.SIDE, order.side), (fm.ACCOUNT, order.account),
                                 (fm.ORDER_QTY, fm.fmt_num(order.qty)), (fm.TRANSACT_TIME, fm.utc_timestamp())):
                    m.setField(tag, val)
                if order.order_id:
                    m.setField(fm.ORDER_ID, order.order_id)
                outs.append(m)
        for m in outs:
            if not self._send_venue(m):
                self._not_sent(m.getField(fm.CL_ORD_ID))
        if outs:
            log.warning("gateway cancelled open orders", extra={"count": len(outs), "why": why})
        return len(outs)

    def request_status(self, numbers: list[int]) -> int:
        """OrderStatusRequest (35=H) to the venue for orders still pending new; the answer (ExecType I) is
        routed like any report and settles the order, releasing its exposure if the venue never had it."""
        outs = []
        with self.lock:
            for n in numbers:
                order = self.ledger.orders.get(n)
                if order is None or order.status != PENDING_NEW:
                    continue
                m = fm.new_message("H")
                for tag, val in ((fm.CL_ORD_ID, order.venue_cl_ord_id), (fm.SYMBOL, order.symbol),
                                 (fm.SIDE, order.side), (fm.ACCOUNT, order.account)):
                    m.setField(tag, val)
                if order.order_id:
                    m.setField(fm.ORDER_ID, order.order_id)
                outs.append(m)
        for m in outs:
            self._send_venue(m)
        if outs:
            log.warning("asked the venue for the status of unconfirmed orders", extra={"count": len(outs)})
        return len(outs)

    # ---------------------------------------------------------------- undelivered requests
    def _not_sent(self, venue_cl: str) -> None:
        """A request QuickFIX did not send: its client is answered now (no session mutex is held here)."""
        self.undelivered.append(venue_cl)
        self.drain_undelivered()

    def drain_undelivered(self) -> int:
        """Answer the clients of requests that never reached the venue; returns how many were answered."""
        n = 0
        while self.undelivered:
            venue_cl = self.undelivered.popleft()
            with self.lock:
                req = self.ledger.by_venue.get(venue_cl)
                if req is None or (req.kind == "D" and req.order.status in DONE_STATUSES):
                    continue
                self._answered(venue_cl)
                why = self.untranslatable.pop(venue_cl, None)
                if why is not None:
                    code, detail = "VENUE_VERSION_MISMATCH", f"{why}; not sent"
                else:
                    code, detail = "VENUE_DOWN", "venue session dropped before the request was delivered; not sent"
                self._refusal_event(req, code, detail)
                reply = self._refusal_reply(req, code, detail)
                skey = req.order.session
            if reply is not None:
                self._send_client(reply, skey)
            n += 1
        return n

    # ---------------------------------------------------------------- helpers
    @property
    def _limits_version(self) -> str:
        return self.risk.limits_version if self.risk is not None else ""

    def _next_venue_id(self) -> str:
        self.ledger.next_request += 1
        return f"{self.id_prefix}{self.ledger.next_request}"

    def _record_reject(self, kind: str, o: NewOrder, v: Verdict, orig: str = "", ck: int | None = None,
                       defaulted: bool = False) -> None:
        ev = schema.Rejected(request_kind=kind, session=o.session, cl_ord_id=o.cl_ord_id, orig_cl_ord_id=orig,
                             account=o.account, symbol=o.symbol, side=o.side, qty=_num(o.qty), px=_num(o.price),
                             code=v.code or "", detail=v.detail, value=_num(v.value), limit=_num(v.limit),
                             warnings=v.warnings, limits_version=self._limits_version, check_ns=ck,
                             ts=time.time_ns(), account_defaulted=1 if defaulted else 0)
        self.events.append(ev)
        apply_rejected(self.ledger, ev)

    def _send_venue(self, msg: fm.Message) -> bool:
        sid = self.venue
        if sid is None:
            return False
        if not self.venue_dialect.identity:
            try:
                msg = translate.outbound(msg, self.venue_dialect)
            except translate.Untranslatable as e:
                # Never send the venue a different order than the client's: the client is told it was not sent.
                log.error("request cannot be expressed in the venue's FIX version: not sent",
                          extra={"tag": e.tag, "value": e.value, "reason": str(e)})
                self.untranslatable[fm.get(msg, fm.CL_ORD_ID)] = str(e)
                return False
        return sessions.send(msg, sid)

    def _send_client(self, msg: fm.Message, skey: str) -> None:
        d = self.dialects.get(skey)
        if d is not None and not d.identity:
            try:
                msg = translate.outbound(msg, d)
            except translate.Untranslatable as e:
                log.error("report cannot be expressed in the client's FIX version: kept in the event log only",
                          extra={"session": skey, "tag": e.tag, "value": e.value, "reason": str(e)})
                return
        if self._held:  # empty but around a rollover: no lock on the order path
            with self._held_lock:
                held = self._held.get(skey)
                if held is not None:
                    held.append(msg)
                    return
        self._to_client(msg, skey)

    def _to_client(self, msg: fm.Message, skey: str) -> None:
        sid = self.clients.get(skey) or self.client_sids.get(skey)
        if sid is None:  # not a configured client: there is no store to keep it in either
            log.error("no such client session: report kept in the event log only", extra={"session": skey})
            return
        # A client that is logged out gets it on logon: QuickFIX stores it and the client's resend request fetches it.
        if not sessions.send(msg, sid) and sessions.lookup(sid) is None:
            log.error("client session not found: report kept in the event log only", extra={"session": skey})

    def hold_reports(self, keys: set[str]) -> None:
        """Keep what would go to these client sessions until release_reports (a rollover resets their stores)."""
        with self._held_lock:
            for k in keys:
                self._held.setdefault(k, [])

    def release_reports(self, keys: set[str]) -> int:
        """The rollover is over for these sessions: what was held goes out once each has logged on again
        (now, for those already on; else from housekeeping). Returns how many reports were held."""
        with self._held_lock:
            for k in keys:  # nothing came for it meanwhile: its reports go the usual way (QuickFIX's store) again
                if not self._held.get(k):
                    self._held.pop(k, None)
            waiting = {k for k in keys if k in self._held}
            self._ready |= waiting
            n = sum(len(self._held[k]) for k in waiting)
        self.deliver_held()
        return n

    def deliver_held(self) -> int:
        """Send, in order, the held reports of released sessions that are logged on; returns how many."""
        if not self._ready:
            return 0
        n = 0
        up = self.logged_on
        for k in [k for k in list(self._ready) if k in up]:
            while True:  # sent outside the lock (sendToTarget takes the session's mutex); a report made
                with self._held_lock:  # meanwhile joins the next batch, so none overtakes those that waited
                    batch = self._held.get(k)
                    if not batch:
                        self._held.pop(k, None)
                        self._ready.discard(k)
                        break
                    self._held[k] = []
                for msg in batch:
                    self._to_client(msg, k)
                    n += 1
        return n
