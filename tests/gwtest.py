"""Helpers the gateway tests share (conftest.py holds the fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def write_config(cfg: "object", path: Path) -> Path:
    """The gateway configuration as a TOML file (for daemons started as subprocesses)."""
    from config.settings import dump_config

    path.write_text(dump_config(cfg))  # type: ignore[arg-type]
    return path


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """For state with no event to wait on (QuickFIX's session state, its log files): poll briefly, fail loudly."""
    import time

    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(0.02)
