"""Plain values shared by the matcher, the store and the reports.

Everything here is immutable so a record can be handed between the QuickFIX thread, the store and the
reconciler without copies or locks.
"""
from __future__ import annotations

import enum
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, Mapping, Union

import simplefix

from gateway.events.schema import FILL_EXEC_TYPES  # one definition for the log and the reconciliation

Source = Literal["gateway", "dropcopy"]
SOURCES: tuple[Source, Source] = ("gateway", "dropcopy")
# Buy-like sides add to the position, sell-like sides subtract. Cross/undisclosed sides carry no direction a
# position could use, so they are refused at parse time rather than silently counted as zero.
BUY_SIDES = frozenset({"1", "3"})
SELL_SIDES = frozenset({"2", "4", "5", "6"})

TAG_NAMES: dict[int, str] = {
    1: "Account", 11: "ClOrdID", 17: "ExecID", 19: "ExecRefID", 31: "LastPx", 32: "LastQty",
    37: "OrderID", 41: "OrigClOrdID", 43: "PossDupFlag", 52: "SendingTime", 54: "Side", 55: "Symbol",
    60: "TransactTime", 75: "TradeDate", 97: "PossResend", 122: "OrigSendingTime", 150: "ExecType",
}

_TS_RE = re.compile(r"^(\d{8})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")
_DATE_RE = re.compile(r"^\d{8}$")


def parse_utc_timestamp(text: str) -> int:
    """FIX UTCTimestamp (YYYYMMDD-HH:MM:SS[.f{1,9}]) to integer ns since the epoch.

    Integer arithmetic on purpose: a float would lose the nanoseconds that order two log lines.
    """
    m = _TS_RE.match(text)
    if m is None:
        raise ValueError(f"not a UTC timestamp: {text!r}")
    day, hh, mm, ss, frac = m.groups()
    midnight = _midnights.get(day)
    h, mi, s = int(hh), int(mm), int(ss)
    if midnight is None or h > 23 or mi > 59 or s > 59:
        try:  # datetime says what is wrong with a date or a time
            dt = datetime(int(day[:4]), int(day[4:6]), int(day[6:]), h, mi, s, tzinfo=timezone.utc)
        except ValueError as exc:
            raise ValueError(f"not a UTC timestamp: {text!r} ({exc})") from None
        midnight = int(dt.timestamp()) - (h * 3600 + mi * 60 + s)
        if len(_midnights) < 1024:  # a few trading days in practice; bounded against odd input
            _midnights[day] = midnight
    return (midnight + h * 3600 + mi * 60 + s) * 1_000_000_000 + int((frac or "").ljust(9, "0") or 0)


_midnights: dict[str, int] = {}  # YYYYMMDD -> its midnight UTC in s since the epoch: every fill of a day has one


def format_ns(ns: int | None) -> str:
    """ISO-8601 UTC with nanoseconds; deterministic (no locale, no float)."""
    if ns is None:
        return ""
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def format_qty(x: float) -> str:
    """Stable text for quantities and prices: integers without '.0', others rounded to 10 places."""
    x = round(x, 10) + 0.0  # + 0.0 turns -0.0 into 0.0
    if x == int(x):
        return str(int(x))
    return f"{x:.10f}".rstrip("0").rstrip(".")


