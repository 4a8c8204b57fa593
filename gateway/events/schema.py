"""The event log's schema: every kind of event, its fields, and how it is written and read.

The event log is the gateway's source of truth (gateway.events.log): the ledger, the risk state, the journal,
metrics and the reconciliation's gateway side are all rebuilt from it. Each line is one JSON object whose "e"
names its kind; the keys are short because a busy day writes millions of lines. Here each kind is a class
with named fields, and `msgspec.field(name=...)` keeps the key on disk. Fields with a default are left out of
a line when they hold it, and a line written before a field existed reads as the default, so logs written by
earlier versions read unchanged.

Kinds, in the order a day's log has them:

    INIT      DayStart        the day's first event: its label, the venue ClOrdID prefix, counters carried over
    MARK POS CASH SW MIRRORED OPEN IDS   what the previous day handed over (gateway.orders.trading_day)
    N         NewOrder        a NewOrderSingle accepted and sent to the venue
    G F       Replace Cancel  an amend or cancel accepted and sent (F also for the gateway's own cancels)
    DEC       Rejected        a request the gateway refused (never sent)
    X         Execution       an ExecutionReport from the venue, applied and forwarded
    Z         CancelRejected  an OrderCancelReject from the venue
    U         Undelivered     a forwarded request that never took effect (venue reject 35=3/35=j, or never sent)
    ADM       Admin           an operator action (who, why)
    BRK       Breaker         a circuit breaker tripped by the gateway or cleared by an operator (risk.controls)
    HALT      Halt            the venue halted or resumed an instrument (SecurityStatus)
    OVR       Override        a temporary limit override set by an operator, or ended at its expiry
    SRV       Surveillance    a market-abuse pattern found in the day's flow (gateway.events.surveillance)
"""

from __future__ import annotations

from typing import Any, ClassVar, Union

import msgspec
from msgspec import field

FILL_EXEC_TYPES = frozenset({"F", "G", "H"})  # trade, correction, bust: what moves positions


class Event(msgspec.Struct, tag_field="e", kw_only=True, omit_defaults=True):
    kind: ClassVar[str]
    q: int = 0  # the sequence number, set by EventLog.append


# ------------------------------------------------------------------------------------------ the day's head
class DayStart(Event, tag="INIT", kw_only=True):
    kind = "INIT"
    prefix: str
    day: str = ""
    previous: str | None = None
    next_number: int = field(default=0, name="n0")  # order numbers and venue ClOrdIDs go on from these
    request: int = field(default=0, name="r")
    ts: int = 0


class Mark(Event, tag="MARK", kw_only=True):
    kind = "MARK"
    symbol: str = field(name="sym")
    px: float


class Position(Event, tag="POS", kw_only=True):
    kind = "POS"
    account: str = field(name="a")
    symbol: str = field(name="sym")
    qty: float
    avg: float
    src: str = ""  # "file": from the start-of-day positions file


class Cash(Event, tag="CASH", kw_only=True):
    kind = "CASH"
    account: str = field(name="a")
    cash: float
    base: float | None = None  # the equity daily P&L is measured from (None: the cash itself)
    src: str = ""


class Switch(Event, tag="SW", kw_only=True):
    kind = "SW"
    action: str  # "kill on", "reduce_only on", "halt on"
    scope: str  # "global", "account:X", "instrument:Y", "session:S", "trader:T", "strategy:X"


class Mirrored(Event, tag="MIRRORED", kw_only=True):
    kind = "MIRRORED"
    # drop-copy fills already inside the carried positions: "YYYYMMDD:ExecID" (FillRecord.mirror_key); a
    # day handed over before the keys held the trading day lists bare ExecIDs
    exec_ids: list[str] = field(name="x")


class CarriedRequest(msgspec.Struct, omit_defaults=True):
    kind: str = field(name="k")  # D, G or F
    cl_ord_id: str = field(name="cl")
    orig_cl_ord_id: str = field(name="orig")
    venue_cl_ord_id: str = field(name="v")
    venue_orig_cl_ord_id: str = field(name="vorig")
    qty: float | None
    px: float | None


