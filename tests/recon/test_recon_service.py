from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.recon.events import BreakOpened, BreakResolved, UnknownFill
from gateway.recon.fixlog import reconcile_logs
from gateway.recon.model import BreakStatus, BreakType, FillRecord
from gateway.recon.report import write_reports
from gateway.recon.service import ReconService
from gateway.recon.store import ReconStore
from recon_testlib import (AS_OF, DAY, DROPCOPY, GATEWAY, GRACE, MS, SEC, T0, VENUE, clean_day, fill, to_fix,
                           write_logs)


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def busy_day() -> tuple[list[FillRecord], list[FillRecord]]:
    """Every kind of break at least once, plus a resend and a drop copy that overtakes the gateway."""
    gw, dc = clean_day()
    idx = {r.exec_id: i for i, r in enumerate(dc)}
    dc[idx["E2"]] = replace(dc[idx["E2"]], last_qty=40.0)
    dc[idx["E5"]] = replace(dc[idx["E5"]], side="2")
    dc[idx["E3"]] = replace(dc[idx["E3"]], received_ns=dc[idx["E3"]].received_ns + GRACE + 5 * SEC)  # late
    del dc[idx["E1"]]
    dc.append(replace(dc[0], received_ns=dc[0].received_ns + 300 * MS))                          # duplicate
    dc.append(replace(dc[0], received_ns=dc[0].received_ns + 400 * MS, poss_dup=True))           # resend
    dc.append(fill("dropcopy", "X9", 2500, order_id="O9", cl_ord_id="C9", account="ACC9", qty=5, px=20.5))
    gw.append(fill("gateway", "E6", 8000, order_id="O5", cl_ord_id="C5", px=10.1, transact_ms=7990))
    dc.append(replace(gw[-1], source="dropcopy", received_ns=T0 + 7000 * MS))                    # dc first
    gw.append(fill("gateway", "E7", 9000, order_id="O5", cl_ord_id="C5", qty=3, px=10.2, transact_ms=8990))
    dc.append(replace(gw[-1], source="dropcopy", received_ns=T0 + 9000 * MS, last_px=10.25))     # price
    return gw, sorted(dc, key=lambda r: r.received_ns)


def run_live(tmp_path: Path, gw: list[FillRecord], dc: list[FillRecord], tick_every_ms: int = 700,
             end: int = AS_OF) -> ReconService:
    tmp_path.mkdir(parents=True, exist_ok=True)
    clock = Clock(T0)
    service = ReconService(ReconStore(tmp_path / "recon.db"), GRACE, clock=clock)
    feed = sorted([(r.received_ns, 0, r) for r in gw] + [(r.received_ns, 1, r) for r in dc], key=lambda t: t[:2])
    seq = 2
    for ns, side, rec in feed:
        while clock.now + tick_every_ms * MS < ns:  # the caller's periodic timer
            clock.now += tick_every_ms * MS
            service.tick()
        clock.now = ns
        seq += 1
        if side == 0:
            service.on_gateway_message(to_fix(rec, VENUE, GATEWAY, seq))
        else:
            service.on_dropcopy_message(to_fix(rec, DROPCOPY, GATEWAY, seq))
    clock.now = end
    service.tick()
    return service


def test_live_store_and_offline_logs_give_identical_reports(tmp_path: Path) -> None:
    gw, dc = busy_day()
    service = run_live(tmp_path, gw, dc)
    live_paths = service.write_reports(DAY, tmp_path / "live", as_of_ns=AS_OF)

    report, problems = reconcile_logs(*write_logs(tmp_path, gw, dc), VENUE, DROPCOPY, DAY, GRACE, as_of_ns=AS_OF)
    offline_paths = write_reports(report, tmp_path / "offline")
    assert problems == []
    assert [p.name for p in live_paths] == [p.name for p in offline_paths]
    for live, offline in zip(live_paths, offline_paths):
        assert live.read_bytes() == offline.read_bytes(), live.name

    # and the live matcher's own state agrees with the report recomputed from the store
    assert service.reconciler(DAY).breaks() == list(report.breaks) == service.store.load_breaks(DAY)
    opened = {t.value: n for t, n in service.open_counts().items()}
    assert opened == report.open_by_type == {
        "MISSING_FROM_DROPCOPY": 1, "UNKNOWN_TO_GATEWAY": 1, "QTY_MISMATCH": 1, "PRICE_MISMATCH": 1,
        "SIDE_MISMATCH": 1, "DUPLICATE": 1, "LATE_ARRIVAL": 0}
    assert report.resolved_by_type["LATE_ARRIVAL"] == 1 and report.resolved_by_type["MISSING_FROM_DROPCOPY"] == 1
    assert [r.exec_id for r in service.unknown_fills()] == ["X9"]


