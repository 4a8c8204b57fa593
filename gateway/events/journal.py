"""The audit journal: every decision, fill and operator action, in SQLite (WAL), for compliance queries.

It is a projection of the event log, written by its own thread from a Tap of the log (gateway.events.log) so
that the order path only pays for a list append. Rows are keyed by the event's sequence number, so catching up
from the event log after a crash (events written, rows not yet) inserts exactly what is missing, and a clean
stop writes what the tap holds.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable

from gateway.events.batching import Follower
from gateway.events.schema import (Admin, Breaker, Cancel, DayStart, Event, Execution, Halt, NewOrder, Override,
                                   Rejected, Replace, Surveillance, Undelivered)

log = logging.getLogger("fixgw.journal")

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    q INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, session TEXT, account TEXT,
    cl_ord_id TEXT, orig_cl_ord_id TEXT, symbol TEXT, side TEXT, qty REAL, price REAL,
    decision TEXT NOT NULL, code TEXT, value REAL, limit_value REAL, warnings TEXT, limits_version TEXT,
    detail TEXT, venue_cl_ord_id TEXT, check_ns INTEGER, account_defaulted INTEGER, trader TEXT, strategy TEXT,
    ref_price REAL, ref_source TEXT, ref_age_s REAL
);
CREATE INDEX IF NOT EXISTS decisions_account_ts ON decisions (account, ts);
CREATE INDEX IF NOT EXISTS decisions_code_ts ON decisions (code, ts);
CREATE TABLE IF NOT EXISTS fills (
    q INTEGER PRIMARY KEY, ts INTEGER NOT NULL, session TEXT, account TEXT, cl_ord_id TEXT,
    venue_cl_ord_id TEXT, symbol TEXT, side TEXT, exec_id TEXT, exec_type TEXT, exec_ref_id TEXT,
    last_qty REAL, last_px REAL, order_id TEXT
);
CREATE INDEX IF NOT EXISTS fills_account_ts ON fills (account, ts);
CREATE TABLE IF NOT EXISTS trading_days (
    q INTEGER PRIMARY KEY, ts INTEGER NOT NULL, day TEXT NOT NULL, previous_day TEXT
);
CREATE TABLE IF NOT EXISTS alerts (
    q INTEGER PRIMARY KEY, ts INTEGER NOT NULL, code TEXT NOT NULL, account TEXT, symbol TEXT, detail TEXT,
    value REAL, limit_value REAL, orders TEXT
);
CREATE TABLE IF NOT EXISTS admin (
    q INTEGER PRIMARY KEY, ts INTEGER NOT NULL, action TEXT NOT NULL, scope TEXT, who TEXT, why TEXT,
    detail TEXT
);
"""

DECISION_COLS = ("q", "ts", "kind", "session", "account", "cl_ord_id", "orig_cl_ord_id", "symbol", "side", "qty",
                 "price", "decision", "code", "value", "limit_value", "warnings", "limits_version", "detail",
                 "venue_cl_ord_id", "check_ns", "account_defaulted", "trader", "strategy", "ref_price", "ref_source",
                 "ref_age_s")
# Columns added after the first release: a journal written before them gets them on open.
LATER_DECISION_COLS = {"account_defaulted": "INTEGER", "trader": "TEXT", "strategy": "TEXT", "ref_price": "REAL",
                       "ref_source": "TEXT", "ref_age_s": "REAL"}
FILL_COLS = ("q", "ts", "session", "account", "cl_ord_id", "venue_cl_ord_id", "symbol", "side", "exec_id",
             "exec_type", "exec_ref_id", "last_qty", "last_px", "order_id")
ADMIN_COLS = ("q", "ts", "action", "scope", "who", "why", "detail")
DAY_COLS = ("q", "ts", "day", "previous_day")
ALERT_COLS = ("q", "ts", "code", "account", "symbol", "detail", "value", "limit_value", "orders")
BATCH_S = 0.02


_NO_REF = (None, None, None)


def _who_and_ref(ev: NewOrder | Rejected | Replace | Cancel) -> tuple[Any, ...]:
    ref = getattr(ev, "ref", None) or _NO_REF
    return (getattr(ev, "trader", "") or None, getattr(ev, "strategy", "") or None, *ref)


