"""Helpers the gateway tests share (conftest.py holds the fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def _toml_value(v: object) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def write_config(cfg: "object", path: Path) -> Path:
    """The gateway configuration as a TOML file (for daemons started as subprocesses)."""
    data = cfg.model_dump(mode="json", exclude_none=True)  # type: ignore[attr-defined]
    lines: list[str] = []

    def table(name: str, body: dict[str, object]) -> None:
        subs = {k: v for k, v in body.items() if isinstance(v, dict)}
        arrays = {k: v for k, v in body.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in body.items() if k not in arrays and k not in subs)
        lines.append("")
        for k, rows in arrays.items():
            for row in rows:  # type: ignore[attr-defined]
                lines.append(f"[[{name}.{k}]]")
                lines.extend(f"{rk} = {_toml_value(rv)}" for rk, rv in row.items())
                lines.append("")
        for k, sub in subs.items():
            table(f"{name}.{k}", sub)  # type: ignore[arg-type]

    for section, body in data.items():
        if isinstance(body, dict):
            table(section, body)
    path.write_text("\n".join(lines))
    return path


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """For state with no event to wait on (QuickFIX's session state, its log files): poll briefly, fail loudly."""
    import time

    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(0.02)
