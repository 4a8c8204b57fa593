"""SQLite persistence of every fill record of both sources and of every break.

One connection shared by all threads (check_same_thread=False) and serialised by a lock: the caller writes
from QuickFIX's callback threads and reads from the control plane. Writes are tiny, so one lock costs less
than the reasoning a connection per thread would need. WAL with synchronous=NORMAL: a fill acknowledged by
add_fill survives a crash of the process (a power cut may take the last few), and readers (e.g. `sqlite3` by
an operator) do not block the writer.
"""
from __future__ import annotations

import enum
import json
import logging
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

from gateway.recon.model import Break, BreakStatus, BreakType, FillRecord, FillView, Source

log = logging.getLogger("fixgw.recon")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL CHECK (source IN ('gateway', 'dropcopy')),
    exec_id TEXT NOT NULL,
    exec_type TEXT NOT NULL,
    occurrence INTEGER NOT NULL,          -- 0 = first message with this ExecID; >0 = a DUPLICATE
    order_id TEXT NOT NULL, cl_ord_id TEXT NOT NULL, orig_cl_ord_id TEXT,
    account TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    last_qty REAL NOT NULL, last_px REAL NOT NULL,
    exec_ref_id TEXT, transact_time TEXT NOT NULL,
    received_ns INTEGER NOT NULL, trade_date TEXT NOT NULL, poss_dup INTEGER NOT NULL,
    -- FIX promises an ExecID unique within a trading day (or a multi-day order's life), so a venue may use
    -- one again on another day: the day is part of what makes a fill itself.
    UNIQUE (source, exec_id, exec_type, trade_date, occurrence)
);
CREATE INDEX IF NOT EXISTS fills_day ON fills (trade_date, received_ns, id);
-- Fills matched on both sides and forgotten by the live reconciler at a trading-day rollover: a restart does
-- not load them back into memory (reports, recomputed from all fills, still include them).
CREATE TABLE IF NOT EXISTS settled (
    source TEXT NOT NULL, exec_id TEXT NOT NULL, exec_type TEXT NOT NULL, trade_date TEXT NOT NULL,
    PRIMARY KEY (source, exec_id, exec_type, trade_date)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS breaks (
    trade_date TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL,
    exec_id TEXT NOT NULL, order_id TEXT NOT NULL, cl_ord_id TEXT NOT NULL,
    account TEXT NOT NULL, symbol TEXT NOT NULL,
    gateway TEXT, dropcopy TEXT,          -- FillView as JSON
    detected_ns INTEGER NOT NULL, resolved_ns INTEGER, note TEXT NOT NULL,
    PRIMARY KEY (trade_date, id)
);
"""
_SCHEMA_VERSION = 1  # PRAGMA user_version; 0: before the trading day joined the keys of fills and settled
_V0_COLS = ("source, exec_id, exec_type, {occurrence}, order_id, cl_ord_id, orig_cl_ord_id, account, symbol, side, "
            "last_qty, last_px, exec_ref_id, transact_time, received_ns, trade_date, poss_dup")
# Version 0 to 1: both tables rebuilt with the day in their keys. A later day's use of an ExecID was stored as
# the key's next occurrence: it becomes that day's occurrence 0 (same-day duplicates keep theirs). A settled
# pair takes the day of the fill it was settled with, its occurrence 0 in the old table. Row ids and the
# AUTOINCREMENT sequence are kept.
_MIGRATE_0_TO_1 = f"""
CREATE TABLE IF NOT EXISTS settled (source TEXT NOT NULL, exec_id TEXT NOT NULL, exec_type TEXT NOT NULL);
ALTER TABLE fills RENAME TO fills_v0;
ALTER TABLE settled RENAME TO settled_v0;
DROP INDEX IF EXISTS fills_day;
@SCHEMA@
INSERT INTO fills (id, {_V0_COLS.format(occurrence="occurrence")})
    SELECT id, {_V0_COLS.format(occurrence="ROW_NUMBER() OVER (PARTITION BY source, exec_id, exec_type, trade_date "
                                           "ORDER BY occurrence) - 1")}
    FROM fills_v0;
INSERT OR IGNORE INTO settled SELECT s.source, s.exec_id, s.exec_type, f.trade_date FROM settled_v0 s
    JOIN fills_v0 f ON f.source = s.source AND f.exec_id = s.exec_id AND f.exec_type = s.exec_type
    AND f.occurrence = 0;
DELETE FROM sqlite_sequence WHERE name = 'fills';
INSERT INTO sqlite_sequence (name, seq) SELECT 'fills', seq FROM sqlite_sequence WHERE name = 'fills_v0';
DROP TABLE fills_v0;
DROP TABLE settled_v0;
"""
_FILL_COLS = ("source", "exec_id", "order_id", "cl_ord_id", "orig_cl_ord_id", "account", "symbol", "side",
              "last_qty", "last_px", "exec_type", "exec_ref_id", "transact_time", "received_ns", "trade_date",
              "poss_dup")
_FIND_FILL = (f"SELECT {', '.join(_FILL_COLS)} FROM fills WHERE source=? AND exec_id=? AND exec_type=? "
              "AND trade_date=? AND occurrence=0")
_LAST_OCCURRENCE = "SELECT MAX(occurrence) FROM fills WHERE source=? AND exec_id=? AND exec_type=? AND trade_date=?"
_INSERT_FILL = (f"INSERT INTO fills ({', '.join(_FILL_COLS)}, occurrence) "
                f"VALUES ({', '.join('?' * (len(_FILL_COLS) + 1))})")
# The first of its key, or nothing when a row of occurrence 0 is there: exactly what the SELECT above asks, in
# the same statement as the write (other constraints, NOT NULL and CHECK, still raise).
_INSERT_FIRST = _INSERT_FILL + " ON CONFLICT (source, exec_id, exec_type, trade_date, occurrence) DO NOTHING"
_POSS_DUP = _FILL_COLS.index("poss_dup")


class StoreVersionError(RuntimeError):
    """The store's schema is not this code's, and this process may not change it."""


class AddResult(str, enum.Enum):
    NEW = "NEW"              # first message with this (source, ExecID, ExecType, trade date)
    RESEND = "RESEND"        # flagged PossDup/PossResend and identical: ignored, nothing stored
    DUPLICATE = "DUPLICATE"  # a second message asserting the same ExecID: stored, reconciler raises a break


class ReconStore:
    def __init__(self, path: str | Path, migrate: bool = True) -> None:
        """Open (or create) the store. An older schema is brought up to date unless `migrate` is False, for a
        process other than the gateway (the checkpoint writer): that raises StoreVersionError instead."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            self._open(migrate)
        except BaseException:
            self._db.close()
            raise
        self._batch = False  # inside batch(): writes join its transaction (savepoints instead of their own)

    def _open(self, migrate: bool) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > _SCHEMA_VERSION:  # refused before anything is written to it
            raise StoreVersionError(f"{self.path}: reconciliation store of schema version {version}, newer than "
                                    f"this gateway's {_SCHEMA_VERSION}: run the newer gateway, or restore the store")
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a crash of the process (as the event log does); only a power
        # loss may take the last ones. FULL would put a disk flush on every fill of both sources.
        self._db.execute("PRAGMA synchronous=NORMAL")
        if version == _SCHEMA_VERSION:
            return
        if not migrate:
            raise StoreVersionError(f"{self.path}: reconciliation store of schema version {version}; the gateway "
                                    f"brings it to version {_SCHEMA_VERSION} when it starts")
        self._create_or_migrate()

    def _create_or_migrate(self) -> None:
        """Create the tables, or bring an older store's up to this schema, in one transaction: a crash leaves
        the old tables or the new ones. The version is read again inside it, in case another process did it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            old = version < _SCHEMA_VERSION and self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='fills'").fetchone() is not None
            t0 = time.monotonic()
            if old:
                log.warning("reconciliation store: bringing schema version %d to %d (one transaction)",
                            version, _SCHEMA_VERSION, extra={"path": str(self.path)})
            if version < _SCHEMA_VERSION:
                for sql in _statements(_MIGRATE_0_TO_1.replace("@SCHEMA@", _SCHEMA) if old else _SCHEMA):
                    self._db.execute(sql)
                self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back already (a full disk)
                self._db.execute("ROLLBACK")
            raise
        if old:
            log.warning("reconciliation store: now schema version %d", _SCHEMA_VERSION,
                        extra={"path": str(self.path), "seconds": round(time.monotonic() - t0, 3)})

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction around many writes: the live feed commits a batch of fills once, not once per fill.
        Writes from other threads meanwhile join it; everything commits (or rolls back) at the end."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._batch = True
        try:
            yield
        except BaseException:
            with self._lock:
                self._batch = False
                self._db.execute("ROLLBACK")
            raise
        with self._lock:
            self._batch = False
            try:
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _begin(self, name: str) -> tuple[str, tuple[str, ...]]:
        """Start a write: its own transaction, or a savepoint inside a batch. Returns (commit, undo)."""
        if self._batch:
            self._db.execute(f"SAVEPOINT {name}")
            return f"RELEASE {name}", (f"ROLLBACK TO {name}", f"RELEASE {name}")
        self._db.execute("BEGIN IMMEDIATE")
        return "COMMIT", ("ROLLBACK",)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ReconStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ fills
    def add_fill(self, rec: FillRecord) -> AddResult:
        """Persist a record unless it is a resend of one already stored. Classification matches the
        Reconciler's, so feeding it NEW and DUPLICATE records (or everything) gives the same state."""
        with self._lock:
            if self._batch:
                # The batch's transaction already holds the write lock, and the one write below is a single
                # statement: a savepoint would add two statements (two GIL hand-offs) per fill for nothing.
                return self._add_fill(rec)
            commit, undo = self._begin("fill")
            try:
                result = self._add_fill(rec)
                self._db.execute(commit)
                return result
            except BaseException:
                for sql in undo:
                    self._db.execute(sql)
                raise

    def _add_fill(self, rec: FillRecord) -> AddResult:
        """Under the lock, inside a transaction. The usual fill, the first of its key, takes one statement."""
        values = [getattr(rec, c) for c in _FILL_COLS]
        values[_POSS_DUP] = int(rec.poss_dup)
        if self._db.execute(_INSERT_FIRST, (*values, 0)).rowcount == 1:
            return AddResult.NEW
        key = (rec.source, rec.exec_id, rec.exec_type, rec.trade_date)
        row = self._db.execute(_FIND_FILL, key).fetchone()
        if rec.poss_dup and rec.same_economics(_fill(row)):
            return AddResult.RESEND
        (last,) = self._db.execute(_LAST_OCCURRENCE, key).fetchone()
        self._db.execute(_INSERT_FILL, (*values, last + 1))
        return AddResult.DUPLICATE

    def has_fill(self, rec: FillRecord) -> bool:
        """Whether a fill with this record's source, ExecID, ExecType and trading day is stored."""
        with self._lock:
            return self._db.execute(
                "SELECT 1 FROM fills WHERE source=? AND exec_id=? AND exec_type=? AND trade_date=? LIMIT 1",
                (rec.source, rec.exec_id, rec.exec_type, rec.trade_date)).fetchone() is not None

    def load_day(self, trade_date: str, unsettled_only: bool = False) -> tuple[list[FillRecord], list[FillRecord]]:
        """(gateway_fills, dropcopy_fills) of one trading day, each in receive order; `unsettled_only`: without
        the pairs a rollover marked settled (what the live reconciler still needs in memory)."""
        skip = (" AND NOT EXISTS (SELECT 1 FROM settled s WHERE s.source = f.source AND s.exec_id = f.exec_id"
                " AND s.exec_type = f.exec_type AND s.trade_date = f.trade_date)") if unsettled_only else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_FILL_COLS)} FROM fills f WHERE trade_date=?{skip} ORDER BY received_ns, id",
                (trade_date,)).fetchall()
        fills = [_fill(r) for r in rows]
        return [f for f in fills if f.source == "gateway"], [f for f in fills if f.source == "dropcopy"]

    def mark_settled(self, keys: list[tuple[str, str, str, str]]) -> None:
        """(source, exec_id, exec_type, trade_date) of pairs the live reconciler forgot."""
        if not keys:
            return
        with self._lock:
            commit, undo = self._begin("settled")
            try:
                self._db.executemany("INSERT OR IGNORE INTO settled VALUES (?, ?, ?, ?)", keys)
                self._db.execute(commit)
            except BaseException:
                for sql in undo:
                    self._db.execute(sql)
                raise

    def trade_dates(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT trade_date FROM fills ORDER BY 1")]

    def days_with_open_breaks(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT DISTINCT trade_date FROM breaks WHERE status=? ORDER BY 1", (BreakStatus.OPEN.value,))]

    def open_unknown_fills(self) -> list[FillRecord]:
        """The drop-copy records of the open UNKNOWN_TO_GATEWAY breaks, in receive order: what the live
        reconciler keeps mirrored into positions (Reconciler.unknown_fills), read without replaying a day."""
        cols = ", ".join(f"f.{c}" for c in _FILL_COLS)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {cols} FROM breaks b JOIN fills f ON f.source='dropcopy' AND f.exec_id=b.exec_id "
                "AND f.trade_date=b.trade_date AND f.occurrence=0 "
                "AND b.id = b.type || ':' || f.exec_id || ':' || f.exec_type "
                "WHERE b.type=? AND b.status=? ORDER BY f.id",
                (BreakType.UNKNOWN_TO_GATEWAY.value, BreakStatus.OPEN.value)).fetchall()
        return [_fill(r) for r in rows]

    # ----------------------------------------------------------------- breaks
    def open_breaks(self, limit: int = 200) -> list[dict[str, object]]:
        """The newest open breaks of any day (the operator console lists them)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT trade_date, type, account, symbol, exec_id, cl_ord_id, detected_ns, note FROM breaks "
                "WHERE status=? ORDER BY detected_ns DESC LIMIT ?", (BreakStatus.OPEN.value, limit)).fetchall()
        keys = ("trade_date", "type", "account", "symbol", "exec_id", "cl_ord_id", "detected_ns", "note")
        return [dict(zip(keys, r)) for r in rows]

    def save_break(self, brk: Break) -> None:
        """Insert or update (status, resolution, note) a break; ids are stable so this is idempotent."""
        with self._lock:
            self._db.execute(
                "INSERT INTO breaks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (trade_date, id) DO UPDATE "
                "SET status=excluded.status, resolved_ns=excluded.resolved_ns, note=excluded.note, "
                "gateway=excluded.gateway, dropcopy=excluded.dropcopy",
                (brk.trade_date, brk.id, brk.type.value, brk.status.value, brk.exec_id, brk.order_id,
                 brk.cl_ord_id, brk.account, brk.symbol, _view_json(brk.gateway), _view_json(brk.dropcopy),
                 brk.detected_ns, brk.resolved_ns, brk.note))

    def load_breaks(self, trade_date: str) -> list[Break]:
        with self._lock:
            rows = self._db.execute(
                "SELECT trade_date, id, type, status, exec_id, order_id, cl_ord_id, account, symbol, gateway, "
                "dropcopy, detected_ns, resolved_ns, note FROM breaks WHERE trade_date=? "
                "ORDER BY detected_ns, id", (trade_date,)).fetchall()
        return [Break(id=r[1], type=BreakType(r[2]), status=BreakStatus(r[3]), trade_date=r[0], exec_id=r[4],
                      order_id=r[5], cl_ord_id=r[6], account=r[7], symbol=r[8], gateway=_view(r[9]),
                      dropcopy=_view(r[10]), detected_ns=r[11], resolved_ns=r[12], note=r[13]) for r in rows]


def _statements(script: str) -> list[str]:
    """A script's statements one by one (executescript would commit the transaction they must share); a ';'
    inside a comment does not end one."""
    out, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending)
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending!r}")
    return out


def _fill(row: tuple) -> FillRecord:
    values = dict(zip(_FILL_COLS, row))
    values["poss_dup"] = bool(values["poss_dup"])
    src: Source = values["source"]
    values["source"] = src
    return FillRecord(**values)


def _view_json(view: FillView | None) -> str | None:
    return None if view is None else json.dumps(asdict(view))


def _view(text: str | None) -> FillView | None:
    return None if text is None else FillView(**json.loads(text))