def project(ev: Event) -> tuple[str, tuple[Any, ...]] | None:
    """The journal row of an event, or None for events the journal does not keep."""
    if isinstance(ev, (NewOrder, Replace, Cancel)):
        w = ev.warnings
        first = w[0] if w else (None, None, None)
        orig = "" if isinstance(ev, NewOrder) else ev.orig_cl_ord_id
        decision = "gateway-cancel" if getattr(ev, "by", "") == "gateway" else ("warn" if w else "accept")
        return "decisions", (ev.q, ev.ts, "D" if isinstance(ev, NewOrder) else ev.kind, ev.session, ev.account,
                             ev.cl_ord_id, orig, ev.symbol, ev.side, ev.qty, ev.px, decision, first[0], first[1],
                             first[2], json.dumps(w) if w else None, ev.limits_version, getattr(ev, "why", "") or None,
                             ev.venue_cl_ord_id, ev.check_ns, getattr(ev, "account_defaulted", 0), *_who_and_ref(ev))
    if isinstance(ev, Rejected):
        return "decisions", (ev.q, ev.ts, ev.request_kind, ev.session, ev.account, ev.cl_ord_id, ev.orig_cl_ord_id,
                             ev.symbol, ev.side, ev.qty, ev.px, "reject", ev.code, ev.value, ev.limit,
                             json.dumps(ev.warnings) if ev.warnings else None, ev.limits_version, ev.detail,
                             None, ev.check_ns, ev.account_defaulted, *_who_and_ref(ev))
    if isinstance(ev, Undelivered) and ev.code:
        # A forwarded request that never took effect: refused by the venue, or never delivered to it.
        code = ev.code
        return "decisions", (ev.q, ev.ts, ev.request_kind, ev.session, ev.account, ev.cl_ord_id,
                             ev.orig_cl_ord_id, ev.symbol, ev.side, None, None,
                             "venue-reject" if code.startswith("VENUE_") and code != "VENUE_DOWN" else "undelivered",
                             code, None, None, None, None, ev.detail, ev.venue_cl_ord_id, None, None, None, None,
                             None, None, None)
    if isinstance(ev, Execution) and ev.is_fill:
        return "fills", (ev.q, ev.ts, ev.session, ev.account, ev.cl_ord_id, ev.venue_cl_ord_id, ev.symbol,
                         ev.side, ev.exec_id, ev.exec_type, ev.exec_ref_id, ev.last_qty, ev.last_px, ev.order_id)
    if isinstance(ev, DayStart) and ev.day:  # where each trading day begins: `fixgw journal --date` reads it
        return "trading_days", (ev.q, ev.ts, ev.day, ev.previous)
    if isinstance(ev, Admin):
        return "admin", (ev.q, ev.ts, ev.action, ev.scope, ev.who, ev.why,
                         json.dumps(ev.detail) if ev.detail is not None else None)
    if isinstance(ev, Breaker):
        return "admin", (ev.q, ev.ts, f"breaker {ev.action}", ev.scope, ev.who, ev.why,
                         json.dumps({"code": ev.code, "value": ev.value, "limit": ev.limit}))
    if isinstance(ev, Override):
        return "admin", (ev.q, ev.ts, f"override {ev.action}", ev.scope, ev.who, ev.why,
                         json.dumps({"id": ev.id, "limit": ev.limit, "value": ev.value, "until": ev.until}))
    if isinstance(ev, Surveillance):
        return "alerts", (ev.q, ev.ts, ev.code, ev.account, ev.symbol or None, ev.detail, ev.value, ev.limit,
                          " ".join(ev.orders) or None)
    if isinstance(ev, Halt):
        return "admin", (ev.q, ev.ts, "halt on" if ev.halted else "halt off", f"instrument:{ev.symbol}", "venue",
                         ev.text, None)
    return None


_INSERT = {
    "decisions": f"INSERT OR IGNORE INTO decisions ({','.join(DECISION_COLS)}) VALUES ({','.join('?' * len(DECISION_COLS))})",
    "fills": f"INSERT OR IGNORE INTO fills ({','.join(FILL_COLS)}) VALUES ({','.join('?' * len(FILL_COLS))})",
    "admin": f"INSERT OR IGNORE INTO admin ({','.join(ADMIN_COLS)}) VALUES ({','.join('?' * len(ADMIN_COLS))})",
    "alerts": f"INSERT OR IGNORE INTO alerts ({','.join(ALERT_COLS)}) VALUES ({','.join('?' * len(ALERT_COLS))})",
    "trading_days": f"INSERT OR IGNORE INTO trading_days ({','.join(DAY_COLS)}) VALUES (?,?,?,?)",
}


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    cols = {row[1] for row in db.execute("PRAGMA table_info(decisions)")}
    for name, kind in LATER_DECISION_COLS.items():
        if name not in cols:  # a journal written before the column existed
            db.execute(f"ALTER TABLE decisions ADD COLUMN {name} {kind}")
    return db


class Journal(Follower):
    def __init__(self, path: Path) -> None:
        super().__init__("journal", BATCH_S, 4096)  # nothing waits on the journal
        self.path = path
        self._db = connect(path)
        self._db_lock = threading.Lock()  # the writer thread, and catch-up and last_q from others

    def last_q(self) -> int:
        with self._db_lock:
            return max((self._db.execute(f"SELECT COALESCE(MAX(q), 0) FROM {t}").fetchone()[0]
                        for t in ("decisions", "fills", "admin", "alerts", "trading_days")), default=0)

    def catch_up(self, events: Iterable[Event]) -> int:
        """Insert rows for events the journal missed (a crash between the event log and the journal)."""
        last = self.last_q()
        rows = [r for ev in events if ev.q > last and (r := project(ev)) is not None]
        self._write(rows)
        if rows:
            log.info("journal caught up from the event log", extra={"rows": len(rows)})
        return len(rows)

    def start(self) -> None:
        self._start_thread()

    def _process(self, items: list[Event]) -> None:
        try:
            self._write(r for ev in items if (r := project(ev)) is not None)
        except sqlite3.Error:
            log.exception("journal write failed; rows will be caught up from the event log at the next start")

    def _write(self, rows: Iterable[tuple[str, tuple[Any, ...]]]) -> None:
        rows = list(rows)
        if not rows:
            return
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for table, row in rows:
            by_table.setdefault(table, []).append(row)
        with self._db_lock:
            self._db.execute("BEGIN")
            for table, batch in by_table.items():
                self._db.executemany(_INSERT[table], batch)
            self._db.execute("COMMIT")

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every event submitted so far is written (tests and status use it)."""
        return self.drain(timeout)

    def stop(self) -> None:
        self._stop_thread()
        self._db.close()


def open_readonly(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise FileNotFoundError(f"no journal at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    return db
