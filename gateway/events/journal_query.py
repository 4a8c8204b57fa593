"""`fixgw journal`: decisions, fills or operator actions from the audit journal, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gateway.events.journal import ADMIN_COLS, ALERT_COLS, DECISION_COLS, FILL_COLS, open_readonly

TABLES = {"decisions": DECISION_COLS, "fills": FILL_COLS, "admin": ADMIN_COLS, "alerts": ALERT_COLS}
TABLE_VIEW = {
    "decisions": ("time", "kind", "session", "account", "cl_ord_id", "symbol", "side", "qty", "price", "decision",
                  "code", "value", "limit_value", "limits_version", "account_defaulted"),
    "fills": ("time", "account", "cl_ord_id", "symbol", "side", "exec_type", "last_qty", "last_px", "exec_id"),
    "admin": ("time", "action", "scope", "who", "why", "detail"),
    "alerts": ("time", "code", "account", "symbol", "detail", "value", "limit_value", "orders"),
}


def parse_time(text: str) -> int:
    """ISO-8601 (UTC when no offset is given) to nanoseconds since the epoch."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO-8601 time: {text!r} (e.g. 2026-11-28T09:30:00)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    d = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)  # in integers: a float loses the nanoseconds' last digits
    return (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1_000


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def query(path: Path, table: str = "decisions", account: str | None = None, code: str | None = None,
          since: str | None = None, until: str | None = None, limit: int | None = None,
          day: str | None = None) -> list[dict[str, Any]]:
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}: one of {', '.join(TABLES)}")
    where: list[str] = []
    args: list[Any] = []
    if day:
        lo, hi = day_range(path, day)
        where.append("q >= ? AND q < ?")
        args += [lo, hi]
    if account:
        if table == "admin":
            raise ValueError("--account does not apply to admin actions")
        where.append("account = ?")
        args.append(account)
    if code:
        if table not in ("decisions", "alerts"):
            raise ValueError("--code applies to decisions and alerts only")
        where.append("code = ?")
        args.append(code)
    if since:
        where.append("ts >= ?")
        args.append(parse_time(since))
    if until:
        where.append("ts < ?")
        args.append(parse_time(until))
    sql = f"SELECT * FROM {table}" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY q"
    if limit:
        sql += f" LIMIT {int(limit)}"
    db = open_readonly(path)
    try:
        rows = [dict(r) for r in db.execute(sql, args)]
    except sqlite3.Error as e:
        raise ValueError(f"{path}: {e}") from None
    finally:
        db.close()
    for r in rows:
        r["time"] = iso(r["ts"])
    return rows


def day_range(path: Path, day: str) -> tuple[int, int]:
    """The event sequence numbers of a trading day: from its first event to the next day's first."""
    db = open_readonly(path)
    try:
        try:
            starts = list(db.execute("SELECT q, day FROM trading_days ORDER BY q"))
        except sqlite3.Error as e:
            raise ValueError(f"{path}: {e}") from None
    finally:
        db.close()
    for n, (q, d) in enumerate(starts):
        if d == day:
            return int(q), int(starts[n + 1][0]) if n + 1 < len(starts) else 2 ** 62
    known = ", ".join(d for _, d in starts) or "none yet"
    raise ValueError(f"no trading day {day} in the journal (days: {known})")


def render(rows: list[dict[str, Any]], table: str, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=1, default=str)
    if fmt == "csv":
        buf = io.StringIO()
        cols = ("time",) + TABLES[table]
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    cols = TABLE_VIEW[table]
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    lines.append(f"({len(rows)} rows)")
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)
