"""Live surveillance: the running gateway's event log followed on a thread of its own, off the order path.

The thread feeds every event to the same Detector that `fixgw surveillance` runs over a day's log, and logs each
alert it raises as an event (schema.Surveillance): the journal keeps it (table `alerts`), metrics count it
(`fixgw_alerts_total{code}`) and the daemon's log carries it with its runbook. At start the thread first reads
the day so far from the log, quietly, so that a restart neither forgets a pattern half-way through nor raises an
alert the log already holds; an alert a crash kept from being logged is logged then.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable, Iterable

from gateway.events import schema
from gateway.events.batching import gather
from gateway.events.surveillance import Alert, Detector

log = logging.getLogger("fixgw.surveillance")
_STOP = object()


def alert_event(a: Alert) -> schema.Surveillance:
    return schema.Surveillance(code=a.code, account=a.account, symbol=a.symbol, detail=a.detail, value=a.value,
                               limit=a.limit, orders=list(a.orders), ts=a.ts)


def _key(code: str, account: str, symbol: str, ts: int, orders: Iterable[str]) -> tuple[object, ...]:
    return code, account, symbol, ts, tuple(orders)


class SurveillanceFeed:
    def __init__(self, detector: Detector, append: Callable[[schema.Event], int],
                 read_today: Callable[[], Iterable[schema.AnyEvent]]) -> None:
        self.detector = detector
        self._append = append
        self._read_today = read_today
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._from_q = 0  # events up to this one are read from the log at start, not taken from the queue
        self._submitted = 0
        self._processed = 0
        self._done = threading.Condition()
        self._caught_up = threading.Event()
        self.raised = 0

    def submit(self, ev: schema.Event) -> None:
        """The event log's subscriber: cheap, on the order path."""
        self._submitted += 1
        self._queue.put(ev)

    def start(self, logged_up_to: int) -> None:
        """Follow the log; events up to `logged_up_to` (the log's sequence number when `submit` was subscribed)
        are read from the file."""
        self._from_q = logged_up_to
        self._thread = threading.Thread(target=self._run, name="surveillance", daemon=True)
        self._thread.start()

    def _catch_up(self) -> None:
        logged: set[tuple[object, ...]] = set()
        found: list[Alert] = []
        for ev in self._read_today():
            if ev.q > self._from_q:
                break
            if isinstance(ev, schema.Surveillance):
                logged.add(_key(ev.code, ev.account, ev.symbol, ev.ts, ev.orders))
            else:
                found += self.detector.on_event(ev)
        missed = [a for a in found if _key(a.code, a.account, a.symbol, a.ts, a.orders) not in logged]
        self._raise(missed)

    def _run(self) -> None:
        try:
            self._catch_up()
        except Exception:
            log.exception("surveillance could not read the day so far; it follows from here")
        self._caught_up.set()
        while True:
            batch = gather(self._queue, self._stopping, 0.05, 4096)
            alerts: list[Alert] = []
            for ev in batch:
                if ev is _STOP or not isinstance(ev, schema.Event) or ev.q <= self._from_q:
                    continue
                try:
                    alerts += self.detector.on_event(ev)  # type: ignore[arg-type]
                except Exception:  # a detector bug must not stop the alerts that follow
                    log.exception("surveillance failed on an event", extra={"q": ev.q})
            self._raise(alerts)
            with self._done:
                self._processed += sum(1 for ev in batch if ev is not _STOP)
                self._done.notify_all()
            if any(ev is _STOP for ev in batch):
                return

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
        target = self._submitted
        if not self._caught_up.wait(timeout):
            return False
        with self._done:
            return self._done.wait_for(lambda: self._processed >= target, timeout)

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None
