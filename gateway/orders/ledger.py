"""The order ledger: every order the gateway forwarded, keyed the way each side knows it.

Clients' ClOrdIDs are unique only within their own session, so the venue never sees them: each request
(new, replace, cancel) gets a venue ClOrdID unique across sessions and restarts, and the ledger maps it back to
(session, client ClOrdID). State changes arrive as events (gateway.events.log) so that live processing and
replay after a restart run exactly the same code.
"""

from __future__ import annotations

import heapq
import math
import sys
from dataclasses import dataclass, field

from risk.controls import crosses

# FIX OrdStatus values the ledger tracks.
PENDING_NEW = "A"
NEW = "0"
PARTIALLY_FILLED = "1"
FILLED = "2"
CANCELED = "4"
REPLACED = "5"
PENDING_CANCEL = "6"
REJECTED = "8"
PENDING_REPLACE = "E"
EXPIRED = "C"
DONE_STATUSES = frozenset({FILLED, CANCELED, REJECTED, EXPIRED})


@dataclass(slots=True)
class Order:
    number: int
    session: str
    account: str
    symbol: str
    side: str
    ord_type: str
    qty: float
    price: float  # NaN for market orders
    cl_ord_id: str  # the client's ClOrdID of the live order version
    venue_cl_ord_id: str
    slot: int = -1  # the risk engine's slot, -1 when risk is off
    order_id: str = ""
    status: str = PENDING_NEW
    cum_qty: float = 0.0
    avg_px: float = 0.0
    pending: str = ""  # venue ClOrdID of an outstanding cancel/replace request
    tif: str = ""  # TimeInForce(59) as the client sent it; "" and "0" are DAY
    trader: str = ""  # who sent it (risk.controls): kill switches and the journal
    strategy: str = ""
    owner: str = ""  # self-match prevention's owner ('' when it is off)

    @property
    def leaves_qty(self) -> float:
        return 0.0 if self.status in DONE_STATUSES else max(self.qty - self.cum_qty, 0.0)

    @property
    def is_open(self) -> bool:
        return self.status not in DONE_STATUSES

    @property
    def is_day(self) -> bool:
        return self.tif in ("", "0")


@dataclass(slots=True)
class Request:
    """One client request the venue knows by `venue_cl_ord_id`."""

    order: Order
    kind: str  # "D" new, "G" replace, "F" cancel
    cl_ord_id: str
    orig_cl_ord_id: str
    venue_cl_ord_id: str
    venue_orig_cl_ord_id: str
    qty: float = 0.0
    price: float = float("nan")


