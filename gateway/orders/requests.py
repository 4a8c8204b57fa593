"""What the parts of the order path pass between them: a parsed new order, a verdict, a request on its way to
the venue, and what they need from the risk bridge (gateway.orders.risk_stage.RiskStage)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.events import schema
from gateway.fix import messages as fm
from gateway.orders.ledger import Order, Request

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
    trader: str = ""  # who sent it: the trader party, else SenderSubID(50)
    strategy: str = ""  # the configured strategy tag
    owner: str = ""  # self-match prevention's owner ('' when it is off)
    locate: str = ""  # a short sale's locate ID from the client


class RiskChecks(Protocol):
    """What the router needs from risk (gateway.orders.risk_stage.RiskStage implements it)."""

    limits_version: str
    controls: Any  # risk.controls.Controls
    clock: Any

    def check_new(self, o: NewOrder, duplicate: bool) -> Verdict: ...
    def check_controls(self, o: NewOrder, ledger: Any) -> tuple[Verdict | None, list[Order]]: ...
    def check_amend_controls(self, order: Order, qty: float, price: float, ledger: Any) -> Verdict | None: ...
    def reference(self, symbol: str) -> tuple[float | None, str, float | None] | None: ...
    def check_replace(self, order: Order, qty: float, price: float, session: str) -> Verdict: ...
    def count_message(self, session: str) -> None: ...
    def reserve(self, session: str, account: str, symbol: str, side: str, ord_type: str, qty: float,
                price: float) -> int: ...
    def apply(self, order: Order, req: Request, ev: schema.Event) -> None: ...
    def breaker(self, ev: schema.Breaker) -> None: ...
    # the control plane's changes, made through the router (the state's owner)
    fills: dict[tuple[int, str], tuple[float, float, int]]
    def mirror(self, account: str, symbol: str, side: str, qty: float, px: float, sign: int) -> bool: ...
    def apply_admin(self, ev: schema.Admin | schema.Switch) -> None: ...
    def swap_config(self, new_cfg: Any) -> str: ...
    def carry(self, kill: bool, reduce_only: bool) -> list[schema.Event]: ...
    def new_day(self) -> None: ...


def none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else x


def poss_dup(msg: fm.Message) -> bool:
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