def test_each_new_break_is_logged_once_with_type_and_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gw, dc = busy_day()
    with caplog.at_level(logging.INFO, logger="fixgw.recon"):
        service = run_live(tmp_path, gw, dc)
    opened = [r for r in caplog.records if r.name == "fixgw.recon" and r.getMessage().startswith("recon_break_opened")]
    assert len(opened) == len(service.reconciler(DAY).breaks())
    qty = next(r for r in opened if "type=QTY_MISMATCH" in r.getMessage())
    assert qty.levelno == logging.WARNING
    assert qty.getMessage() == ('recon_break_opened type=QTY_MISMATCH id=QTY_MISMATCH:E2 status=OPEN '
                                'trade_date=20261127 exec_id=E2 order_id=O1 cl_ord_id=C1 account=ACC1 symbol=XYZ '
                                'note="qty gateway 50 vs drop copy 40"')
    assert qty.recon["exec_id"] == "E2"  # type: ignore[attr-defined]
    unknown = [r for r in caplog.records if r.getMessage().startswith("recon_unknown_fill ")]
    assert len(unknown) == 1 and "code=DROPCOPY_UNKNOWN_FILL" in unknown[0].getMessage()


def test_restart_rebuilds_state_and_reports_only_what_matured_while_down(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    gw, dc = busy_day()
    cut = T0 + 3000 * MS  # crash after 3 s: E1, X9 and E3 (its copy is late) are still inside their grace
    before = run_live_until(tmp_path, gw, dc, cut)
    assert before.reconciler(DAY).open_counts()[BreakType.MISSING_FROM_DROPCOPY] == 0
    known = {b.id for b in before.store.load_breaks(DAY)}
    before.store.close()

    clock = Clock(cut + 60 * SEC)
    after = ReconService(ReconStore(tmp_path / "recon.db"), GRACE, clock=clock)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fixgw.recon"):
        fresh = after.rebuild()
    matured = {"MISSING_FROM_DROPCOPY:E1:F", "UNKNOWN_TO_GATEWAY:X9:F", "MISSING_FROM_DROPCOPY:E3:F"}
    assert {e.brk.id for e in fresh if isinstance(e, BreakOpened)} == matured
    assert not any(isinstance(e, BreakOpened) and e.brk.id in known for e in fresh)
    assert [e.rec.exec_id for e in fresh if isinstance(e, UnknownFill)] == ["X9"]
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("recon_break_opened")]
    assert len(logged) == 3
    assert {b.id for b in after.store.load_breaks(DAY)} == known | matured
    assert after.rebuild() == []  # a second restart has nothing new to say

    # the rest of the day after the restart ends where an uninterrupted day ends
    for rec in sorted([r for r in gw + dc if r.received_ns > cut], key=lambda r: r.received_ns):
        clock.now = max(clock.now, rec.received_ns)
        after.add_fill(rec)
    clock.now = AS_OF
    after.tick()
    full = run_live(tmp_path / "full", gw, dc)
    ids = lambda s: {(b.id, b.status) for b in s.store.load_breaks(DAY)}  # noqa: E731
    assert ids(after) == ids(full)


def run_live_until(tmp_path: Path, gw: list[FillRecord], dc: list[FillRecord], cut: int) -> ReconService:
    return run_live(tmp_path, [r for r in gw if r.received_ns <= cut], [r for r in dc if r.received_ns <= cut],
                    end=cut)


def test_unusable_message_is_counted_logged_and_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    service = ReconService(ReconStore(tmp_path / "recon.db"), GRACE, clock=Clock(T0))
    msg = to_fix(fill("dropcopy", "E1", 0), DROPCOPY, GATEWAY, 2)
    msg.remove(17)
    with caplog.at_level(logging.ERROR, logger="fixgw.recon"):
        assert service.on_dropcopy_message(msg) == []
    assert service.rejected_messages == 1
    assert caplog.records[-1].getMessage() == 'recon_unusable_fill source=dropcopy reason="missing tag 17 (ExecID)"'


def test_resend_through_the_service_is_silent(tmp_path: Path) -> None:
    clock = Clock(T0)
    service = ReconService(ReconStore(tmp_path / "recon.db"), GRACE, clock=clock)
    e1 = fill("gateway", "E1", 0)
    service.add_fill(e1)
    assert service.add_fill(replace(e1, poss_dup=True, received_ns=T0 + 1)) == []
    assert service.store.load_day(DAY) == ([e1], [])


