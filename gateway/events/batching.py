"""Projections that follow the event log off the order path, in batches on a thread of their own: the journal
and the live surveillance take the log's events from a Tap; the reconciliation feed, which also takes the
drop copy's fills, from a queue."""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.events.log import EventLog, Tap

log = logging.getLogger("fixgw.events")
_STOP = object()


def gather(q: queue.SimpleQueue[Any], stopping: threading.Event, wait_s: float, limit: int) -> list[Any]:
    """The next item (waiting for it), then whatever else arrives within `wait_s`, up to `limit` items.
    Waking once per batch keeps a projection's thread from competing with the order path's threads for the
    GIL; `stopping` cuts the wait short so a stop drains at once."""
    batch = [q.get()]
    if not stopping.is_set():
        stopping.wait(wait_s)
    while len(batch) < limit:
        try:
            batch.append(q.get_nowait())
        except queue.Empty:
            break
    return batch


class Follower:
    """Either `follow(log)` (the log's events, taken from a Tap every `wait_s`) or `_put` (queues an item; the
    thread wakes for the first and gathers `wait_s`); the thread runs `_startup` once, then `_process` on each
    batch, one transaction and one GIL hand-off per batch, not per item."""

    def __init__(self, name: str, wait_s: float, limit: int) -> None:
        self._name, self._wait_s, self._limit = name, wait_s, limit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._cond = threading.Condition()
        self._submitted = 0
        self._processed = 0
        self._tap: Tap | None = None
        self._done_q = 0  # following a log: the last event processed
        self.ready = threading.Event()  # the start-up job has run: live items follow

    def follow(self, log: EventLog) -> int:
        """Take every event the log appends from now on; returns the sequence number of the last one before."""
        self._tap = log.tap()
        self._done_q = self._tap.start_q
        return self._done_q

    def _put(self, item: Any) -> None:
        with self._cond:
            self._submitted += 1
        self._queue.put(item)

    def _start_thread(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _startup(self) -> None:
        """Runs first on the thread; items queue behind it meanwhile."""

    def _process(self, items: list[Any]) -> None:
        raise NotImplementedError

    def _counted(self, items: list[Any]) -> None:
        """Under the lock, after a batch: what the waiters of a subclass wait for."""

    def _run(self) -> None:
        try:
            self._startup()
        except Exception:
            log.exception("start-up job failed; following from here", extra={"follower": self._name})
        self.ready.set()
        if self._tap is not None:
            self._run_tap(self._tap)
            return
        while True:
            batch = gather(self._queue, self._stopping, self._wait_s, self._limit)  # stop() sets _stopping first
            items = [it for it in batch if it is not _STOP]
            self._process(items)
            with self._cond:
                self._processed += len(items)
                self._counted(items)
                self._cond.notify_all()
            if len(items) < len(batch):
                return

    def _run_tap(self, tap: Tap) -> None:
        # Polled, not woken: a wake-up per event is what the tap saves the order path.
        while True:
            stopping = self._stopping.wait(self._wait_s)
            items = tap.take()
            for i in range(0, len(items), self._limit):
                chunk = items[i:i + self._limit]
                try:
                    self._process(chunk)
                except Exception:
                    log.exception("follower failed on a batch", extra={"follower": self._name})
                with self._cond:
                    self._processed += len(chunk)
                    self._done_q = chunk[-1].q
                    self._counted(chunk)
                    self._cond.notify_all()
            if stopping:  # the tap stays: a restarted follower goes on from here, nothing missed
                return

    def drain(self, timeout: float = 10.0, ready_timeout: float | None = None) -> bool:
        """Wait until the start-up job and every item queued (or event logged) so far are done (tests, status,
        shutdown)."""
        if self._thread is not None and not self.ready.wait(timeout if ready_timeout is None else ready_timeout):
            return False
        with self._cond:
            if self._tap is not None:
                target = self._tap.logged_q
                return self._cond.wait_for(lambda: self._done_q >= target, timeout)
            target = self._submitted
            return self._cond.wait_for(lambda: self._processed >= target, timeout)

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            if self._tap is None:
                self._queue.put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None
