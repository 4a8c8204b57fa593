"""The order ledger: every order the gateway forwarded, keyed the way each side knows it.

Clients' ClOrdIDs are unique only within their own session, so the venue never sees them: each request
(new, replace, cancel) gets a venue ClOrdID unique across sessions and restarts, and the ledger maps it back to
(session, client ClOrdID). State changes arrive as events (gateway.events.log) so that live processing and
replay after a restart run exactly the same code.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

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
    exec_ids: set[str] = field(default_factory=set)  # fills, corrections and busts applied (resend guard)
    # ExecID -> (qty, px, order number): what a bust or correction undoes, and which fills a rollover carries
    fills: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    rejected_ids: set[tuple[str, str]] = field(default_factory=set)  # ClOrdIDs the gateway refused
    # ClOrdIDs of the previous trading day, for sessions whose ClOrdIDs must stay unique across the boundary
    prior_ids: set[tuple[str, str]] = field(default_factory=set)
    open: dict[int, Order] = field(default_factory=dict)  # kept as orders move: status must not scan history
    # Open orders by (self-match owner, symbol): what a new order could trade against
    open_by_owner: dict[tuple[str, str], dict[int, Order]] = field(default_factory=dict)
    # The day's short sales (54=5) by (account, symbol): what they use of the day's locates
    shorts: dict[tuple[str, str], list[Order]] = field(default_factory=dict)
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
        if owner:
            self.open_by_owner.setdefault((owner, symbol), {})[order.number] = order
        if side == "5":
            self.shorts.setdefault((account, symbol), []).append(order)
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
        order.status = status
        if status in DONE_STATUSES:
            self.open.pop(order.number, None)
            if order.owner:
                book = self.open_by_owner.get((order.owner, order.symbol))
                if book is not None:
                    book.pop(order.number, None)
        else:  # a bust or correction can give a done order leaves again
            self.open[order.number] = order
            if order.owner:
                self.open_by_owner.setdefault((order.owner, order.symbol), {})[order.number] = order

    def reindex(self) -> None:
        """Rebuild the indices from the orders (a checkpoint stores the orders only)."""
        self.open_by_owner = {}
        self.shorts = {}
        for o in self.orders.values():
            if o.owner and o.number in self.open:
                self.open_by_owner.setdefault((o.owner, o.symbol), {})[o.number] = o
            if o.side == "5":
                self.shorts.setdefault((o.account, o.symbol), []).append(o)

    def resting_against(self, owner: str, symbol: str) -> list[Order]:
        """The owner's open orders in the symbol (self-match prevention looks for one the new order crosses)."""
        book = self.open_by_owner.get((owner, symbol))
        return list(book.values()) if book else []

    def short_used(self, account: str, symbol: str) -> float:
        """What the day's short sales use of the locates: filled, plus the leaves still open."""
        return sum(o.cum_qty + o.leaves_qty for o in self.shorts.get((account, symbol), ()))

    def open_orders(self) -> list[Order]:
        return list(self.open.values())
