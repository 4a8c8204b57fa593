"""What the Reconciler tells its caller. Every state change that the caller must persist, log, count or
mirror into risk state is one of these; nothing else leaves the matcher."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from gateway.recon.model import Break, FillRecord


@dataclass(frozen=True, slots=True)
class BreakOpened:
    """A new break. LATE_ARRIVAL breaks are born RESOLVED: they record that a match happened late."""

    brk: Break


@dataclass(frozen=True, slots=True)
class BreakResolved:
    brk: Break


@dataclass(frozen=True, slots=True)
class UnknownFill:
    """A drop-copy execution the gateway did not see within the grace period: mirror it into positions.

    order_known=False: no gateway fill of that OrderID/ClOrdID either, the order bypassed the gateway
    (alert DROPCOPY_UNKNOWN_FILL). order_known=True: the gateway missed an execution of its own order.
    Mirror keyed by rec.mirror_key (trading day and ExecID) so a later UnknownFillCovered can take it out again.
    """

    rec: FillRecord
    order_known: bool
    break_id: str


@dataclass(frozen=True, slots=True)
class UnknownFillCovered:
    """The gateway's own copy of a previously mirrored drop-copy execution arrived late: remove the mirror
    of `mirrored` (the gateway's own fill handler has counted `gateway_rec`)."""

    mirrored: FillRecord
    gateway_rec: FillRecord


Event = Union[BreakOpened, BreakResolved, UnknownFill, UnknownFillCovered]
