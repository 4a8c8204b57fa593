"""Feeds the live reconciliation from one thread: the gateway's own fills and the drop copy's, in arrival order.

One consumer thread keeps the matcher's receive stamps in order (ReconService stamps under its lock as it
consumes), keeps SQLite writes off the order path and off the drop-copy session's thread, and is the one
place where an unknown drop-copy fill is mirrored into the risk state.

Without a drop-copy session there is nothing to reconcile against: every gateway fill would only age into a
MISSING_FROM_DROPCOPY break. ReconFeed(..., enabled=False) then takes nothing in, so no break is opened.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable

from gateway.events.schema import Event as LogEvent
from gateway.events.batching import Follower
from gateway.events.schema import FILL_EXEC_TYPES, Execution
from gateway.recon import ReconService, UnknownFill, UnknownFillCovered
from gateway.recon.events import Event
from gateway.recon.model import FillRecord, from_fix

if TYPE_CHECKING:
    from config.settings import GatewayConfig

log = logging.getLogger("fixgw.recon")

REBUILD_WAIT_S = 300.0  # a reconciliation rebuilding a very busy day after a restart
# Fills gather for up to this long and are stored in one transaction: one commit and one wake-up of this
# thread per batch rather than per fill, so it takes the GIL from the order path's threads far less often.
# Breaks only open after the grace period (seconds), so the delay changes no outcome.
BATCH_S = 0.02
BATCH_MAX = 1024
Mirror = Callable[[FillRecord, int], None]  # a drop-copy fill, +1 to mirror it, -1 to take it back


def reconciliation_off_reason(cfg: GatewayConfig) -> str | None:
    """Why this configuration has no live reconciliation, or None when a drop-copy session is configured."""
    d = cfg.dropcopy
    if d is None:
        return "no [dropcopy] session is configured"
    if not d.enabled:
        return "the [dropcopy] session is disabled (enabled = false)"
    return None


def fill_tags(ev: Execution) -> dict[int, str]:
    """The FIX tags of a gateway fill, rebuilt from its event-log entry (the venue ClOrdID is what the
    drop copy carries, so it is the one compared). The router logs TransactTime, TradeDate and, where it
    does, the report's (original) SendingTime; a report without all three is dated from the event's "ts"
    (see ReconFeed)."""
    tags: dict[int, object] = {17: ev.exec_id, 37: ev.order_id, 11: ev.venue_cl_ord_id, 1: ev.account,
                               55: ev.symbol, 54: ev.side, 150: ev.exec_type, 60: ev.transact_time}
    if ev.last_qty is not None:
        tags[32] = repr(float(ev.last_qty))
    if ev.last_px is not None:
        tags[31] = repr(float(ev.last_px))
    if ev.exec_ref_id:
        tags[19] = ev.exec_ref_id
    if ev.trade_date:
        tags[75] = ev.trade_date
    if ev.sending_time:
        tags[52] = ev.sending_time
    return {k: str(v) for k, v in tags.items()}


class ReconFeed(Follower):
    def __init__(self, service: ReconService, mirror: Mirror, on_events: Callable[[list[Event]], None],
                 enabled: bool = True) -> None:
        super().__init__("recon", BATCH_S, BATCH_MAX)
        self.service = service
        self.enabled = enabled
        self._mirror = mirror
        self._on_events = on_events
        # Set once the start-up job (the restart's rebuild) has run on this thread, before any live record.
        self.rebuilt = self.ready
        self._startup_job: Callable[[], None] | None = None
        self.seen = {"gateway": 0, "dropcopy": 0}  # fills matched so far, by source
        if not enabled:
            log.warning("reconciliation is off: no drop-copy session, so fills are not reconciled and no "
                        "breaks are opened")

    def on_event(self, ev: LogEvent) -> None:
        """Event-log subscriber: the gateway's own fills, corrections and busts."""
        if self.enabled and isinstance(ev, Execution) and ev.is_fill:
            self._put(("gateway", fill_tags(ev), arrived_ns(ev)))

    def on_dropcopy(self, tags: dict[int, str]) -> None:
        """A drop-copy ExecutionReport as {tag: value}, header included (52 SendingTime dates a fill
        without TransactTime)."""
        if self.enabled and tags.get(150) in FILL_EXEC_TYPES:
            self._put(("dropcopy", tags, time.time_ns()))

    def catch_up(self, fills: list[Execution]) -> int:
        """Gateway fills in the event log that the store never got (a crash in between): feed them now.

        Mirrors are not moved here: they are not in the event log, so after a restart the caller mirrors
        exactly what is still unknown once this catch-up is done (ReconService.unknown_fills()).
        """
        n = 0
        if not self.enabled:
            return n
        for ev in fills:
            rec = gateway_record(ev)
            if rec is None or not self.service.store.has_fill(rec):  # one it refuses is logged as such
                self._handle(self.service.on_gateway_message(fill_tags(ev), arrived_ns(ev)), mirror=False)
                n += 1
        return n

    def start(self, startup: Callable[[], None] | None = None) -> None:
        """Start the thread; `startup` runs on it first (live records queue behind it meanwhile)."""
        if not self.enabled:
            self.rebuilt.set()
            return
        self._startup_job = startup
        self._start_thread()

    def _startup(self) -> None:
        if self._startup_job is not None:
            t0 = time.monotonic()
            try:
                self._startup_job()
                log.info("reconciliation rebuilt", extra={"seconds": round(time.monotonic() - t0, 3)})
            except Exception:
                log.exception("reconciliation could not rebuild its state after the start")

    def _counted(self, work: list[tuple[str, dict[int, str], int | None]]) -> None:
        for source, _tags, _arrived in work:
            self.seen[source] += 1

    def _process(self, work: list[tuple[str, dict[int, str], int | None]]) -> None:
        """Store and match a batch in one transaction; mirror what it found only once it is committed, so a
        mirror never rests on a fill the store could lose."""
        found: list[list[Event]] = []
        try:
            with self.service.store.batch():
                for source, tags, arrived in work:
                    try:
                        if source == "gateway":
                            found.append(self.service.on_gateway_message(tags, arrived))
                        else:
                            found.append(self.service.on_dropcopy_message(tags, arrived))
                    except Exception:
                        log.exception("reconciliation failed on a fill",
                                      extra={"source": source, "exec_id": tags.get(17)})
        except Exception:
            # The batch is not stored: its gateway fills are caught up from the event log at the next start.
            log.exception("reconciliation could not store a batch of fills", extra={"fills": len(work)})
            return
        for events in found:
            try:
                self._handle(events)
            except Exception:
                log.exception("reconciliation could not apply what it found")

    def tick(self) -> None:
        # Off: a store left from days with a drop copy could still age its records into breaks. Before the
        # rebuild: nothing to age yet, and the rebuild holds the service's lock.
        if not self.enabled or not self.rebuilt.is_set():
            return
        self._handle(self.service.tick())

    def _handle(self, events: list[Event], mirror: bool = True) -> None:
        for e in events:
            if not mirror:
                continue
            if isinstance(e, UnknownFill):
                r = e.rec
                self._mirror(r, +1)
            elif isinstance(e, UnknownFillCovered):
                r = e.mirrored
                self._mirror(r, -1)
        if events:
            self._on_events(events)

    def wait_rebuilt(self, timeout: float = REBUILD_WAIT_S) -> bool:
        """Wait for the start's rebuild (at once True when the thread never started: nothing to wait for)."""
        return self._thread is None or self.rebuilt.wait(timeout)

    def drain(self, timeout: float = 10.0, ready_timeout: float | None = None) -> bool:
        """Wait until the start's rebuild is done and everything submitted so far has been matched."""
        return super().drain(timeout, max(timeout, REBUILD_WAIT_S) if ready_timeout is None else ready_timeout)

    def wait_seen(self, source: str, count: int, timeout: float = 10.0) -> bool:
        """Block until `count` fills from `source` have been matched (tests, and the demo's summary)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.seen[source] >= count, timeout)

    def stop(self) -> None:
        self._stop_thread()


def gateway_record(ev: Execution) -> FillRecord | None:
    """The reconciliation's record of a gateway fill in the event log (its trading day as the live feed
    dates it), or None for one the reconciliation refuses (`recon_unusable_fill`): it is never stored."""
    try:
        return from_fix(fill_tags(ev), "gateway", time.time_ns(), arrived_ns(ev))
    except ValueError:
        return None


def arrived_ns(ev: Execution) -> int | None:
    """The event's receive stamp (int ns): a crash replay must date a fill by when it came, not by now."""
    return ev.ts or None
