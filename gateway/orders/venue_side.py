"""The venue side of the order path: execution reports and cancel rejects routed back to the client that asked,
the venue's session-level and business rejects, requests the venue never answered or never received, and
the gateway's own cancels and status requests. Runs on the venue session's QuickFIX thread (and
housekeeping); part of Router."""

from __future__ import annotations

import logging
import time
from typing import Any

from gateway.events import schema
from gateway.fix import messages as fm
from gateway.fix import translate
from gateway.fix.sessions import SessionID
from gateway.orders import rejects
from gateway.orders.ledger import DONE_STATUSES, PENDING_NEW, Request
from gateway.orders.lifecycle import apply_amend, apply_report
from gateway.orders.requests import VENUE_REQUESTS, Sent, Verdict, none_if_nan

log = logging.getLogger("fixgw.router")


class VenueSide:
    """Router's methods for the venue (the state they use is Router's)."""

    # ---------------------------------------------------------------- venue side
    def from_venue(self, msg: fm.Message, sid: SessionID) -> None:
        if not self.venue_dialect.identity:
            try:
                msg = translate.inbound(msg, self.venue_dialect)
            except translate.Untranslatable as e:
                # The report cannot be read as FIX 4.4 says it: the venue hears so, as FIX asks, and it is logged.
                log.error("venue message cannot be expressed in FIX 4.4: session reject",
                          extra={"tag": e.tag, "value": e.value, "reason": str(e),
                                 "fix": msg.toString().replace("\x01", "|")})
                raise fm.IncorrectTagValue(e.tag) from None
        f = fm.to_dict(msg)  # one SWIG call for the whole report (each call is a GIL hand-off)
        msg_type = f[fm.MSG_TYPE]
        if msg_type == "8":
            self._execution_report(msg, f)
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
        # Field by field: parsing the whole outgoing message measured no cheaper than these four reads.
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

    def _execution_report(self, msg: fm.Message, f: dict[int, str]) -> None:
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
            if exec_type in schema.FILL_EXEC_TYPES and (order.number, exec_id) in self.ledger.exec_ids:
                # Already applied: a venue resend after a crash window. Whether the client got it before the
                # crash is unknown, so it goes again flagged PossResend; clients de-duplicate on ExecID.
                log.info("execution report already applied: forwarded again as PossResend",
                         extra={"exec_id": exec_id})
                out = self._client_copy(msg, req, f)
                out.getHeader().setField(fm.POSS_RESEND, "Y")
            else:
                ev = schema.Execution(
                    venue_cl_ord_id=venue_cl, number=order.number, exec_type=exec_type, exec_id=exec_id,
                    ord_status=fm.need(f, fm.ORD_STATUS), order_id=f.get(fm.ORDER_ID, ""),
                    last_qty=none_if_nan(fm.num(f, fm.LAST_QTY)), last_px=none_if_nan(fm.num(f, fm.LAST_PX)),
                    cum_qty=none_if_nan(fm.num(f, fm.CUM_QTY)), avg_px=none_if_nan(fm.num(f, fm.AVG_PX)),
                    exec_ref_id=f.get(fm.EXEC_REF_ID, ""), session=skey, account=order.account,
                    symbol=order.symbol, side=order.side, cl_ord_id=req.cl_ord_id, ts=time.time_ns())
                if ev.is_fill:  # what reconciliation needs to date the trade
                    ev.transact_time = f.get(fm.TRANSACT_TIME, "")
                    ev.trade_date = f.get(fm.TRADE_DATE, "")
                    # a resend's 52 is when it was re-sent; 122 when it was first sent
                    ev.sending_time = f.get(fm.ORIG_SENDING_TIME) or f.get(fm.SENDING_TIME, "")
                self.events.append(ev)
                apply_report(self.ledger, self.risk, req, ev)
                if exec_type == "F" and self.risk is not None:
                    t = self.risk.controls.on_fill(order.account, order.strategy, order.symbol, order.side,
                                                   self.risk.clock())
                    if t is not None:
                        self._trip(t)  # type: ignore[attr-defined]
                out = self._client_copy(msg, req, f)
        self._send_client(out, skey)

    @staticmethod
    def _client_copy(msg: fm.Message, req: Request, f: dict[int, str]) -> fm.Message:
        """The venue's report as the client must see it: its own ClOrdID and OrigClOrdID (`f`: its fields)."""
        out = fm.copy_for_forwarding(msg, f)
        out.setField(fm.CL_ORD_ID, req.cl_ord_id)
        if req.orig_cl_ord_id:
            out.setField(fm.ORIG_CL_ORD_ID, req.orig_cl_ord_id)
        elif fm.ORIG_CL_ORD_ID in f:
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
                    by="gateway", why=why, ts=time.time_ns(), trader=order.trader, strategy=order.strategy)
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