def side_sign(side: str) -> int:
    return 1 if side in BUY_SIDES else -1


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One fill-bearing ExecutionReport (ExecType F, G or H) as seen by one source."""

    source: Source
    exec_id: str
    order_id: str
    cl_ord_id: str
    orig_cl_ord_id: str | None
    account: str
    symbol: str
    side: str
    last_qty: float
    last_px: float
    exec_type: str
    exec_ref_id: str | None
    transact_time: str  # "" when the venue sent none (optional in FIX 4.4); trade_date then came from 52/122
    received_ns: int
    trade_date: str
    # PossDupFlag(43)/PossResend(97): the sender says this may repeat an earlier message, so a repeat of
    # an ExecID with identical economics is a resend, not a duplicate fill.
    poss_dup: bool = False

    def __post_init__(self) -> None:
        # An int qty from a caller would print as "50" here and "50.0" after a store round trip; reports
        # must not depend on where a record came from.
        object.__setattr__(self, "last_qty", float(self.last_qty))
        object.__setattr__(self, "last_px", float(self.last_px))

    @property
    def mirror_key(self) -> str:
        """What names a drop-copy fill mirrored into positions: its trading day and ExecID (an ExecID is unique
        only within a trading day). The day is 8 digits, so the key reads back unambiguously."""
        return f"{self.trade_date}:{self.exec_id}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.exec_id, self.exec_type)

    def same_economics(self, other: FillRecord) -> bool:
        return (self.order_id, self.cl_ord_id, self.account, self.symbol, self.side, self.last_qty,
                self.last_px, self.exec_type, self.exec_ref_id, self.transact_time) == (
                other.order_id, other.cl_ord_id, other.account, other.symbol, other.side, other.last_qty,
                other.last_px, other.exec_type, other.exec_ref_id, other.transact_time)


class BreakType(str, enum.Enum):
    MISSING_FROM_DROPCOPY = "MISSING_FROM_DROPCOPY"
    UNKNOWN_TO_GATEWAY = "UNKNOWN_TO_GATEWAY"
    QTY_MISMATCH = "QTY_MISMATCH"
    PRICE_MISMATCH = "PRICE_MISMATCH"
    SIDE_MISMATCH = "SIDE_MISMATCH"
    DUPLICATE = "DUPLICATE"
    LATE_ARRIVAL = "LATE_ARRIVAL"


class BreakStatus(str, enum.Enum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


@dataclass(frozen=True, slots=True)
class FillView:
    """One side's fields in a break. For mismatches qty/px/side are the effective values after that side's
    corrections and busts; exec_id is then the original trade's ExecID."""

    exec_id: str
    exec_type: str
    order_id: str
    cl_ord_id: str
    side: str
    qty: float
    px: float
    transact_time: str
    received_ns: int

    @classmethod
    def of(cls, rec: FillRecord) -> FillView:
        return cls(rec.exec_id, rec.exec_type, rec.order_id, rec.cl_ord_id, rec.side, rec.last_qty,
                   rec.last_px, rec.transact_time, rec.received_ns)


@dataclass(frozen=True, slots=True)
class Break:
    id: str
    type: BreakType
    status: BreakStatus
    trade_date: str
    exec_id: str
    order_id: str
    cl_ord_id: str
    account: str
    symbol: str
    gateway: FillView | None
    dropcopy: FillView | None
    detected_ns: int
    resolved_ns: int | None
    note: str

    @property
    def is_open(self) -> bool:
        return self.status is BreakStatus.OPEN

    def keys(self) -> dict[str, str]:
        return {"exec_id": self.exec_id, "order_id": self.order_id, "cl_ord_id": self.cl_ord_id,
                "account": self.account, "symbol": self.symbol}


FixInput = Union[simplefix.FixMessage, Mapping[int, Union[bytes, str]]]


def _text(msg: FixInput, tag: int, required: bool) -> str | None:
    raw = msg.get(tag)  # FixMessage.get and Mapping.get agree: value or None
    if raw is None or raw == b"" or raw == "":
        if required:
            raise ValueError(f"missing {_tag_name(tag)}")
        return None
    if isinstance(raw, bytes):
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"invalid {_tag_name(tag)}: not ASCII: {raw!r}") from None
    return str(raw)


def _tag_name(tag: int) -> str:
    return f"tag {tag} ({TAG_NAMES.get(tag, '?')})"


