from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

from gateway.recon.matcher import Reconciler, match_all
from gateway.recon.model import BreakStatus
from gateway.recon.model import FillRecord
from gateway.recon.store import AddResult, ReconStore, StoreVersionError
from recon_testlib import DAY, GRACE, T0, clean_day, fill


def test_wal_mode_and_round_trip(tmp_path: Path) -> None:
    gw, dc = clean_day()
    with ReconStore(tmp_path / "recon.db") as store:
        for rec in sorted(gw + dc, key=lambda r: r.received_ns):
            assert store.add_fill(rec) is AddResult.NEW
        assert store.load_day(DAY) == (gw, sorted(dc, key=lambda r: r.received_ns))
        assert store.trade_dates() == [DAY]
        assert store.load_day("20261128") == ([], [])
    (mode,) = sqlite3.connect(tmp_path / "recon.db").execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


def test_resend_is_idempotent_and_a_duplicate_is_kept(tmp_path: Path) -> None:
    e1 = fill("dropcopy", "E1", 0)
    with ReconStore(tmp_path / "recon.db") as store:
        assert store.add_fill(e1) is AddResult.NEW
        assert store.add_fill(replace(e1, received_ns=T0 + 9, poss_dup=True)) is AddResult.RESEND
        assert store.add_fill(replace(e1, received_ns=T0 + 10)) is AddResult.DUPLICATE
        assert store.add_fill(replace(e1, received_ns=T0 + 11, last_qty=1.0, poss_dup=True)) is AddResult.DUPLICATE
        assert store.add_fill(fill("gateway", "E1", 1)) is AddResult.NEW  # other source, own key space
        assert store.add_fill(fill("dropcopy", "E1", 2, exec_type="H", exec_ref_id="E1")) is AddResult.NEW
        gw, dc = store.load_day(DAY)
    assert [r.received_ns - T0 for r in dc] == [0, 10, 11, 2_000_000]
    # replaying the stored records classifies exactly as live: one break per duplicate, no resend break
    rec = Reconciler(GRACE)
    match_all(rec, gw, dc)
    assert [b.id for b in rec.breaks()] == ["DUPLICATE:dropcopy:E1:F:1", "DUPLICATE:dropcopy:E1:F:2"]


def test_a_batch_classifies_resends_and_duplicates_as_single_writes_do(tmp_path: Path) -> None:
    e1 = fill("dropcopy", "E1", 0)
    records = [e1, replace(e1, received_ns=T0 + 9, poss_dup=True), replace(e1, received_ns=T0 + 10),
               replace(e1, received_ns=T0 + 11, last_qty=1.0, poss_dup=True), fill("gateway", "E1", 1)]
    with ReconStore(tmp_path / "single.db") as store:
        single = [store.add_fill(r) for r in records]
        single_rows = store.load_day(DAY)
    with ReconStore(tmp_path / "batched.db") as store:
        with store.batch():
            batched = [store.add_fill(r) for r in records]
        assert store.load_day(DAY) == single_rows
    assert batched == single == [AddResult.NEW, AddResult.RESEND, AddResult.DUPLICATE, AddResult.DUPLICATE,
                                 AddResult.NEW]


def test_breaks_upsert_and_survive_reopen(tmp_path: Path) -> None:
    rec = Reconciler(GRACE)
    e1 = fill("gateway", "E1", 0)
    rec.add_gateway_fill(e1)
    (opened,) = rec.tick(T0 + GRACE + 1)
    path = tmp_path / "recon.db"
    with ReconStore(path) as store:
        store.save_break(opened.brk)
        store.save_break(opened.brk)  # idempotent
    resolved = rec.add_dropcopy_fill(replace(e1, source="dropcopy", received_ns=T0 + 2 * GRACE))
    with ReconStore(path) as store:
        for event in resolved:
            store.save_break(event.brk)
        loaded = store.load_breaks(DAY)
    assert loaded == rec.breaks()
    assert [(b.type.value, b.status) for b in loaded] == [("MISSING_FROM_DROPCOPY", BreakStatus.RESOLVED),
                                                        ("LATE_ARRIVAL", BreakStatus.RESOLVED)]


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    store = ReconStore(tmp_path / "recon.db")
    barrier = threading.Barrier(4)

    def writer(n: int) -> None:
        barrier.wait()
        for i in range(50):
            source = "gateway" if n % 2 == 0 else "dropcopy"
            store.add_fill(fill(source, f"T{n}-{i}", i))
            store.add_fill(replace(fill(source, f"T{n}-{i}", i), poss_dup=True))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gw, dc = store.load_day(DAY)
    assert (len(gw), len(dc)) == (100, 100)
    store.close()


