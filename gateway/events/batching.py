"""Gathering a projection's queue into batches: one transaction and one GIL hand-off per batch, not per item."""

from __future__ import annotations

import queue
import threading
from typing import Any


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