def test_days_are_held_separately_and_can_be_closed(tmp_path: Path) -> None:
    clock = Clock(T0)
    service = ReconService(ReconStore(tmp_path / "recon.db"), GRACE, clock=clock)
    service.add_fill(fill("gateway", "E1", 0))
    service.add_fill(replace(fill("gateway", "E2", 0), trade_date="20261128"))
    clock.now = AS_OF
    events = service.tick()
    assert sorted(type(e).__name__ for e in events) == ["BreakOpened", "BreakOpened"]
    assert service.open_counts()[BreakType.MISSING_FROM_DROPCOPY] == 2
    service.close_day(DAY)
    assert service.open_counts()[BreakType.MISSING_FROM_DROPCOPY] == 1
    (brk,) = service.store.load_breaks(DAY)  # closing forgets memory, not the record
    assert brk.status is BreakStatus.OPEN
    # a straggler for the closed day reloads it from the store instead of starting from nothing
    clock.now = AS_OF + SEC
    events = service.add_fill(fill("dropcopy", "E1", (AS_OF + SEC - T0) // MS))
    assert [(type(e).__name__, e.brk.type.value) for e in events] == [
        ("BreakResolved", "MISSING_FROM_DROPCOPY"), ("BreakOpened", "LATE_ARRIVAL")]


def test_resolution_is_persisted(tmp_path: Path) -> None:
    clock = Clock(T0)
    service = ReconService(ReconStore(tmp_path / "recon.db"), GRACE, clock=clock)
    e1 = fill("gateway", "E1", 0)
    service.add_fill(e1)
    clock.now = T0 + 2 * GRACE
    service.tick()
    events = service.on_dropcopy_message(to_fix(replace(e1, source="dropcopy"), DROPCOPY, GATEWAY, 2))
    assert [type(e) for e in events] == [BreakResolved, BreakOpened]
    assert [(b.type, b.status) for b in service.store.load_breaks(DAY)] == [
        (BreakType.MISSING_FROM_DROPCOPY, BreakStatus.RESOLVED), (BreakType.LATE_ARRIVAL, BreakStatus.RESOLVED)]


def test_a_restart_replays_only_the_days_that_need_it(tmp_path: Path) -> None:
    clock = Clock(T0)
    svc = ReconService(ReconStore(tmp_path / "recon.db"), GRACE, clock=clock)
    days = ["20260301", "20260302", "20260303", "20260304"]
    for n, day in enumerate(days):
        rec = replace(fill("gateway", f"E{n}", 1000 * n), trade_date=day)
        svc.add_fill(rec)
        if day != "20260302":  # that day's copy never comes: its break stays open
            svc.add_fill(replace(rec, source="dropcopy"))
    clock.now = T0 + 60 * SEC
    svc.tick()
    svc.store.close()

    after = ReconService(ReconStore(tmp_path / "recon.db"), GRACE, clock=clock)
    wanted = after.days_to_rebuild("20260310")
    # the old day with an open break, the two latest days (records may have been inside their grace), today
    assert wanted == ["20260302", "20260303", "20260304", "20260310"]
    assert after.rebuild(wanted) == []
    assert after.open_counts()[BreakType.MISSING_FROM_DROPCOPY] == 1  # the old day's break still counts
    # a day left out loads from the store when it is asked for, matches intact
    report = after.report("20260301", clock.now)
    assert (report.matched, report.open_breaks) == (1, 0)


def test_an_exec_id_of_a_settled_day_used_again_the_next_day_is_reconciled_across_a_restart(tmp_path: Path) -> None:
    # A venue that numbers its ExecIDs afresh each day: day 1's E1 matched and settled at the rollover; day
    # 2's E1 reached the gateway, its drop copy never came, and the gateway restarted before grace ran out.
    day2, ns2 = "20261128", T0 + 86_400 * SEC
    clock = Clock(T0)
    service = ReconService(ReconStore(tmp_path / "recon.db"), GRACE, clock=clock)
    e1 = fill("gateway", "E1", 0)
    service.add_fill(e1)
    service.add_fill(replace(e1, source="dropcopy", received_ns=T0 + 5 * MS))
    assert service.new_trading_day() == 1
    clock.now = ns2
    service.add_fill(replace(e1, trade_date=day2, received_ns=ns2, transact_time=f"{day2}-14:00:00.000"))
    service.store.close()

    after = ReconService(ReconStore(tmp_path / "recon.db"), GRACE, clock=Clock(ns2 + GRACE + SEC))
    fresh = after.rebuild([day2])
    assert [e.brk.id for e in fresh if isinstance(e, BreakOpened)] == ["MISSING_FROM_DROPCOPY:E1:F"]
    assert [b.trade_date for b in after.store.load_breaks(day2)] == [day2]
    assert after.store.load_breaks(DAY) == []