def _number(msg: FixInput, tag: int) -> float:
    text = _text(msg, tag, True)
    try:
        value = float(text)  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(f"invalid tag {tag} ({TAG_NAMES[tag]}): not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"invalid tag {tag} ({TAG_NAMES[tag]}): not finite: {text!r}")
    return value


def _undated_trade_date(msg: FixInput, transact_time: str, arrived_ns: int) -> str:
    """The trading day of a report without TradeDate (75): TransactTime's date, else SendingTime's, else the
    day it arrived. UTC throughout, as FIX timestamps are."""
    if transact_time:
        # Both copies of an execution carry the venue's TransactTime, so both land on the same day.
        return transact_time[:8]
    # A resend (PossDupFlag) carries the time it was re-sent in 52 and the first sending in 122: the
    # execution belongs to the day it was first sent.
    for tag in (122, 52):
        sent = _text(msg, tag, False)
        if sent is not None:
            try:
                parse_utc_timestamp(sent)
            except ValueError as exc:
                raise ValueError(f"invalid tag {tag} ({TAG_NAMES[tag]}): {exc}") from None
            return sent[:8]
    return time.strftime("%Y%m%d", time.gmtime(arrived_ns // 1_000_000_000))


def from_fix(msg: FixInput, source: Source, received_ns: int, arrived_ns: int | None = None) -> FillRecord:
    """Parse a fill-bearing ExecutionReport. Raises ValueError naming the missing or invalid tag.

    received_ns orders the record for the matcher. arrived_ns (default received_ns) is when the message
    reached the gateway, the last resort for dating a report that has neither TransactTime (60), TradeDate
    (75) nor SendingTime (52), e.g. a gateway fill rebuilt from the event log.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    exec_type = _text(msg, 150, True)
    if exec_type not in FILL_EXEC_TYPES:
        raise ValueError(f"invalid tag 150 (ExecType): {exec_type!r} is not a fill (F, G or H)")
    side = _text(msg, 54, True)
    if side not in BUY_SIDES and side not in SELL_SIDES:
        raise ValueError(f"invalid tag 54 (Side): {side!r} has no buy/sell direction")
    qty = _number(msg, 32)
    if qty < 0 or (exec_type == "F" and qty == 0):
        raise ValueError(f"invalid tag 32 (LastQty): {qty!r} for ExecType {exec_type}")
    px = _number(msg, 31)
    exec_ref_id = _text(msg, 19, exec_type in ("G", "H"))
    # TransactTime is optional in FIX 4.4. Without it the record keeps "" (no time is made up for a report
    # to show as the venue's) and the trading day comes from what the report does carry.
    transact_time = _text(msg, 60, False) or ""
    if transact_time:
        try:
            parse_utc_timestamp(transact_time)
        except ValueError as exc:
            raise ValueError(f"invalid tag 60 (TransactTime): {exc}") from None
    trade_date = _text(msg, 75, False)
    if trade_date is None:
        trade_date = _undated_trade_date(msg, transact_time, received_ns if arrived_ns is None else arrived_ns)
    elif not _DATE_RE.match(trade_date):
        raise ValueError(f"invalid tag 75 (TradeDate): {trade_date!r} is not YYYYMMDD")
    poss_dup = _text(msg, 43, False) == "Y" or _text(msg, 97, False) == "Y"
    return FillRecord(
        source=source,
        exec_id=_text(msg, 17, True),  # type: ignore[arg-type]
        order_id=_text(msg, 37, True),  # type: ignore[arg-type]
        cl_ord_id=_text(msg, 11, False) or "",
        orig_cl_ord_id=_text(msg, 41, False),
        account=_text(msg, 1, False) or "",
        symbol=_text(msg, 55, True),  # type: ignore[arg-type]
        side=side,
        last_qty=qty,
        last_px=px,
        exec_type=exec_type,
        exec_ref_id=exec_ref_id,
        transact_time=transact_time,
        received_ns=int(received_ns),
        trade_date=trade_date,
        poss_dup=poss_dup,
    )


@dataclass(frozen=True, slots=True)
class LogProblem:
    """A line of a FIX message log that could not be used; the run goes on without it."""

    path: str
    line_no: int
    reason: str
