"""Live surveillance: the running gateway's event log followed on a thread of its own, off the order path.

The thread feeds every event to the same Detector that `fixgw surveillance` runs over a day's log, and logs each
alert it raises as an event (schema.Surveillance): the journal keeps it (table `alerts`), metrics count it
(`fixgw_alerts_total{code}`) and the daemon's log carries it with its runbook. At start the thread first reads
the day so far from the log, quietly, so that a restart neither forgets a pattern half-way through nor raises an
alert the log already holds; an alert a crash kept from being logged is logged then.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from gateway.events import schema
from gateway.events.batching import Follower
from gateway.events.log import EventLog
from gateway.events.surveillance import Alert, Detector

log = logging.getLogger("fixgw.surveillance")


def alert_event(a: Alert) -> schema.Surveillance:
    return schema.Surveillance(code=a.code, account=a.account, symbol=a.symbol, detail=a.detail, value=a.value,
                               limit=a.limit, orders=list(a.orders), ts=a.ts)


def _key(code: str, account: str, symbol: str, ts: int, orders: Iterable[str]) -> tuple[object, ...]:
    return code, account, symbol, ts, tuple(orders)


class SurveillanceFeed(Follower):
    def __init__(self, detector: Detector, append: Callable[[schema.Event], int],
                 read_today: Callable[[], Iterable[schema.AnyEvent]]) -> None:
        super().__init__("surveillance", 0.05, 4096)
        self.detector = detector
        self._append = append
        self._read_today = read_today
        self._from_q = 0  # events up to this one are read from the log at start, not taken from the tap
        self.raised = 0

    def follow(self, log: EventLog) -> int:
        self._from_q = super().follow(log)
        return self._from_q

    def start(self) -> None:
        """Read the day so far from the file (events up to the one before `follow`), then the followed ones."""
        self._start_thread()

    def _startup(self) -> None:
        logged: set[tuple[object, ...]] = set()
        found: list[Alert] = []
        for ev in self._read_today():
            if ev.q > self._from_q:
                break
            if isinstance(ev, schema.Surveillance):
                logged.add(_key(ev.code, ev.account, ev.symbol, ev.ts, ev.orders))
            else:
                found += self.detector.on_event(ev)
        self._raise([a for a in found if _key(a.code, a.account, a.symbol, a.ts, a.orders) not in logged])

    def _process(self, items: list[schema.AnyEvent]) -> None:
        alerts: list[Alert] = []
        for ev in items:
            if ev.q <= self._from_q:
                continue  # read from the file at start
            try:
                alerts += self.detector.on_event(ev)
            except Exception:  # a detector bug must not stop the alerts that follow
                log.exception("surveillance failed on an event", extra={"q": ev.q})
        self._raise(alerts)

    def _raise(self, alerts: list[Alert]) -> None:
        for a in alerts:
            try:
                self._append(alert_event(a))
            except OSError:
                log.exception("a surveillance alert could not be logged", extra={"code": a.code})
                continue
            self.raised += 1
            log.warning("surveillance alert %s: %s", a.code, a.detail, extra={
                "code": a.code, "account": a.account, "symbol": a.symbol, "orders": list(a.orders),
                "runbook": f"docs/runbooks/{a.code}.md"})

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the day so far and every event submitted since are looked at (tests use it)."""
        return self.drain(timeout)

    def stop(self) -> None:
        self._stop_thread()
