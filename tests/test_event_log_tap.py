"""The event log's taps: what a projection that runs behind the order path (journal, live surveillance) takes
from the log, in order, across a day's rollover, and how a follower on one drains and stops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.events.batching import Follower
from gateway.events.log import EventLog
from gateway.events.schema import Admin, DayStart


class Recorder(Follower):
    def __init__(self) -> None:
        super().__init__("recorder", 0.005, 3)
        self.batches: list[list[int]] = []

    def _process(self, items: list[Any]) -> None:
        self.batches.append([ev.q for ev in items])


def test_a_tap_takes_what_was_appended_after_it_in_order_rollover_included(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.log")
    log.append(Admin(action="before"))
    tap = log.tap()
    assert tap.start_q == 1 and tap.take() == []
    log.append(Admin(action="a"))
    log.append(Admin(action="b"))
    log.roll([DayStart(prefix="G1-", day="20261204")], tmp_path / "archive" / "d" / "events.log")
    log.append(Admin(action="c"))
    assert [(e.q, getattr(e, "action", "INIT")) for e in tap.take()] == [(2, "a"), (3, "b"), (4, "INIT"), (5, "c")]
    assert tap.take() == [] and tap.logged_q == 5


def test_a_follower_on_a_tap_processes_every_event_once_in_batches_and_drains(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.log")
    log.append(Admin(action="before"))
    rec = Recorder()
    assert rec.follow(log) == 1
    rec._start_thread()
    for n in range(10):
        log.append(Admin(action=f"a{n}"))
    assert rec.drain(timeout=10)
    assert [q for b in rec.batches for q in b] == list(range(2, 12))
    assert max(len(b) for b in rec.batches) <= 3  # the follower's batch limit holds for what a tap delivers
    log.append(Admin(action="last"))
    rec._stop_thread()  # a stop takes what the tap still holds
    assert rec.batches[-1][-1] == 12
    log.append(Admin(action="while stopped"))
    rec._start_thread()  # a restart goes on where the stop left off
    assert rec.drain(timeout=10)
    assert [q for b in rec.batches for q in b] == list(range(2, 14))
    rec._stop_thread()