def test_a_batch_commits_once_and_a_failed_fill_inside_it_loses_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "recon.db"
    e1, e2 = fill("gateway", "E1", 0), fill("gateway", "E2", 1)
    other = sqlite3.connect(path)  # another connection sees only what is committed
    with ReconStore(path) as store:
        with store.batch():
            assert store.add_fill(e1) is AddResult.NEW
            try:
                store.add_fill(replace(e2, exec_id=None))  # type: ignore[arg-type]  # NOT NULL: the insert fails
            except sqlite3.IntegrityError:
                pass
            else:
                raise AssertionError("a fill without ExecID was stored")
            assert store.add_fill(e2) is AddResult.NEW  # the batch goes on after the failed fill
            store.mark_settled([("gateway", "E1", "F", DAY)])
            assert other.execute("SELECT COUNT(*) FROM fills").fetchone() == (0,)
        assert other.execute("SELECT COUNT(*) FROM fills").fetchone() == (2,)
        assert other.execute("SELECT COUNT(*) FROM settled").fetchone() == (1,)
        assert store.load_day(DAY)[0] == [e1, e2]


def test_a_batch_that_raises_stores_nothing(tmp_path: Path) -> None:
    with ReconStore(tmp_path / "recon.db") as store:
        try:
            with store.batch():
                store.add_fill(fill("gateway", "E1", 0))
                raise RuntimeError("the feed failed mid-batch")
        except RuntimeError:
            pass
        assert store.load_day(DAY) == ([], [])
        assert store.add_fill(fill("gateway", "E1", 0)) is AddResult.NEW  # and the store still takes fills


def test_an_exec_id_used_again_on_another_day_is_a_new_fill_there(tmp_path: Path) -> None:
    # FIX promises an ExecID unique within a trading day: a venue numbering them afresh each day is within
    # its rights, and a later day's fill must not be taken for a duplicate (or, flagged, for a resend).
    day1 = fill("dropcopy", "E1", 0)
    day2 = replace(day1, trade_date="20261130", received_ns=T0 + 86_400_000_000_000, poss_dup=True)
    with ReconStore(tmp_path / "recon.db") as store:
        assert store.add_fill(day1) is AddResult.NEW
        assert store.add_fill(day2) is AddResult.NEW
        assert store.add_fill(replace(day2, poss_dup=False)) is AddResult.DUPLICATE  # the same day still is one
        assert store.has_fill(day1) and store.has_fill(day2)
        assert not store.has_fill(replace(day1, trade_date="20261201"))
        store.mark_settled([("dropcopy", "E1", "F", DAY)])  # day 1's pair forgotten at its rollover
        assert store.load_day(DAY, unsettled_only=True) == ([], [])
        assert store.load_day("20261130", unsettled_only=True)[1] == [day2, replace(day2, poss_dup=False)]


_V0_SCHEMA = """
CREATE TABLE fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL CHECK (source IN ('gateway', 'dropcopy')),
    exec_id TEXT NOT NULL, exec_type TEXT NOT NULL, occurrence INTEGER NOT NULL,
    order_id TEXT NOT NULL, cl_ord_id TEXT NOT NULL, orig_cl_ord_id TEXT,
    account TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    last_qty REAL NOT NULL, last_px REAL NOT NULL,
    exec_ref_id TEXT, transact_time TEXT NOT NULL,
    received_ns INTEGER NOT NULL, trade_date TEXT NOT NULL, poss_dup INTEGER NOT NULL,
    UNIQUE (source, exec_id, exec_type, occurrence)
);
CREATE INDEX fills_day ON fills (trade_date, received_ns, id);
CREATE TABLE settled (source TEXT NOT NULL, exec_id TEXT NOT NULL, exec_type TEXT NOT NULL,
    PRIMARY KEY (source, exec_id, exec_type)) WITHOUT ROWID;
CREATE TABLE breaks (
    trade_date TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL,
    exec_id TEXT NOT NULL, order_id TEXT NOT NULL, cl_ord_id TEXT NOT NULL, account TEXT NOT NULL,
    symbol TEXT NOT NULL, gateway TEXT, dropcopy TEXT, detected_ns INTEGER NOT NULL, resolved_ns INTEGER,
    note TEXT NOT NULL, PRIMARY KEY (trade_date, id)
);
"""


