"""Append-only write-ahead log of every state-changing event on the order path.

Each event (a class of gateway.events.schema) is one JSON line written with a single os.write on an O_APPEND descriptor before the gateway acts on
it (before an order is sent, before an execution report is forwarded). Once os.write returns the bytes are in the
kernel's page cache, so a SIGKILL of the daemon loses nothing; `fsync=True` extends that to power loss at the
price of a disk flush per event. On start the log is replayed to rebuild the order ledger and the risk state;
the SQLite audit journal is a queryable mirror fed from the same events, off the order path.

The file holds one trading day. A rollover (`roll`) writes the new day's first events (the snapshot of what
carries over) to `events.log.next`, flushes it, moves the old day's file into the archive and renames the new
one into place: two renames, each atomic, and a start finishes or discards a rollover a crash interrupted.
Sequence numbers continue across days, so the journal's keys stay unique.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Callable, Iterator

from gateway.events.schema import AnyEvent, Event, decode, encode_line

log = logging.getLogger("fixgw.eventlog")


class Tap:
    """A follower's view of the log: what was appended since it last took, in sequence order. The order path
    pays one list append per tap (under the log's lock) rather than a call, a lock and a queue put per
    follower; the follower takes a batch when it wakes."""

    __slots__ = ("_log", "pending", "start_q")

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self.pending: list[Event] = []
        self.start_q = log.seq  # the events up to here were logged before the tap: the file has them

    def take(self) -> list[Event]:
        with self._log._lock:
            items, self.pending = self.pending, []
        return items

    @property
    def logged_q(self) -> int:
        """The sequence number of the last event logged so far."""
        return self._log.seq


class EventLog:
    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self._fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        self._finish_interrupted_roll()
        self._repair_torn_tail()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._lock = threading.Lock()
        self.seq = self._last_seq()
        # Called under the log's lock, in sequence order (what must be current when the event's effect is
        # seen: metrics, the reconciliation's arrival order); projections that run behind take a Tap instead.
        self.subscribers: list[Callable[[Event], None]] = []
        self._taps: list[Tap] = []
        self.failed: OSError | None = None

    @property
    def next_path(self) -> Path:
        return self.path.with_name(self.path.name + ".next")

    def _finish_interrupted_roll(self) -> None:
        """A crash between the two renames of `roll` left the new day complete and the old one archived:
        finish it. A crash before the first rename left the old day in place: the half-written new day goes."""
        nxt = self.next_path
        if not nxt.exists():
            return
        if self.path.exists():
            log.warning("event log: discarding an unfinished rollover; the day it would have closed goes on",
                        extra={"file": str(nxt)})
            nxt.unlink()
        else:
            log.warning("event log: completing a rollover interrupted after the old day was archived",
                        extra={"file": str(nxt)})
            os.replace(nxt, self.path)
            _fsync_dir(self.path.parent)

    def _last_seq(self) -> int:
        """The sequence number of the last event: read backwards from the end, never the whole day."""
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            block = 4096
            while end > 0:
                start = max(0, end - block)
                f.seek(start)
                data = f.read(end - start)
                lines = [ln for ln in data.split(b"\n") if ln.strip()]
                # the first piece may be a partial line unless the block started at the file's beginning
                for ln in reversed(lines if start == 0 else lines[1:]):
                    try:
                        return int(json.loads(ln).get("q", 0))
                    except ValueError:
                        continue
                if start == 0:
                    return 0
                block *= 4
        return 0

    def _repair_torn_tail(self) -> None:
        """A crash can only tear the last line; drop it so the next append starts on a line boundary."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            data = self.path.read_bytes()
            keep = data.rfind(b"\n") + 1
            log.warning("event log %s: dropping a torn last line of %d bytes", self.path, size - keep)
            f.truncate(keep)

    def append(self, event: Event) -> int:
        """Write one event durably (against a process crash); returns its sequence number."""
        with self._lock:
            self.seq += 1
            event.q = self.seq
            try:
                os.write(self._fd, encode_line(event))
                if self._fsync:
                    os.fsync(self._fd)
            except OSError as e:
                # Nothing may be acted on that is not logged: the daemon sees this and exits for a restart.
                self.failed = e
                self.seq -= 1
                raise
            for tap in self._taps:
                tap.pending.append(event)
            for fn in self.subscribers:
                try:
                    fn(event)
                except Exception:  # telemetry must never break the order path
                    log.exception("event subscriber failed")
            return self.seq

    def roll(self, first_events: list[Event], archive_to: Path,
             inside: Callable[[], None] | None = None) -> int:
        """Begin a new day: `first_events` (numbered on from the old day) start the new file and the old file
        moves to `archive_to`. Nothing can be appended in between; `inside`, if given, runs under the log's
        lock after the new file is in place. Returns the sequence number of the last event written."""
        with self._lock:
            seq = self.seq
            lines = []
            for ev in first_events:
                seq += 1
                ev.q = seq
                lines.append(encode_line(ev))
            nxt = self.next_path
            with open(nxt, "wb") as f:  # a buffered file writes all of it or raises (os.write may write part)
                f.write(b"".join(lines))
                f.flush()
                os.fsync(f.fileno())
            os.chmod(nxt, 0o640)
            os.fsync(self._fd)
            archive_to.parent.mkdir(parents=True, exist_ok=True)
            _fsync_dir(archive_to.parent.parent)
            os.replace(self.path, archive_to)
            try:
                # The old day is durable in the archive before the new day takes its name: a power cut can
                # leave the day in one place or the other (a start finishes the roll), never in neither.
                _fsync_dir(archive_to.parent)
                os.replace(nxt, self.path)
                _fsync_dir(self.path.parent)
                os.close(self._fd)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND, 0o640)
            except OSError as e:
                # Appending now would write into the archived day, which no start reads: fail, and let the
                # daemon restart (a start finishes the half-done roll).
                self.failed = e
                raise
            self.seq = seq
            if inside is not None:
                inside()
            for ev in first_events:
                for tap in self._taps:
                    tap.pending.append(ev)
                for fn in self.subscribers:
                    try:
                        fn(ev)
                    except Exception:
                        log.exception("event subscriber failed")
            return seq

    def tap(self) -> Tap:
        """Every event appended from now on, for a follower to take in batches (Follower.follow)."""
        with self._lock:
            t = Tap(self)
            self._taps.append(t)
            return t

    def read_today(self) -> Iterator[AnyEvent]:
        return self.read(self.path)

    @staticmethod
    def read(path: Path) -> Iterator[AnyEvent]:
        """The events of one day's file (the current one, or an archived one)."""
        if not path.exists():
            return
        with open(path, "rb") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield decode(line)
                except ValueError as e:
                    raise ValueError(f"{path}:{line_no}: unreadable event ({e}); refusing to rebuild state") from None

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