@dataclass
class Ledger:
    by_client: dict[tuple[str, str], Request] = field(default_factory=dict)
    by_venue: dict[str, Request] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    # (order number, ExecID) of the fills, corrections and busts applied (the resend guard). By order: FIX
    # makes an ExecID unique only within a trading day or a multi-day order's life, so a venue may use one
    # of a carried order's ExecIDs again the next day, for another order.
    exec_ids: set[tuple[int, str]] = field(default_factory=set)
    # (order number, ExecID) -> (qty, px, order number): what a bust or correction (of that order) undoes,
    # and which fills a rollover carries
    fills: dict[tuple[int, str], tuple[float, float, int]] = field(default_factory=dict)
    rejected_ids: set[tuple[str, str]] = field(default_factory=set)  # ClOrdIDs the gateway refused
    # ClOrdIDs of the previous trading day, for sessions whose ClOrdIDs must stay unique across the boundary
    prior_ids: set[tuple[str, str]] = field(default_factory=set)
    open: dict[int, Order] = field(default_factory=dict)  # kept as orders move: status must not scan history
    # Self-match prevention: per (owner, symbol, side) a heap of the open orders, the most aggressive first
    # (entries of orders since done or repriced are dropped when they reach the top), so that a new order's
    # check costs the same with ten resting orders as with ten thousand
    smp: dict[tuple[str, str, str], list[tuple[float, int, float]]] = field(default_factory=dict)
    # Short sales (54=5): the open ones by (account, symbol), and what the day's fills of short sales came to
    open_shorts: dict[tuple[str, str], dict[int, Order]] = field(default_factory=dict)
    short_filled: dict[tuple[str, str], float] = field(default_factory=dict)
    next_number: int = 1
    next_request: int = 0  # numbers venue ClOrdIDs; restored from the event log on restart

    def is_duplicate(self, session: str, cl_ord_id: str) -> bool:
        key = (session, cl_ord_id)
        return key in self.by_client or key in self.rejected_ids or key in self.prior_ids

    def find(self, session: str, cl_ord_id: str) -> Order | None:
        req = self.by_client.get((session, cl_ord_id))
        return req.order if req else None

    def add_new(self, session: str, cl: str, venue_cl: str, account: str, symbol: str, side: str,
                ord_type: str, qty: float, price: float, slot: int, tif: str = "", trader: str = "",
                strategy: str = "", owner: str = "") -> Order:
        # Shared, not one copy per order: less memory, and a checkpoint pickles each name once.
        session, account, symbol = sys.intern(session), sys.intern(account), sys.intern(symbol)
        order = Order(self.next_number, session, account, symbol, side, ord_type, qty, price, cl, venue_cl, slot,
                      tif=tif, trader=trader, strategy=strategy, owner=owner)
        self.next_number += 1
        self.orders[order.number] = order
        self.open[order.number] = order
        self.index_open(order)
        req = Request(order, "D", cl, "", venue_cl, "", qty, price)
        self.by_client[(session, cl)] = req
        self.by_venue[venue_cl] = req
        return order

    def add_request(self, order: Order, kind: str, cl: str, orig_cl: str, venue_cl: str,
                    qty: float = 0.0, price: float = float("nan")) -> Request:
        req = Request(order, kind, cl, orig_cl, venue_cl, order.venue_cl_ord_id, qty, price)
        self.by_client[(order.session, cl)] = req
        self.by_venue[venue_cl] = req
        order.pending = venue_cl
        return req

    def set_status(self, order: Order, status: str) -> None:
        was_open = order.number in self.open
        order.status = status
        if status in DONE_STATUSES:
            self.open.pop(order.number, None)
            if order.side == "5":
                self.open_shorts.get((order.account, order.symbol), {}).pop(order.number, None)
        elif not was_open:  # a bust or correction can give a done order leaves again
            self.open[order.number] = order
            self.index_open(order)

    # ---------------------------------------------------------------- the controls' indices (risk.controls)
    def index_open(self, order: Order) -> None:
        """An open order into the self-match book of its owner and, for a short sale, its locate's."""
        if order.owner:
            self.repriced(order)
        if order.side == "5":
            self.open_shorts.setdefault((order.account, order.symbol), {})[order.number] = order

    def repriced(self, order: Order) -> None:
        """An open order's price as it now rests (new, replaced or reopened) into its owner's book."""
        px = order.price
        key = -math.inf if math.isnan(px) else (-px if order.side == "1" else px)  # a market order first
        heapq.heappush(self.smp.setdefault((order.owner, order.symbol, _book_side(order.side)), []),
                       (key, order.number, px))

    def reindex(self) -> None:
        """Rebuild the indices from the open orders (a checkpoint stores the orders only)."""
        self.smp, self.open_shorts = {}, {}
        for o in self.open.values():
            self.index_open(o)

    def crossing(self, owner: str, symbol: str, side: str, price: float) -> list[Order]:
        """The owner's open orders in the symbol that an order of `side` at `price` (NaN: market) would trade
        against: [] at the cost of a look at the best one; all of them only when there are some."""
        heap = self.smp.get((owner, symbol, "2" if side == "1" else "1"))
        if not heap:
            return []
        while heap and not self._rests(heap[0]):
            heapq.heappop(heap)
        if not heap or not crosses(side, price, self.open[heap[0][1]].side, heap[0][2]):
            return []
        out = {e[1]: self.open[e[1]] for e in heap if self._rests(e) and crosses(side, price, "2" if side == "1"
                                                                                   else "1", e[2])}
        return list(out.values())

    def _rests(self, entry: tuple[float, int, float]) -> bool:
        o = self.open.get(entry[1])
        return o is not None and (o.price == entry[2] or (math.isnan(o.price) and math.isnan(entry[2])))

    def short_filled_by(self, order: Order, qty: float) -> None:
        """A fill (negative: a bust) of a short sale: what the day's locates are used by."""
        key = (order.account, order.symbol)
        self.short_filled[key] = max(self.short_filled.get(key, 0.0) + qty, 0.0)

    def short_used(self, account: str, symbol: str) -> float:
        """What the day's short sales use of the locates: their fills, plus the leaves still open."""
        key = (account, symbol)
        return self.short_filled.get(key, 0.0) + sum(o.leaves_qty for o in self.open_shorts.get(key, {}).values())

    def open_orders(self) -> list[Order]:
        return list(self.open.values())


def _book_side(side: str) -> str:
    return "1" if side == "1" else "2"  # sell short rests on the sell side
