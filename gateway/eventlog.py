"""Append-only write-ahead log of every state-changing event on the order path.

Each event is one JSON line written with a single os.write on an O_APPEND descriptor before the gateway acts on
it (before an order is sent, before an execution report is forwarded). Once os.write returns the bytes are in the
kernel's page cache, so a SIGKILL of the daemon loses nothing; `fsync=True` extends that to power loss at the
price of a disk flush per event. On start the log is replayed to rebuild the order ledger and the risk state;
the SQLite audit journal is a queryable mirror fed from the same events, off the order path.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger("fixgw.eventlog")

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class EventLog:
    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self._fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_torn_tail()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._lock = threading.Lock()
        with open(path, "rb") as f:  # sequence numbers are line numbers: count lines, parse nothing
            self.seq = sum(1 for line in f if line.strip())
        # Called under the log's lock, in sequence order: the journal queue and metrics feed on this.
        self.subscribers: list[Callable[[dict[str, Any]], None]] = []
        self.failed: OSError | None = None

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

    def append(self, event: dict[str, Any]) -> int:
        """Write one event durably (against a process crash); returns its sequence number."""
        with self._lock:
            self.seq += 1
            event["q"] = self.seq
            try:
                os.write(self._fd, (_dumps(event) + "\n").encode())
                if self._fsync:
                    os.fsync(self._fd)
            except OSError as e:
                # Nothing may be acted on that is not logged: the daemon sees this and exits for a restart.
                self.failed = e
                self.seq -= 1
                raise
            for fn in self.subscribers:
                try:
                    fn(event)
                except Exception:  # telemetry must never break the order path
                    log.exception("event subscriber failed")
            return self.seq

    def replay(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError as e:
                    raise ValueError(f"{self.path}:{line_no}: unreadable event ({e}); refusing to rebuild state") from None

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