def _v0_store(path: Path, rows: list[tuple[FillRecord, int]], settled: list[tuple[str, str, str]] | None) -> None:
    """A store as the gateway kept it before schema version 1; `settled` None: one from before that table."""
    db = sqlite3.connect(path)
    db.executescript(_V0_SCHEMA if settled is not None else _V0_SCHEMA.replace("TABLE settled", "TABLE x"))
    for rec, occurrence in rows:
        db.execute("INSERT INTO fills (source, exec_id, exec_type, occurrence, order_id, cl_ord_id, orig_cl_ord_id, "
                   "account, symbol, side, last_qty, last_px, exec_ref_id, transact_time, received_ns, trade_date, "
                   "poss_dup) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (rec.source, rec.exec_id, rec.exec_type, occurrence, rec.order_id, rec.cl_ord_id,
                    rec.orig_cl_ord_id, rec.account, rec.symbol, rec.side, rec.last_qty, rec.last_px, rec.exec_ref_id,
                    rec.transact_time, rec.received_ns, rec.trade_date, int(rec.poss_dup)))
    if settled is not None:
        db.executemany("INSERT INTO settled VALUES (?, ?, ?)", settled)
    db.commit()
    db.close()


def test_a_store_of_the_earlier_schema_is_brought_up_to_date_keeping_every_row(tmp_path: Path) -> None:
    path = tmp_path / "recon.db"
    day2 = "20261130"
    e1, dc1, e2 = fill("gateway", "E1", 0), fill("dropcopy", "E1", 1), fill("gateway", "E2", 2)
    e1_day2 = replace(e1, trade_date=day2, received_ns=T0 + 86_400_000_000_000)  # stored as a DUPLICATE then
    dup = replace(e2, received_ns=T0 + 3_000_000)  # a same-day duplicate stays one
    gone = replace(e2, exec_id="E9", received_ns=T0 + 4_000_000)
    _v0_store(path, [(e1, 0), (dc1, 0), (e2, 0), (e1_day2, 1), (dup, 1), (gone, 0)],
              [("gateway", "E1", "F"), ("dropcopy", "E1", "F")])
    db = sqlite3.connect(path)
    db.execute("DELETE FROM fills WHERE exec_id = 'E9'")  # the highest id: a new row must not take it again
    db.commit()
    db.close()
    with ReconStore(path) as store:
        assert store.load_day(DAY) == ([e1, e2, dup], [dc1])
        assert store.load_day(DAY, unsettled_only=True) == ([e2, dup], [])  # day 1's settled pair stays settled
        assert store.load_day(day2, unsettled_only=True) == ([e1_day2], [])  # and no longer hides day 2's E1
        rows = store._db.execute("SELECT id, exec_id, trade_date, occurrence FROM fills ORDER BY id").fetchall()
        assert rows == [(1, "E1", DAY, 0), (2, "E1", DAY, 0), (3, "E2", DAY, 0), (4, "E1", day2, 0), (5, "E2", DAY, 1)]
        assert store._db.execute("SELECT seq FROM sqlite_sequence WHERE name='fills'").fetchone() == (6,)
        assert store.add_fill(replace(e1_day2, poss_dup=True)) is AddResult.RESEND  # day 2's E1 is its first
        assert store.add_fill(replace(e2, received_ns=T0 + 5)) is AddResult.DUPLICATE
        assert store._db.execute("SELECT MIN(id) FROM fills WHERE id > 5").fetchone()[0] > 6
        assert store._db.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND name='fills_day' "
                                 "AND tbl_name='fills'").fetchone() == (1,)
    with ReconStore(path) as store:  # opening a migrated store again changes nothing
        assert len(store.load_day(DAY)[0]) == 4 and store.trade_dates() == [DAY, day2]
    (version,) = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()
    assert version == 1


def test_a_store_from_before_the_settled_table_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "recon.db"
    _v0_store(path, [(fill("gateway", "E1", 0), 0)], None)
    with ReconStore(path) as store:
        assert store.load_day(DAY, unsettled_only=True) == ([fill("gateway", "E1", 0)], [])
        store.mark_settled([("gateway", "E1", "F", DAY)])
        assert store.load_day(DAY, unsettled_only=True) == ([], [])


def test_only_the_gateway_changes_the_schema_and_a_newer_one_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "recon.db"
    _v0_store(path, [(fill("gateway", "E1", 0), 0)], [])
    try:  # the checkpoint writer, perhaps newer code than the running gateway: it must leave the store alone
        ReconStore(path, migrate=False)
    except StoreVersionError as e:
        assert "schema version 0" in str(e)
    else:
        raise AssertionError("a process other than the gateway opened an older store")
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (0,)
    assert "occurrence)" in db.execute("SELECT sql FROM sqlite_master WHERE name='fills'").fetchone()[0]
    db.close()

    newer = tmp_path / "newer.db"
    sqlite3.connect(newer).execute("PRAGMA user_version = 7")
    for migrate in (True, False):
        try:
            ReconStore(newer, migrate=migrate)
        except StoreVersionError as e:
            assert "schema version 7" in str(e) and str(newer) in str(e)
        else:
            raise AssertionError("a store of a newer schema was opened")
    db = sqlite3.connect(newer)
    assert db.execute("PRAGMA user_version").fetchone() == (7,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # not even switched to WAL
    assert db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone() == (0,)
