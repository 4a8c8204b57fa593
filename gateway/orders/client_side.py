"""The client side of the order path: a client's NewOrderSingle, OrderCancelReplaceRequest and
OrderCancelRequest are parsed, checked (gateway-owned checks, then the risk engine), recorded and forwarded to
the venue, or answered with a reject. Runs on the client session's QuickFIX thread; part of Router."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from gateway.events import schema
from gateway.fix import messages as fm
from gateway.fix import translate
from gateway.fix.sessions import SessionID, sid_key
from gateway.orders import rejects
from gateway.orders.ledger import REJECTED, Order
from gateway.orders.lifecycle import apply_amend, apply_new
from gateway.orders.requests import ACCEPT, ORD_TYPES, SIDES, NewOrder, Verdict, none_if_nan, poss_dup

log = logging.getLogger("fixgw.router")


class ClientSide:
    """Router's methods for messages from clients (the state they use is Router's)."""

    # ---------------------------------------------------------------- client side
    def from_client(self, msg: fm.Message, sid: SessionID) -> None:
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
        # One SWIG call reads the whole message: each call hands the GIL to any waiting QuickFIX thread.
        f = fm.to_dict(msg)
        msg_type = f[fm.MSG_TYPE]
        if msg_type == "D":
            self._new_order(msg, f, skey)
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

    def _new_order(self, msg: fm.Message, f: dict[int, str], skey: str) -> None:
        account = f.get(fm.ACCOUNT, "")
        defaulted = account == "" and skey in self.default_account
        if defaulted:
            account = self.default_account[skey]
        o = NewOrder(skey, fm.need(f, fm.CL_ORD_ID), account, fm.need(f, fm.SYMBOL), fm.need(f, fm.SIDE),
                     fm.need(f, fm.ORD_TYPE), fm.num(f, fm.ORDER_QTY), fm.num(f, fm.PRICE))
        if f.get(fm.POSS_DUP) == "Y" and self._already_decided(skey, o.cl_ord_id):
            return
        self._tag_order(o, f, msg)
        tif = f.get(fm.TIME_IN_FORCE, "")
        resting: list[Order] = []
        with self.lock:
            t0 = time.perf_counter_ns()
            storm = self._count_message(skey)
            duplicate = self.ledger.is_duplicate(skey, o.cl_ord_id)
            verdict = self._gate_new(o)
            if verdict.code is None:
                if self.risk is not None:
                    verdict, resting = self._guarded_controls(o)
                    if verdict.code is None:
                        verdict = self._guarded(lambda: self.risk.check_new(o, duplicate))  # type: ignore[union-attr]
                elif duplicate:
                    verdict = Verdict("DUPLICATE_CLORDID", f"ClOrdID {o.cl_ord_id} already used in this session")
            ck = time.perf_counter_ns() - t0
            ref = self._reference(o.symbol)
            if verdict.code is not None:
                self._record_reject("D", o, verdict, ck=ck, defaulted=defaulted, ref=ref)
                reply = fm.order_reject(o.cl_ord_id, o.account, o.symbol, o.side, o.qty,
                                        rejects.ord_rej_reason(verdict.code), rejects.text(verdict.code,
                                                                                           verdict.detail))
                order = None
            else:
                venue_cl = self._next_venue_id()
                ev = schema.NewOrder(
                    request=self.ledger.next_request, session=skey, cl_ord_id=o.cl_ord_id, venue_cl_ord_id=venue_cl,
                    number=self.ledger.next_number, account=o.account, symbol=o.symbol, side=o.side,
                    ord_type=o.ord_type, qty=o.qty, px=none_if_nan(o.price), warnings=verdict.warnings,
                    limits_version=self._limits_version, check_ns=ck, ts=time.time_ns(),
                    account_defaulted=1 if defaulted else 0, tif=tif, trader=o.trader, strategy=o.strategy,
                    owner=o.owner, locate=o.locate, ref=ref)
                order = apply_new(self.ledger, self.risk, ev)  # a reservation that fails logs nothing
                self.events.append(ev)
        if storm:
            self._storm_out(skey)
        if order is None:
            self._send_client(reply, skey)
            return
        if resting:  # self-match prevention: the resting orders are cancelled before the new one goes
            numbers = {r.number for r in resting}
            self.cancel_orders(lambda x: x.number in numbers,
                               f"SELF_MATCH: cancelled for new order {o.cl_ord_id} of {o.owner}")
        out = fm.copy_for_forwarding(msg, f)
        out.setField(fm.CL_ORD_ID, order.venue_cl_ord_id)
        if defaulted:
            out.setField(fm.ACCOUNT, o.account)
        if not self._send_venue(out):
            self._not_sent(order.venue_cl_ord_id)

    def _tag_order(self, o: NewOrder, f: dict[int, str], msg: fm.Message) -> None:
        """Who sent the order and under which strategy, its self-match owner and its locate (risk.controls)."""
        c = self.cfg.controls
        if c.trader_party_role is not None:
            o.trader = fm.party_id(msg, c.trader_party_role)
        if not o.trader:
            o.trader = f.get(fm.SENDER_SUB_ID, "")
        if c.strategy_tag is not None:
            o.strategy = f.get(c.strategy_tag, "")
        if c.short_sale.locate_tag is not None:
            o.locate = f.get(c.short_sale.locate_tag, "")
        if self.risk is not None and c.self_match.enabled:
            smp_id = f.get(c.self_match.smp_id_tag, "") if c.self_match.smp_id_tag is not None else ""
            o.owner = self.risk.controls.smp_owner(o.account, smp_id)

    def _reference(self, symbol: str) -> tuple[float | None, str, float | None] | None:
        """The reference price the decision used, its source and age, for its event (never fails a decision)."""
        if self.risk is None:
            return None
        try:
            return self.risk.reference(symbol)
        except Exception:
            log.exception("reference price could not be read for the decision's record")
            return None

    def _guarded_controls(self, o: NewOrder) -> tuple[Verdict, list[Order]]:
        try:
            v, resting = self.risk.check_controls(o, self.ledger)  # type: ignore[union-attr]
        except Exception:
            log.exception("control check failed: request rejected (fail closed)")
            return Verdict("CHECK_ERROR", "a control could not be evaluated"), []
        return (v or ACCEPT), resting

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
        if poss_dup(msg) and self._already_decided(skey, cl):
            return
        with self.lock:
            t0 = time.perf_counter_ns()
            storm = self._count_message(skey)
            order = self.ledger.find(skey, orig)
            verdict = self._gate_amend(order, skey, cl)
            if verdict.code is None:
                assert order is not None
                verdict = (self._gate_qty_price(order.ord_type, qty, price) or
                           self._gate_same_order(msg, order) or ACCEPT)
                if verdict.code is None and self.risk is not None:
                    verdict = self._guarded(
                        lambda: self.risk.check_amend_controls(order, qty, price, self.ledger)  # type: ignore
                        or self.risk.check_replace(order, qty, price, skey))  # type: ignore
            ck = time.perf_counter_ns() - t0
            ref = self._reference(order.symbol) if order is not None else None
            if verdict.code is not None:
                self._record_reject("G", self._amend_fields(msg, skey, cl, order, qty, price), verdict, orig, ck,
                                    ref=ref)
                reply = self._cancel_reject(cl, orig, order, "2", verdict)
                out = None
            else:
                assert order is not None
                reply = None
                out = self._forward_amend(msg, order, "G", cl, orig, qty, price, verdict, ck, ref)
        if storm:
            self._storm_out(skey)
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
        if poss_dup(msg) and self._already_decided(skey, cl):
            return
        with self.lock:
            t0 = time.perf_counter_ns()
            storm = self._count_message(skey)
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
        if storm:
            self._storm_out(skey)
        self._deliver(out, reply, skey)

    def _forward_amend(self, msg: fm.Message, order: Order, kind: str, cl: str, orig: str, qty: float,
                       price: float, verdict: Verdict, ck: int,
                       ref: tuple[float | None, str, float | None] | None = None) -> fm.Message:
        """Record an accepted replace/cancel (under the lock) and build the venue's copy of it."""
        venue_cl = self._next_venue_id()
        ev = (schema.Replace if kind == "G" else schema.Cancel)(
            request=self.ledger.next_request, session=order.session, cl_ord_id=cl, orig_cl_ord_id=orig,
            venue_cl_ord_id=venue_cl, number=order.number, account=order.account, symbol=order.symbol,
            side=order.side, qty=none_if_nan(qty), px=none_if_nan(price), warnings=verdict.warnings,
            limits_version=self._limits_version, check_ns=ck, ts=time.time_ns(), trader=order.trader,
            strategy=order.strategy, ref=ref)
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
            return NewOrder(skey, cl, order.account, order.symbol, order.side, order.ord_type, qty, price,
                            order.trader, order.strategy)
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