class CarriedOrder(Event, tag="OPEN", kw_only=True):
    kind = "OPEN"
    number: int = field(name="n")
    session: str = field(name="s")
    account: str = field(name="a")
    symbol: str = field(name="sym")
    side: str
    ord_type: str = field(name="t")
    tif: str
    qty: float
    px: float | None
    order_id: str = field(name="oid")
    status: str = field(name="os")
    cum_qty: float = field(name="cum")
    avg_px: float = field(name="avg")
    live: CarriedRequest
    pending: CarriedRequest | None = field(default=None, name="pend")
    fills: list[tuple[str, float, float]] = []  # (ExecID, LastQty, LastPx) of its fills so far
    trader: str = field(default="", name="tr")
    strategy: str = field(default="", name="st")
    owner: str = field(default="", name="own")


class UsedIds(Event, tag="IDS", kw_only=True):
    kind = "IDS"
    session: str = field(name="s")
    ids: list[str]


# ------------------------------------------------------------------------------------------ the order path
class NewOrder(Event, tag="N", kw_only=True):
    kind = "N"
    request: int = field(name="r")
    session: str = field(name="s")
    cl_ord_id: str = field(name="cl")
    venue_cl_ord_id: str = field(name="v")
    number: int = field(name="n")
    account: str = field(name="a")
    symbol: str = field(name="sym")
    side: str
    ord_type: str = field(name="t")
    qty: float
    px: float | None
    warnings: tuple[tuple[str, float | None, float | None], ...] = field(default=(), name="w")
    limits_version: str | None = field(default=None, name="lv")
    check_ns: int | None = field(default=None, name="ck")
    ts: int = 0
    account_defaulted: int = field(default=0, name="da")  # 1: no Account(1), the session's default used
    tif: str = ""
    trader: str = field(default="", name="tr")  # who and which algorithm sent it (risk.controls)
    strategy: str = field(default="", name="st")
    owner: str = field(default="", name="own")  # self-match prevention's owner
    locate: str = field(default="", name="loc")  # a short sale's locate ID, as the client sent it
    # the reference price the checks used: (price, source "market"/"last_fill"/"configured"/"none", age in s)
    ref: tuple[float | None, str, float | None] | None = None


class AmendRequest(Event, kw_only=True):
    request: int = field(name="r")
    session: str = field(name="s")
    cl_ord_id: str = field(name="cl")
    orig_cl_ord_id: str = field(name="orig")
    venue_cl_ord_id: str = field(name="v")
    number: int = field(name="n")
    account: str = field(name="a")
    symbol: str = field(name="sym")
    side: str
    qty: float | None
    px: float | None
    warnings: tuple[tuple[str, float | None, float | None], ...] = field(default=(), name="w")
    limits_version: str | None = field(default=None, name="lv")
    check_ns: int | None = field(default=None, name="ck")
    by: str = ""  # "gateway": the gateway's own cancel (cancel on disconnect, kill switch)
    why: str = ""
    ts: int = 0
    trader: str = field(default="", name="tr")  # the order's, for the journal row
    strategy: str = field(default="", name="st")
    ref: tuple[float | None, str, float | None] | None = None  # a replace's reference price (as NewOrder's)


class Replace(AmendRequest, tag="G", kw_only=True):
    kind = "G"


class Cancel(AmendRequest, tag="F", kw_only=True):
    kind = "F"


class Rejected(Event, tag="DEC", kw_only=True):
    kind = "DEC"
    request_kind: str = field(name="k")  # D, G or F
    session: str = field(name="s")
    cl_ord_id: str = field(name="cl")
    orig_cl_ord_id: str = field(default="", name="orig")
    account: str = field(name="a")
    symbol: str = field(name="sym")
    side: str
    qty: float | None
    px: float | None
    code: str
    detail: str = ""
    value: float | None = field(default=None, name="val")
    limit: float | None = field(default=None, name="lim")
    warnings: tuple[tuple[str, float | None, float | None], ...] = field(default=(), name="w")
    limits_version: str | None = field(default=None, name="lv")
    check_ns: int | None = field(default=None, name="ck")
    ts: int = 0
    account_defaulted: int = field(default=0, name="da")
    trader: str = field(default="", name="tr")
    strategy: str = field(default="", name="st")
    ref: tuple[float | None, str, float | None] | None = None


