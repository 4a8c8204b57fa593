"""The venue simulator's market-data feed (FIX 4.4): top of book and last trade per symbol, on sessions of their own.

A MarketDataRequest (35=V) is answered per symbol with a MarketDataSnapshotFullRefresh (35=W) and, for
SubscriptionRequestType 1, followed by MarketDataIncrementalRefresh (35=X) messages whenever the quote changes:
a fill on the order session (a trade entry, which also moves the last price), `set_quote()`, or the periodic
re-publication of `interval_s`. A symbol the feed does not know is answered with MarketDataRequestReject (35=Y,
MDReqRejReason 0). Trading halts go out as SecurityStatus (35=f) to every logged-on market-data session, and a
SecurityStatusRequest (35=e) is answered with the symbol's current status.

Choices where a venue is free to choose:

* Known symbols are those of the simulator's `prices` (symbol -> last) and any symbol since quoted by
  `set_quote()` or traded on the venue. `default_price` does not make a symbol known: an order in any symbol still
  fills, but the feed only describes instruments it was told about.
* Initial quotes are derived from the last price: bid = last - 0.01, ask = last + 0.01 (one cent, a tick-ish
  spread). Quote entries carry a size of `QUOTE_SIZE`; a trade from a fill carries the fill's quantity.
* MDUpdateAction: a trade is always New (0); a bid or offer is New the first time it exists and Change (1) after;
  the periodic re-publication sends every entry as Change (1), so that it is never read as a new trade print.
* `pause(True)` stops publication of incrementals only, so that subscribers' prices go stale: requests are still
  answered (snapshot, reject, status) and SecurityStatus still goes out; quotes keep changing underneath, and
  resuming publishes nothing by itself: the next change (or interval tick) does.
* Subscriptions belong to the session: a logout ends them. SubscriptionRequestType 2 ends the subscription
  of that MDReqID (an unknown one is ignored); 1 with an MDReqID still subscribed on the session is rejected
  (MDReqRejReason 1). A request naming known and unknown symbols subscribes the known ones and rejects each
  unknown one. Only entry types 0 (bid), 1 (offer) and 2 (trade) are served; the request's NoMDEntryTypes
  narrows them, and a request for none of them is rejected (MDReqRejReason 8).

Every message is built under the feed's lock and queued in that order; a single thread sends them, so that no
lock is held across a QuickFIX send and subscribers see the snapshot before any incremental that follows it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import quickfix as fix
import quickfix44 as fix44

from gateway.fix import messages as fm

log = logging.getLogger("fixgw.venue_sim.md")

SPREAD = 0.01  # initial bid/ask = last -/+ this
QUOTE_SIZE = 100.0

# Tags (FIX 4.4) of the market-data and security-status messages.
MD_REQ_ID, SUBSCRIPTION_REQUEST_TYPE, MD_REQ_REJ_REASON = 262, 263, 281
MD_ENTRY_TYPE, MD_ENTRY_PX, MD_ENTRY_SIZE, MD_UPDATE_ACTION = 269, 270, 271, 279
SECURITY_STATUS_REQ_ID, UNSOLICITED_INDICATOR, SECURITY_TRADING_STATUS = 324, 325, 326

BID, OFFER, TRADE = "0", "1", "2"
ENTRY_TYPES = (BID, OFFER, TRADE)
NEW, CHANGE = "0", "1"
HALT, RESUME, READY_TO_TRADE = "2", "3", "17"
UNKNOWN_SYMBOL, DUPLICATE_MD_REQ_ID, UNSUPPORTED_MD_ENTRY_TYPE = "0", "1", "8"

Send = Callable[[fix.Message, fix.SessionID], object]
_STOP = object()


@dataclass(slots=True)
class Book:
    """Top of book and last trade of one symbol; None: no such entry yet."""

    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    last_size: float = QUOTE_SIZE

    def entry(self, entry_type: str) -> tuple[float, float] | None:
        """(price, size) of an entry type, or None when the book has no such entry."""
        px = (self.bid, self.ask, self.last)[ENTRY_TYPES.index(entry_type)]
        if px is None:
            return None
        return px, self.last_size if entry_type == TRADE else QUOTE_SIZE


@dataclass(frozen=True, slots=True)
class Subscription:
    sid_key: tuple[str, str]
    sid: fix.SessionID
    req_id: str
    symbols: tuple[str, ...]
    entry_types: tuple[str, ...]


def initial_book(last: float) -> Book:
    return Book(bid=_px(last - SPREAD), ask=_px(last + SPREAD), last=last)


def _px(x: float) -> float:
    # last -/+ 0.01 in binary floating point is 189.98999999999998; a venue quotes 189.99.
    return round(x, 8)


def _key(sid: fix.SessionID) -> tuple[str, str]:
    return sid.getSenderCompID().getValue(), sid.getTargetCompID().getValue()


class MarketDataFeed:
    """The market-data side of a VenueSim: its state, its sessions' requests, and what it publishes."""

    def __init__(self, sessions: Iterable[fix.SessionID], prices: dict[str, float], interval_s: float = 0.0,
                 send: Send | None = None) -> None:
        self._sids = {_key(s): s for s in sessions}
        self._books = {sym: initial_book(px) for sym, px in prices.items()}
        self._interval = interval_s
        self._send = send  # None: fix.Session.sendToTarget, looked up at send time (tests monkeypatch it)
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._halted: dict[str, str] = {}  # symbol -> halt text
        self._paused = False
        self._out: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the sending thread (and the interval ticks); without market-data sessions there is nothing to
        send, and no thread."""
        if self._sids and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="venue-sim-md", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._out.put(_STOP)
            self._thread.join(5)
            self._thread = None

    def owns(self, sid: fix.SessionID) -> bool:
        return _key(sid) in self._sids

    def on_logout(self, sid: fix.SessionID) -> None:
        key = _key(sid)
        with self._lock:
            self._subs = [s for s in self._subs if s.sid_key != key]

    # ---------------------------------------------------------------- requests
    def on_message(self, msg: fix.Message, sid: fix.SessionID) -> None:
        """A message on a market-data session: only MarketDataRequest and SecurityStatusRequest are served."""
        t = msg.getHeader().getField(fm.MSG_TYPE)
        if t == "V":
            self._md_request(msg, sid)
        elif t == "e":
            self._status_request(msg, sid)
        else:
            raise fix.UnsupportedMessageType()

    def _md_request(self, msg: fix.Message, sid: fix.SessionID) -> None:
        req_id, sub_type, symbols, types = _read_request(msg)
        with self._lock:
            if sub_type == "2":
                self._subs = [s for s in self._subs if not (s.sid_key == _key(sid) and s.req_id == req_id)]
                return
            if sub_type == "1" and any(s.sid_key == _key(sid) and s.req_id == req_id for s in self._subs):
                self._queue(_reject(req_id, DUPLICATE_MD_REQ_ID, f"MDReqID {req_id} is already subscribed"), sid)
                return
            served = tuple(t for t in ENTRY_TYPES if not types or t in types)
            if not served:
                self._queue(_reject(req_id, UNSUPPORTED_MD_ENTRY_TYPE, "only bid, offer and trade are served"),
                            sid)
                return
            known = []
            for sym in symbols:
                if sym in self._books:
                    known.append(sym)
                    self._queue(_snapshot(req_id, sym, self._books[sym], served), sid)
                else:
                    self._queue(_reject(req_id, UNKNOWN_SYMBOL, f"unknown symbol {sym}"), sid)
            if sub_type == "1" and known:
                self._subs.append(Subscription(_key(sid), sid, req_id, tuple(known), served))

    def _status_request(self, msg: fix.Message, sid: fix.SessionID) -> None:
        req_id, symbol = msg.getField(SECURITY_STATUS_REQ_ID), fm.get(msg, fm.SYMBOL)
        with self._lock:
            text = self._halted.get(symbol)
            self._queue(_security_status(symbol, HALT if text is not None else READY_TO_TRADE, text or "",
                                         req_id=req_id), sid)

    # ---------------------------------------------------------------- changes
    def set_quote(self, symbol: str, bid: float | None = None, ask: float | None = None,
                  last: float | None = None) -> None:
        """Move the quote; the entries given are published as one incremental per subscription."""
        with self._lock:
            book = self._books.setdefault(symbol, Book())
            changes = []
            for entry_type, px in ((BID, bid), (OFFER, ask), (TRADE, last)):
                if px is None:
                    continue
                changes.append((entry_type, NEW if entry_type == TRADE or book.entry(entry_type) is None
                                else CHANGE))
                if entry_type == BID:
                    book.bid = px
                elif entry_type == OFFER:
                    book.ask = px
                else:
                    book.last, book.last_size = px, QUOTE_SIZE
            self._publish({symbol: changes})

    def on_trade(self, symbol: str, px: float, qty: float) -> None:
        """A fill on the venue: a trade entry at its price and quantity, and the new last price."""
        with self._lock:
            book = self._books.setdefault(symbol, Book())
            book.last, book.last_size = px, qty
            self._publish({symbol: [(TRADE, NEW)]})

    def pause(self, paused: bool) -> None:
        with self._lock:
            self._paused = paused

    def halt(self, symbol: str, text: str = "") -> None:
        with self._lock:
            self._halted[symbol] = text
            self._broadcast_status(symbol, HALT, text)

    def resume(self, symbol: str, text: str = "") -> None:
        with self._lock:
            self._halted.pop(symbol, None)
            self._broadcast_status(symbol, RESUME, text)

    def is_halted(self, symbol: str) -> bool:
        with self._lock:
            return symbol in self._halted

    def tick(self) -> None:
        """Re-publish every subscribed symbol's current entries (the `interval_s` timer calls it)."""
        with self._lock:
            symbols = {sym for s in self._subs for sym in s.symbols}
            self._publish({sym: [(t, CHANGE) for t in ENTRY_TYPES] for sym in symbols})

    # ---------------------------------------------------------------- publication (under the lock)
    def _publish(self, changes: dict[str, list[tuple[str, str]]]) -> None:
        """One incremental per subscription naming any of these symbols, with the entries it subscribed to."""
        if self._paused:
            return
        for sub in self._subs:
            entries = [(sym, t, action) for sym in sub.symbols for t, action in changes.get(sym, ())
                       if t in sub.entry_types]
            msg = _incremental(sub.req_id, self._books, entries)
            if msg is not None:
                self._queue(msg, sub.sid)

    def _broadcast_status(self, symbol: str, status: str, text: str) -> None:
        # To every session: the sending thread drops what is meant for one that is not logged on.
        for sid in self._sids.values():
            self._queue(_security_status(symbol, status, text), sid)

    def _queue(self, msg: fix.Message, sid: fix.SessionID) -> None:
        self._out.put((msg, sid))

    # ---------------------------------------------------------------- the sending thread
    def _run(self) -> None:
        due = time.monotonic() + self._interval if self._interval > 0 else None
        while True:
            try:
                item = self._out.get(timeout=None if due is None else max(0.0, due - time.monotonic()))
            except queue.Empty:
                self._guarded(self.tick)
                due = time.monotonic() + self._interval
                continue
            if item is _STOP:
                return
            msg, sid = item  # type: ignore[misc]
            # A session that went away gets nothing: stored, it would be resent as stale prices on its return.
            if _logged_on(sid):
                self._guarded(lambda: (self._send or fix.Session.sendToTarget)(msg, sid))

    @staticmethod
    def _guarded(fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - one failed send must not end the feed
            log.exception("market data publication failed")


def _logged_on(sid: fix.SessionID) -> bool:
    session = fix.Session.lookupSession(sid)
    return session is not None and session.isLoggedOn()


# -------------------------------------------------------------------- messages
def _read_request(msg: fix.Message) -> tuple[str, str, list[str], set[str]]:
    """MDReqID, SubscriptionRequestType, the symbols and the entry types of a MarketDataRequest.

    In a V, 55 occurs only in NoRelatedSym and 269 only in NoMDEntryTypes, so one walk over the wire form reads
    both groups without their group classes."""
    req_id = sub_type = ""
    symbols: list[str] = []
    types: set[str] = set()
    for part in msg.toString().split("\x01"):
        tag, _, value = part.partition("=")
        if tag == "55":
            symbols.append(value)
        elif tag == "269":
            types.add(value)
        elif tag == "262":
            req_id = value
        elif tag == "263":
            sub_type = value
    return req_id, sub_type, symbols, types


def _fmt_px(px: float) -> str:
    return repr(_px(px))


def _snapshot(req_id: str, symbol: str, book: Book, entry_types: tuple[str, ...]) -> fix.Message:
    m = fm.new_message("W")
    m.setField(MD_REQ_ID, req_id)
    m.setField(fm.SYMBOL, symbol)
    n = 0
    for t in entry_types:
        entry = book.entry(t)
        if entry is None:
            continue
        g = fix44.MarketDataSnapshotFullRefresh.NoMDEntries()
        g.setField(MD_ENTRY_TYPE, t)
        g.setField(MD_ENTRY_PX, _fmt_px(entry[0]))
        g.setField(MD_ENTRY_SIZE, fm.fmt_num(entry[1]))
        m.addGroup(g)
        n += 1
    if n == 0:
        m.setField(268, "0")  # an empty book: NoMDEntries is required
    return m


def _incremental(req_id: str, books: dict[str, Book], entries: list[tuple[str, str, str]]) -> fix.Message | None:
    """An X with one entry per (symbol, entry type, MDUpdateAction) the book has; None when none is left."""
    m = fm.new_message("X")
    m.setField(MD_REQ_ID, req_id)
    n = 0
    for symbol, t, action in entries:
        entry = books[symbol].entry(t)
        if entry is None:
            continue
        g = fix44.MarketDataIncrementalRefresh.NoMDEntries()
        g.setField(MD_UPDATE_ACTION, action)
        g.setField(MD_ENTRY_TYPE, t)
        g.setField(fm.SYMBOL, symbol)
        g.setField(MD_ENTRY_PX, _fmt_px(entry[0]))
        g.setField(MD_ENTRY_SIZE, fm.fmt_num(entry[1]))
        m.addGroup(g)
        n += 1
    return m if n else None


def _reject(req_id: str, reason: str, text: str) -> fix.Message:
    m = fm.new_message("Y")
    m.setField(MD_REQ_ID, req_id)
    m.setField(MD_REQ_REJ_REASON, reason)
    m.setField(fm.TEXT, text)
    return m


def _security_status(symbol: str, status: str, text: str, req_id: str = "") -> fix.Message:
    """SecurityStatus: the answer to a request (with its SecurityStatusReqID) or unsolicited (a halt, a resume)."""
    m = fm.new_message("f")
    if req_id:
        m.setField(SECURITY_STATUS_REQ_ID, req_id)
    m.setField(fm.SYMBOL, symbol)
    m.setField(UNSOLICITED_INDICATOR, "N" if req_id else "Y")
    m.setField(SECURITY_TRADING_STATUS, status)
    m.setField(fm.TRANSACT_TIME, fm.utc_timestamp())
    if text:
        m.setField(fm.TEXT, text)
    return m
