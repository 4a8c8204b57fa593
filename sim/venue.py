"""A venue simulator on a real QuickFIX acceptor: acks, fills, cancels, replaces and rejects by rules,
and sends a copy of every fill on a separate drop-copy session, as real venues do. Market data (quotes, trades,
trading halts) goes out on market-data sessions of their own: see sim/market_data.py.

At its session end (`session_end`, or `VenueSim.end_of_day()` on cue) it expires the open orders that do not
outlive the session (DAY and the like; GTD on its expiry; GTC never) with an unsolicited ExecutionReport
ExecType=C, and forgets every done order: memory holds the open book and the current session's done orders,
and no more than `done_orders_kept` of those.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import itertools
import logging
import math
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import quickfix as fix
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config.errors import ConfigError
from gateway.fix import messages as fm
from gateway.fix import settings as qs
from gateway.fix.application import App
from sim.market_data import MarketDataFeed

log = logging.getLogger("fixgw.venue_sim")

EXPIRE_DATE, EXPIRE_TIME = 432, 126


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimSession(_Strict):
    sender_comp_id: str = Field(min_length=1)  # the venue's CompID on this session
    target_comp_id: str = Field(min_length=1)  # the gateway's


class Rule(_Strict):
    """First matching rule decides what the venue does with a new order."""

    symbol: str = "*"
    side: Literal["1", "2", "5", "*"] = "*"
    account: str = "*"
    # session_reject: a session-level Reject (35=3) of the NewOrderSingle; business_reject: a
    # BusinessMessageReject (35=j) naming its ClOrdID; silent: no answer at all (a venue that lost it).
    action: Literal["fill", "partial", "ack", "reject", "session_reject", "business_reject", "silent"] = "fill"
    fraction: Annotated[float, Field(gt=0, lt=1)] = 0.5  # for partial
    text: str = "rejected by venue simulator"  # for reject


class DropCopyFault(_Strict):
    """Spoil the drop copy on purpose, so that every reconciliation break can be produced.

    omit: the copy is never sent; qty/price: the copy carries `value` instead; side: buy and sell swapped;
    duplicate: the copy is sent twice; delay: the copy is sent `delay_s` late; phantom: an extra copy of a
    fill for an order the gateway never saw is sent as well.
    """

    kind: Literal["omit", "qty", "price", "side", "duplicate", "delay", "phantom"]
    symbol: str = "*"
    nth: Annotated[int, Field(ge=0)] = 1  # the nth matching fill (from 1); 0 = every matching fill
    value: float = 0.0
    delay_s: Annotated[float, Field(ge=0, le=3600)] = 0.0


class SimConfig(_Strict):
    port: Annotated[int, Field(ge=1, le=65535)]
    dropcopy_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    marketdata_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    state_dir: Path = Path("var/venue-sim")
    heartbeat_s: int = 30
    sessions: list[SimSession] = Field(min_length=1)
    dropcopy: list[SimSession] = Field(default_factory=list)
    # Market-data sessions (sim/market_data.py): quotes start at `prices` (bid/ask = last -/+ 0.01).
    marketdata: list[SimSession] = Field(default_factory=list)
    # > 0: every subscribed symbol's current quote is re-published this often; 0: only when it changes.
    md_interval_s: Annotated[float, Field(ge=0)] = 0.0
    rules: list[Rule] = Field(default_factory=lambda: [Rule()])
    prices: dict[str, float] = Field(default_factory=dict)  # fill price of market orders, per symbol
    default_price: float = 100.0
    dropcopy_faults: list[DropCopyFault] = Field(default_factory=list)
    # TransactTime (60) is optional in FIX 4.4 and some venues leave it out: reproduce such a venue.
    omit_transact_time: bool = False
    # A venue that starts every logon at MsgSeqNum 1 (ResetOnLogon, or an in-memory store).
    reset_on_logon: bool = False
    # False: OrderStatusRequest (35=H) is not supported and is answered with a BusinessMessageReject.
    order_status_requests: bool = True
    # Refuse every cancel and replace: "session" with a Reject (35=3), "business" with a 35=j.
    amend_reject: Literal["", "session", "business"] = ""
    # The venue's session end, "HH:MM" or "HH:MM:SS" UTC: every day at that time the open orders that do not
    # outlive the session expire (ExecType C) and done orders are forgotten. None: only end_of_day() does it.
    session_end: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$")] | None = None
    # Done (filled, cancelled, expired) orders remembered within a session, for busts, corrections and status
    # requests; past this many the oldest are forgotten early, so that memory stays bounded without a session end.
    done_orders_kept: Annotated[int, Field(ge=0)] = 100_000


def load_sim_config(path: str | Path) -> SimConfig:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(str(p), "(file)", str(e)) from None
    try:
        cfg = SimConfig.model_validate(data.get("venue_sim", data))
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(str(p), "venue_sim." + ".".join(str(x) for x in err["loc"]), err["msg"]) from None
    if not cfg.state_dir.is_absolute():
        cfg = cfg.model_copy(update={"state_dir": (p.parent / cfg.state_dir).resolve()})
    return cfg


# OrdStatus of an order that is over: filled, cancelled, rejected, expired.
DONE = frozenset({"2", "4", "8", "C"})
# TimeInForce(59) of orders that outlive the venue's session end: GTC always, GTD until its expiry.
GTC, GTD = "1", "6"


def next_session_end(now: dt.datetime, at_utc: str) -> dt.datetime:
    """The first `at_utc` ("HH:MM" or "HH:MM:SS", UTC) strictly after `now`: today's, or else tomorrow's."""
    t = dt.time.fromisoformat(at_utc)
    due = now.astimezone(dt.timezone.utc).replace(hour=t.hour, minute=t.minute, second=t.second, microsecond=0)
    return due if due > now else due + dt.timedelta(days=1)


def _utc_timestamp(text: str) -> dt.datetime | None:
    """A FIX UTCTimestamp (YYYYMMDD-HH:MM:SS[.sss...]); None when unparsable."""
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            return dt.datetime.strptime(text[:24] if "." in text else text, fmt).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue
    return None


@dataclass(slots=True)
class SimOrder:
    order_id: str
    cl_ord_id: str
    session: fix.SessionID
    account: str
    symbol: str
    side: str
    ord_type: str
    qty: float
    price: float
    cum_qty: float = 0.0
    notional: float = 0.0
    status: str = "0"
    tif: str = ""  # TimeInForce(59) as received; "" and "0" are DAY
    expire_date: str = ""  # ExpireDate(432), YYYYMMDD, for GTD
    expire_time: str = ""  # ExpireTime(126), UTCTimestamp, for GTD

    @property
    def leaves(self) -> float:
        return 0.0 if self.status in DONE else self.qty - self.cum_qty

    def expires_at_session_end(self, now: dt.datetime) -> bool:
        """Whether a session end at `now` (UTC) ends this order: anything but GTC, and GTD once it is due."""
        if self.tif == GTC:
            return False
        if self.tif != GTD:
            return True  # DAY, and the session-bound rest (OPG, IOC, FOK, GTX, at the close)
        if self.expire_time:
            when = _utc_timestamp(self.expire_time)
            return when is None or when <= now
        # By ExpireDate: at the session end of that date (a GTD without either expires like a DAY order).
        return not self.expire_date or self.expire_date <= now.astimezone(dt.timezone.utc).strftime("%Y%m%d")


@dataclass
class VenueSim:
    cfg: SimConfig
    orders: dict[str, SimOrder] = field(default_factory=dict)  # by the venue's current ClOrdID
    fills: list[dict[str, object]] = field(default_factory=list)
    logged_on: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        boot = format(time.time_ns() // 1_000_000, "x").upper()
        self._order_ids = (f"V{boot}-{n}" for n in itertools.count(1))
        self._boot = boot
        self._trade_date: str | None = None  # TradeDate(75) on every report once a day is named
        self._exec_ids = (f"E{boot}-{n}" for n in itertools.count(1))
        self._acceptor: fix.ThreadedSocketAcceptor | None = None
        self._dc_sids = [fix.SessionID("FIX.4.4", s.sender_comp_id, s.target_comp_id) for s in self.cfg.dropcopy]
        self._md = MarketDataFeed([fix.SessionID("FIX.4.4", s.sender_comp_id, s.target_comp_id)
                                   for s in self.cfg.marketdata], self.cfg.prices, self.cfg.md_interval_s)
        self.logon_event = threading.Event()
        self._fault_hits: dict[int, int] = {}
        self._done: dict[str, None] = {}  # current ClOrdIDs of the done orders in `orders`, oldest first
        self._stop_timer = threading.Event()
        self._timer: threading.Thread | None = None

    # ---------------------------------------------------------------- engine
    def start(self) -> None:
        state = self.cfg.state_dir
        sessions = [qs.SessionSpec(s.sender_comp_id, s.target_comp_id, heartbeat_s=self.cfg.heartbeat_s,
                                   reset_on_logon=self.cfg.reset_on_logon) for s in self.cfg.sessions]
        dc_port = self.cfg.dropcopy_port or self.cfg.port
        sessions += [qs.SessionSpec(s.sender_comp_id, s.target_comp_id, heartbeat_s=self.cfg.heartbeat_s,
                                    accept_port=dc_port) for s in self.cfg.dropcopy]
        md_port = self.cfg.marketdata_port or self.cfg.port
        sessions += [qs.SessionSpec(s.sender_comp_id, s.target_comp_id, heartbeat_s=self.cfg.heartbeat_s,
                                    accept_port=md_port) for s in self.cfg.marketdata]
        text = qs.render("acceptor", sessions, state / "store", state / "fixlog", accept_port=self.cfg.port)
        settings = qs.write_settings(state / "quickfix" / "venue-sim.cfg", text)
        self._app = App("venue-sim", self._on_message, self._on_logon, self._on_logout)
        self._acceptor = fix.ThreadedSocketAcceptor(self._app, fix.FileStoreFactory(settings), settings,
                                            fix.FileLogFactory(settings))
        self._acceptor.start()
        self._md.start()
        if self.cfg.session_end and self._timer is None:
            self._stop_timer.clear()
            self._timer = threading.Thread(target=self._session_end_loop, args=(self.cfg.session_end,),
                                           name="venue-sim-session-end", daemon=True)
            self._timer.start()
        log.info("venue simulator listening", extra={"port": self.cfg.port, "dropcopy_port": self.cfg.dropcopy_port})

    def stop(self) -> None:
        if self._timer is not None:
            self._stop_timer.set()
            self._timer.join(5)
            self._timer = None
        self._md.stop()
        if self._acceptor is not None:
            self._app.logout_all()
            self._acceptor.stop()
            self._acceptor = None

    def _on_logon(self, sid: fix.SessionID) -> None:
        self.logged_on.add(sid.getTargetCompID().getValue())
        self.logon_event.set()

    def _on_logout(self, sid: fix.SessionID) -> None:
        self.logged_on.discard(sid.getTargetCompID().getValue())
        self._md.on_logout(sid)  # subscriptions end with their session

    # ---------------------------------------------------------------- behaviour
    def _rule(self, account: str, symbol: str, side: str) -> Rule:
        for r in self.cfg.rules:
            if fnmatch.fnmatchcase(symbol, r.symbol) and r.side in ("*", side) and \
                    fnmatch.fnmatchcase(account, r.account):
                return r
        return Rule()

    def _on_message(self, msg: fix.Message, sid: fix.SessionID) -> None:
        if self._md.owns(sid):
            self._md.on_message(msg, sid)  # V and e only; the order book's lock is not needed
            return
        if sid.getSenderCompID().getValue() not in {s.sender_comp_id for s in self.cfg.sessions}:
            raise fix.UnsupportedMessageType()  # nothing is accepted on the drop-copy session
        t = msg.getHeader().getField(fm.MSG_TYPE)
        with self.lock:
            if t == "D":
                self._new(msg, sid)
            elif t == "F":
                self._cancel(msg, sid)
            elif t == "G":
                self._replace(msg, sid)
            elif t == "H" and self.cfg.order_status_requests:
                self._status(msg, sid)
            else:
                raise fix.UnsupportedMessageType()

    def _new(self, msg: fix.Message, sid: fix.SessionID) -> None:
        cl = msg.getField(fm.CL_ORD_ID)
        o = SimOrder(next(self._order_ids), cl, sid, fm.get(msg, fm.ACCOUNT), msg.getField(fm.SYMBOL),
                     msg.getField(fm.SIDE), msg.getField(fm.ORD_TYPE), fm.get_float(msg, fm.ORDER_QTY),
                     fm.get_float(msg, fm.PRICE), tif=fm.get(msg, fm.TIME_IN_FORCE),
                     expire_date=fm.get(msg, EXPIRE_DATE), expire_time=fm.get(msg, EXPIRE_TIME))
        if self._md.is_halted(o.symbol):
            o.status = "8"
            self._report(o, "8", text="venue: trading halt", rej_reason=2)  # OrdRejReason 2: exchange closed
            return
        rule = self._rule(o.account, o.symbol, o.side)
        if rule.action == "session_reject":
            raise fix.IncorrectTagValue(fm.SYMBOL)  # QuickFIX answers 35=3, RefSeqNum = this message's
        if rule.action == "business_reject":
            self._business_reject(msg, sid, cl, rule.text)
            return
        if rule.action == "silent":
            return
        if rule.action == "reject" or cl in self.orders:
            o.status = "8"
            self._report(o, "8", text=rule.text if rule.action == "reject" else "duplicate ClOrdID")
            return
        self.orders[cl] = o
        self._report(o, "0")
        if rule.action == "fill":
            self._fill(o, o.qty)
        elif rule.action == "partial":
            self._fill(o, math.floor(o.qty * rule.fraction) or 1.0)

    def _business_reject(self, msg: fix.Message, sid: fix.SessionID, cl: str, text: str) -> None:
        m = fm.new_message("j")
        for tag, val in ((fm.REF_SEQ_NUM, msg.getHeader().getField(fm.MSG_SEQ_NUM)),
                         (fm.REF_MSG_TYPE, msg.getHeader().getField(fm.MSG_TYPE)),
                         (fm.BUSINESS_REJECT_REF_ID, cl), (fm.BUSINESS_REJECT_REASON, "4"), (fm.TEXT, text)):
            m.setField(tag, val)
        fix.Session.sendToTarget(m, sid)

    def _fill(self, o: SimOrder, qty: float) -> None:
        px = o.price if o.ord_type == "2" else self.cfg.prices.get(o.symbol, self.cfg.default_price)
        o.cum_qty += qty
        o.notional += qty * px
        o.status = "2" if o.cum_qty >= o.qty else "1"
        er = self._report(o, "F", last_qty=qty, last_px=px)
        self._md.on_trade(o.symbol, px, qty)
        self.fills.append({"exec_id": er.getField(fm.EXEC_ID), "cl_ord_id": o.cl_ord_id, "order_id": o.order_id,
                           "qty": qty, "px": px, "side": o.side, "symbol": o.symbol, "account": o.account})
        self._drop_copy(er, o)
        self._settle(o)

    def _drop_copy(self, er: fix.Message, o: SimOrder) -> None:
        faults = []
        for n, f in enumerate(self.cfg.dropcopy_faults):
            if fnmatch.fnmatchcase(o.symbol, f.symbol):
                self._fault_hits[n] = self._fault_hits.get(n, 0) + 1
                if f.nth in (0, self._fault_hits[n]):
                    faults.append(f)
        copies = [fix.Message(er)]
        delay = 0.0
        for f in faults:
            if f.kind == "omit":
                copies = []
            elif f.kind == "qty":
                copies[0].setField(fm.LAST_QTY, fm.fmt_num(f.value))
            elif f.kind == "price":
                copies[0].setField(fm.LAST_PX, repr(f.value))
            elif f.kind == "side":
                copies[0].setField(fm.SIDE, "2" if o.side == "1" else "1")
            elif f.kind == "duplicate":
                copies.append(fix.Message(copies[0]))
            elif f.kind == "delay":
                delay = f.delay_s
            elif f.kind == "phantom":
                copies.append(self._phantom(er))
        for dc in self._dc_sids:
            for c in copies:
                if delay:
                    threading.Timer(delay, fix.Session.sendToTarget, (fix.Message(c), dc)).start()
                else:
                    fix.Session.sendToTarget(fix.Message(c), dc)

    def _phantom(self, er: fix.Message) -> fix.Message:
        """A fill of an order that never passed the gateway: same instrument, new IDs."""
        m = fix.Message(er)
        m.setField(fm.EXEC_ID, next(self._exec_ids))
        m.setField(fm.ORDER_ID, next(self._order_ids))
        m.setField(fm.CL_ORD_ID, "BYPASS-" + m.getField(fm.EXEC_ID))
        self.fills.append({"exec_id": m.getField(fm.EXEC_ID), "cl_ord_id": m.getField(fm.CL_ORD_ID),
                           "order_id": m.getField(fm.ORDER_ID), "qty": float(m.getField(fm.LAST_QTY)),
                           "px": float(m.getField(fm.LAST_PX)), "side": m.getField(fm.SIDE),
                           "symbol": m.getField(fm.SYMBOL), "account": fm.get(m, fm.ACCOUNT), "phantom": True})
        return m

    def _refuse_amend(self, msg: fix.Message, sid: fix.SessionID) -> bool:
        if self.cfg.amend_reject == "session":
            raise fix.IncorrectTagValue(fm.ORIG_CL_ORD_ID)
        if self.cfg.amend_reject == "business":
            self._business_reject(msg, sid, msg.getField(fm.CL_ORD_ID), "amendments not accepted")
            return True
        return False

    def _cancel(self, msg: fix.Message, sid: fix.SessionID) -> None:
        if self._refuse_amend(msg, sid):
            return
        cl, orig = msg.getField(fm.CL_ORD_ID), msg.getField(fm.ORIG_CL_ORD_ID)
        o = self.orders.get(orig)
        if o is None or o.leaves <= 0:
            self._cancel_reject(sid, cl, orig, o, "1", 1 if o is None else 0)
            return
        del self.orders[orig]
        o.cl_ord_id, o.status = cl, "4"
        self.orders[cl] = o
        self._report(o, "4", orig=orig)
        self._settle(o)

    def _replace(self, msg: fix.Message, sid: fix.SessionID) -> None:
        if self._refuse_amend(msg, sid):
            return
        cl, orig = msg.getField(fm.CL_ORD_ID), msg.getField(fm.ORIG_CL_ORD_ID)
        o = self.orders.get(orig)
        qty, px = fm.get_float(msg, fm.ORDER_QTY), fm.get_float(msg, fm.PRICE)
        if o is None or o.leaves <= 0 or qty <= o.cum_qty:
            self._cancel_reject(sid, cl, orig, o, "2", 1 if o is None else 0)
            return
        del self.orders[orig]
        o.cl_ord_id, o.qty = cl, qty
        if not math.isnan(px):
            o.price = px
        if msg.isSetField(fm.TIME_IN_FORCE):  # a replace that names a TimeInForce changes it; else it stands
            o.tif = msg.getField(fm.TIME_IN_FORCE)
            o.expire_date, o.expire_time = fm.get(msg, EXPIRE_DATE), fm.get(msg, EXPIRE_TIME)
        o.status = "1" if o.cum_qty > 0 else "0"
        self.orders[cl] = o
        self._report(o, "5", orig=orig)

    def _status(self, msg: fix.Message, sid: fix.SessionID) -> None:
        cl = msg.getField(fm.CL_ORD_ID)
        o = self.orders.get(cl)
        if o is None:  # FIX 4.4: an unknown order is answered ExecType I, OrdStatus 8, OrdRejReason 5
            o = SimOrder("NONE", cl, sid, fm.get(msg, fm.ACCOUNT), msg.getField(fm.SYMBOL), msg.getField(fm.SIDE),
                         "2", 0.0, math.nan, status="8")
            self._report(o, "I", text="unknown order", rej_reason=5)
            return
        self._report(o, "I")

    def number_exec_ids_afresh(self, trade_date: str | None = None) -> None:
        """Start ExecIDs at 1 again, as a venue does whose ExecIDs are unique only within a trading day (FIX
        allows it) when its new day begins; `trade_date` (YYYYMMDD), if given, is sent as TradeDate(75) on
        every report from now on."""
        with self.lock:
            self._exec_ids = (f"E{self._boot}-{n}" for n in itertools.count(1))
            if trade_date is not None:
                self._trade_date = trade_date

    def fill_open(self, cl_ord_id: str, qty: float | None = None) -> None:
        """Fill a resting order now (tests and the demo use it to make fills happen on cue)."""
        with self.lock:
            o = self.orders[cl_ord_id]
            self._fill(o, o.leaves if qty is None else qty)

    # ---------------------------------------------------------------- market data (sim/market_data.py)
    def set_quote(self, symbol: str, bid: float | None = None, ask: float | None = None,
                  last: float | None = None) -> None:
        """Move a symbol's quote; subscribers get the entries given as an incremental refresh."""
        self._md.set_quote(symbol, bid, ask, last)

    def pause_market_data(self, paused: bool) -> None:
        """Stop (True) or restart (False) publishing incrementals; requests are still answered."""
        self._md.pause(paused)

    def halt(self, symbol: str, text: str = "") -> None:
        """Trading halt: SecurityStatus 326=2 to the market-data sessions; new orders in it are rejected."""
        self._md.halt(symbol, text)

    def resume(self, symbol: str, text: str = "") -> None:
        """End of a halt: SecurityStatus 326=3, and orders in the symbol are accepted again."""
        self._md.resume(symbol, text)

    def bust(self, exec_id: str) -> None:
        """Trade cancel (ExecType H) of an earlier fill, on the order session and the drop copy."""
        self._amend_trade(exec_id, "H", None, None)

    def correct(self, exec_id: str, qty: float, px: float) -> None:
        """Trade correction (ExecType G): the fill becomes qty @ px."""
        self._amend_trade(exec_id, "G", qty, px)

    def _amend_trade(self, exec_id: str, exec_type: str, qty: float | None, px: float | None) -> None:
        with self.lock:
            fill = next((f for f in self.fills if f["exec_id"] == exec_id), None)
            o = None if fill is None else next((o for o in self.orders.values() if o.order_id == fill["order_id"]),
                                               None)
            if fill is None or o is None:  # never made, or its order is done and forgotten (a past session)
                raise KeyError(f"no fill {exec_id} of an order the venue still knows")
            old_qty, old_px = float(fill["qty"]), float(fill["px"])  # type: ignore[arg-type]
            new_qty, new_px = (0.0, old_px) if exec_type == "H" else (float(qty or 0), float(px or 0))
            o.cum_qty += new_qty - old_qty
            o.notional += new_qty * new_px - old_qty * old_px
            o.status = "2" if o.cum_qty >= o.qty else ("1" if o.cum_qty > 0 else "0")
            fill.update(qty=new_qty, px=new_px)
            er = self._report(o, exec_type, last_qty=new_qty if exec_type == "G" else old_qty,
                              last_px=new_px, ref=exec_id)
            self._drop_copy(er, o)
            self._settle(o)

    def cancel_unsolicited(self, cl_ord_id: str) -> None:
        with self.lock:
            o = self.orders[cl_ord_id]
            o.status = "4"
            self._report(o, "4")
            self._settle(o)

    # ---------------------------------------------------------------- session end and memory
    def end_of_day(self, now: dt.datetime | None = None) -> int:
        """The venue's session end, now: expire every open order that does not outlive the session (ExecType C,
        OrdStatus C, LeavesQty 0, to the order's session), then forget every done order and its fills.

        GTC orders stay open; a GTD order expires once its ExpireTime has passed or at the session end of its
        ExpireDate. `now` (UTC) stands in for the clock. Returns how many orders expired.
        """
        now = now or dt.datetime.now(dt.timezone.utc)
        with self.lock:
            expired = 0
            for o in list(self.orders.values()):
                if o.status not in DONE and o.expires_at_session_end(now):
                    o.status = "C"
                    self._report(o, "C")
                    expired += 1
            self._forget([cl for cl, o in self.orders.items() if o.status in DONE])
        log.info("venue session end", extra={"expired": expired, "open": len(self.orders)})
        return expired

    def _session_end_loop(self, at_utc: str) -> None:
        due = next_session_end(dt.datetime.now(dt.timezone.utc), at_utc)
        while not self._stop_timer.is_set():
            left = (due - dt.datetime.now(dt.timezone.utc)).total_seconds()
            if left > 0:
                self._stop_timer.wait(min(left, 60.0))  # re-read the clock at least every minute
                continue
            try:
                self.end_of_day(due)
            except Exception:  # noqa: BLE001 - the timer must survive a failed session end
                log.exception("venue session end failed")
            due = next_session_end(max(due, dt.datetime.now(dt.timezone.utc)), at_utc)

    def _settle(self, o: SimOrder) -> None:
        """Keep `_done` in step with `o` (a bust can reopen a filled order); forget the oldest done orders once
        there are more than `done_orders_kept`, half of them at a time so that the fills list is rebuilt
        rarely."""
        if o.status in DONE:
            self._done[o.cl_ord_id] = None
            keep = self.cfg.done_orders_kept
            if len(self._done) > keep:
                self._forget(list(itertools.islice(self._done, len(self._done) - keep // 2)))
        else:
            self._done.pop(o.cl_ord_id, None)

    def _forget(self, cl_ord_ids: list[str]) -> None:
        """Drop these (done) orders and their fills, and the drop copy's phantom fills: from then on a status
        request or cancel for one is answered as for an unknown order, and busting one of its fills fails."""
        gone = set()
        for cl in cl_ord_ids:
            self._done.pop(cl, None)
            o = self.orders.pop(cl, None)
            if o is not None:
                gone.add(o.order_id)
        if gone or any(f.get("phantom") for f in self.fills):
            self.fills[:] = [f for f in self.fills if f["order_id"] not in gone and not f.get("phantom")]

    def _report(self, o: SimOrder, exec_type: str, last_qty: float = 0.0, last_px: float = 0.0,
                orig: str = "", text: str = "", rej_reason: int = 99, ref: str = "") -> fix.Message:
        m = fm.new_message("8")
        avg = o.notional / o.cum_qty if o.cum_qty else 0.0
        for tag, val in ((fm.ORDER_ID, o.order_id), (fm.EXEC_ID, next(self._exec_ids)), (fm.EXEC_TYPE, exec_type),
                         (fm.ORD_STATUS, o.status), (fm.CL_ORD_ID, o.cl_ord_id), (fm.SYMBOL, o.symbol),
                         (fm.SIDE, o.side), (fm.ORDER_QTY, fm.fmt_num(o.qty)), (fm.ORD_TYPE, o.ord_type),
                         (fm.LEAVES_QTY, fm.fmt_num(o.leaves)), (fm.CUM_QTY, fm.fmt_num(o.cum_qty)),
                         (fm.AVG_PX, repr(avg)), (fm.TRANSACT_TIME, fm.utc_timestamp())):
            if tag == fm.TRANSACT_TIME and self.cfg.omit_transact_time:
                continue
            m.setField(tag, val)
        if o.account:
            m.setField(fm.ACCOUNT, o.account)
        if o.ord_type == "2" and not math.isnan(o.price):
            m.setField(fm.PRICE, repr(o.price))
        if exec_type in ("F", "G", "H"):
            m.setField(fm.LAST_QTY, fm.fmt_num(last_qty))
            m.setField(fm.LAST_PX, repr(last_px))
        if ref:
            m.setField(fm.EXEC_REF_ID, ref)
        if self._trade_date:
            m.setField(fm.TRADE_DATE, self._trade_date)
        if orig:
            m.setField(fm.ORIG_CL_ORD_ID, orig)
        if o.status == "8":
            m.setField(fm.ORD_REJ_REASON, str(rej_reason))
        if text:
            m.setField(fm.TEXT, text)
        fix.Session.sendToTarget(m, o.session)
        return m

    def _cancel_reject(self, sid: fix.SessionID, cl: str, orig: str, o: SimOrder | None, response_to: str,
                       reason: int) -> None:
        status = o.status if o is not None else "8"
        text = "unknown order" if o is None else "too late to cancel or replace"
        fix.Session.sendToTarget(fm.cancel_reject(cl, orig, o.order_id if o else "", status, response_to, reason,
                                                  text), sid)