class Execution(Event, tag="X", kw_only=True):
    kind = "X"
    venue_cl_ord_id: str = field(name="v")
    number: int = field(name="n")
    exec_type: str = field(name="x")
    exec_id: str = field(name="id")
    ord_status: str = field(name="os")
    order_id: str = field(default="", name="oid")
    last_qty: float | None = field(default=None, name="lq")
    last_px: float | None = field(default=None, name="lp")
    cum_qty: float | None = field(default=None, name="cum")
    avg_px: float | None = field(default=None, name="avg")
    exec_ref_id: str = field(default="", name="ref")
    session: str = field(name="s")
    account: str = field(name="a")
    symbol: str = field(name="sym")
    side: str
    cl_ord_id: str = field(name="cl")
    ts: int = 0
    # fills only: what the reconciliation dates the trade by
    transact_time: str = field(default="", name="tt")
    trade_date: str = field(default="", name="td")
    sending_time: str = field(default="", name="st")  # OrigSendingTime(122) of a resend, else SendingTime(52)

    @property
    def is_fill(self) -> bool:
        return self.exec_type in FILL_EXEC_TYPES


class CancelRejected(Event, tag="Z", kw_only=True):
    kind = "Z"
    venue_cl_ord_id: str = field(name="v")
    number: int = field(name="n")
    ord_status: str = field(default="", name="os")
    ts: int = 0


class Undelivered(Event, tag="U", kw_only=True):
    kind = "U"
    venue_cl_ord_id: str = field(name="v")
    number: int = field(name="n")
    request_kind: str = field(name="k")
    code: str = ""
    detail: str = ""
    session: str = field(default="", name="s")
    cl_ord_id: str = field(default="", name="cl")
    orig_cl_ord_id: str = field(default="", name="orig")
    account: str = field(default="", name="a")
    symbol: str = field(default="", name="sym")
    side: str = ""
    ts: int = 0


class Admin(Event, tag="ADM", kw_only=True):
    kind = "ADM"
    action: str
    scope: str = ""
    who: str = ""
    why: str = ""
    detail: Any = None
    ts: int = 0


class Breaker(Event, tag="BRK", kw_only=True):
    """A circuit breaker tripped (by the gateway: who "gateway") or cleared (by an operator, who and why)."""

    kind = "BRK"
    action: str  # "trip" or "clear"
    code: str  # REJECT_STORM, MESSAGE_STORM, REPEATED_EXECUTIONS
    scope: str  # "session:S", "account:A", "strategy:X"
    value: float = field(default=0.0, name="val")
    limit: float = field(default=0.0, name="lim")
    who: str = ""
    why: str = ""
    ts: int = 0


class Halt(Event, tag="HALT", kw_only=True):
    """The venue halted (True) or resumed (False) trading in an instrument (SecurityStatus 35=f)."""

    kind = "HALT"
    symbol: str = field(name="sym")
    halted: bool
    text: str = ""
    ts: int = 0


class Override(Event, tag="OVR", kw_only=True):
    """A temporary limit override set by an operator, or ended (by its expiry: who "gateway")."""

    kind = "OVR"
    action: str  # "set" or "end"
    id: str
    scope: str = ""  # "global", "account:ACC", "instrument:SYM", "sector:NAME"
    limit: str = ""  # e.g. qty_max
    value: float = 0.0
    until: int = 0  # ns
    who: str = ""
    why: str = ""
    ts: int = 0


class Surveillance(Event, tag="SRV", kw_only=True):
    """A surveillance alert: the pattern `code` completed at `ts` (the time of the event that completed it)."""

    kind = "SRV"
    code: str
    account: str = field(name="a")
    symbol: str = field(default="", name="sym")
    detail: str = ""
    value: float = 0.0
    limit: float = 0.0
    orders: list[str] = []
    ts: int = 0


AnyEvent = Union[DayStart, Mark, Position, Cash, Switch, Mirrored, CarriedOrder, UsedIds, NewOrder, Replace,
                 Cancel, Rejected, Execution, CancelRejected, Undelivered, Admin, Breaker, Halt, Override,
                 Surveillance]
CARRIED = (Mark, Position, Cash, Switch, Mirrored, CarriedOrder, UsedIds, Breaker, Halt, Override)  # what may follow INIT at a day's head

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def encode_line(ev: Event) -> bytes:
    """One event as its log line, newline included."""
    return _encoder.encode(ev) + b"\n"  # a quarter cheaper than encode_into a bytearray and copying it out


def decode(line: bytes | str) -> AnyEvent:
    """One log line as its event; raises ValueError (msgspec.DecodeError) for a line that is not one."""
    return _decoder.decode(line)


def to_dict(ev: Event) -> dict[str, Any]:
    """The event as its JSON object on disk (short keys, "e" first): for tools and tests."""
    return msgspec.json.decode(msgspec.json.encode(ev))
