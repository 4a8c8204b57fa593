"""Drop-copy reconciliation over real sessions: the venue simulator spoils its drop copy on purpose and each
fault yields exactly its break; offline reconciliation of the two FIX logs agrees with the live store."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.control.daemon import end_of_day, next_end_of_day
from sim.venue import DropCopyFault
from gwtest import write_config

GRACE_S = 0.4
ROOT = Path(__file__).resolve().parent.parent


def _day() -> str:
    return time.strftime("%Y%m%d", time.gmtime())


def _run(stack, faults: list[DropCopyFault], dropcopies: int) -> None:
    stack.sim_cfg = stack.sim_cfg.model_copy(update={"dropcopy_faults": faults})
    stack.cfg = stack.cfg.model_copy(update={"reconciliation": stack.cfg.reconciliation.model_copy(
        update={"grace_s": GRACE_S})})
    stack.start_sim()
    gw = stack.start_gateway()
    assert gw.dropcopy_logged_on.wait(15)
    c = stack.client()
    c.new_order("A1", "ACC1", "AAPL", "1", 10, 190.0)
    c.new_order("M1", "ACC1", "MSFT", "2", 10, 410.0)
    for cl in ("A1", "M1"):
        c.wait_for(lambda m, cl=cl: m.get(11) == cl and m.get(150) == "F")
    assert gw.recon_feed.wait_seen("gateway", 2)
    assert gw.recon_feed.wait_seen("dropcopy", dropcopies)


def _settle(gw) -> dict:
    time.sleep(GRACE_S + 0.2)  # the behaviour under test is what happens once the grace period has passed
    gw.recon_feed.tick()
    return gw.recon.report(_day(), time.time_ns())


def test_a_clean_day_has_no_breaks(stack) -> None:
    _run(stack, [], 2)
    report = _settle(stack.gw)
    assert (report.matched, report.open_breaks, report.breaks) == (2, 0, ())
    assert report.position_differences == ()


FAULTS = [
    (DropCopyFault(kind="omit", symbol="AAPL"), 1, "MISSING_FROM_DROPCOPY"),
    (DropCopyFault(kind="qty", symbol="AAPL", value=7), 2, "QTY_MISMATCH"),
    (DropCopyFault(kind="price", symbol="AAPL", value=191.5), 2, "PRICE_MISMATCH"),
    (DropCopyFault(kind="side", symbol="AAPL"), 2, "SIDE_MISMATCH"),
    (DropCopyFault(kind="duplicate", symbol="AAPL"), 3, "DUPLICATE"),
    (DropCopyFault(kind="phantom", symbol="AAPL"), 3, "UNKNOWN_TO_GATEWAY"),
]


@pytest.mark.parametrize("fault,dropcopies,expected", FAULTS, ids=[f[2] for f in FAULTS])
def test_each_fault_yields_exactly_its_break(stack, fault, dropcopies, expected) -> None:
    _run(stack, [fault], dropcopies)
    report = _settle(stack.gw)
    assert [(b.type.value, b.status.value) for b in report.breaks] == [(expected, "OPEN")]
    assert {k: v for k, v in report.open_by_type.items() if v} == {expected: 1}
    assert report.breaks[0].symbol == "AAPL"


def test_a_bypass_fill_is_mirrored_into_positions_and_alerted(stack) -> None:
    _run(stack, [DropCopyFault(kind="phantom", symbol="AAPL")], 3)
    gw = stack.gw
    _settle(gw)
    e = gw.risk.engine
    assert e.position(e.account_index("ACC1"), e.instrument_index("AAPL")) == 20  # own 10 + bypass 10
    assert gw.metrics.alerts.labels("DROPCOPY_UNKNOWN_FILL")._value.get() == 1
    gw.refresh_gauges()
    assert gw.metrics.recon_open.labels("UNKNOWN_TO_GATEWAY")._value.get() == 1


def test_a_mirrored_bypass_fill_counts_once_across_a_rollover_and_a_restart(stack) -> None:
    _run(stack, [DropCopyFault(kind="phantom", symbol="AAPL")], 3)
    _settle(stack.gw)

    def aapl(gw) -> float:
        e = gw.risk.engine
        return e.position(e.account_index("ACC1"), e.instrument_index("AAPL"))

    assert aapl(stack.gw) == 20  # own 10 + bypass 10
    stack.gw.rollover("tester", "the bypass fill is carried inside the position")
    assert aapl(stack.gw) == 20
    stack.stop_gateway()
    assert aapl(stack.start_gateway()) == 20  # not mirrored a second time on top of the carried position


@pytest.mark.parametrize("handed_over_by", ["this gateway", "a gateway naming ExecIDs alone"])
def test_a_bypass_fill_whose_exec_id_a_carried_one_had_is_mirrored_and_stays_so_after_a_restart(
        stack, handed_over_by: str) -> None:
    # A venue that numbers its ExecIDs afresh each trading day: the next day's bypass fill bears the ExecID of
    # yesterday's, which is still open and inside the carried position. Each is a fill of its own.
    _run(stack, [DropCopyFault(kind="phantom", symbol="AAPL", nth=0)], 3)
    _settle(stack.gw)
    sim = stack.sim

    def aapl(gw) -> float:
        e = gw.risk.engine
        return e.position(e.account_index("ACC1"), e.instrument_index("AAPL"))

    phantom_ids = [f["exec_id"] for f in sim.fills if f.get("phantom")]
    assert aapl(stack.gw) == 20 and len(phantom_ids) == 1  # own 10 + bypass 10
    stack.gw.rollover("tester", "the venue's next day")
    tomorrow = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).strftime("%Y%m%d")
    sim.number_exec_ids_afresh(trade_date=tomorrow)
    gw = stack.gw
    c = stack.clients[0]
    c.new_order("A2", "ACC1", "AAPL", "1", 10, 190.0)  # the same flow as yesterday's: the same ExecIDs
    c.new_order("M2", "ACC1", "MSFT", "2", 10, 410.0)
    for cl in ("A2", "M2"):
        c.wait_for(lambda m, cl=cl: m.get(11) == cl and m.get(150) == "F")
    assert [f["exec_id"] for f in sim.fills if f.get("phantom")] == phantom_ids * 2
    assert gw.recon_feed.wait_seen("dropcopy", 6)
    time.sleep(GRACE_S + 0.2)  # the behaviour under test is what happens once the grace period has passed
    gw.recon_feed.tick()
    assert gw.recon_feed.drain()
    assert aapl(gw) == 40  # both days' own fills and both bypass fills
    stack.stop_gateway()
    if handed_over_by != "this gateway":  # the day head as an older gateway wrote it: bare ExecIDs
        log = stack.cfg.state_dir / "events.log"
        lines = log.read_bytes().splitlines(keepends=True)
        n = next(i for i, ln in enumerate(lines) if b'"MIRRORED"' in ln)
        head = json.loads(lines[n])
        assert head["x"] == [f"{_day()}:{phantom_ids[0]}"]
        lines[n] = json.dumps({**head, "x": phantom_ids}).encode() + b"\n"
        log.write_bytes(b"".join(lines))
    assert aapl(stack.start_gateway()) == 40  # yesterday's stays carried, today's is mirrored again


def test_a_late_copy_resolves_after_the_grace_period(stack) -> None:
    _run(stack, [DropCopyFault(kind="delay", symbol="AAPL", delay_s=GRACE_S * 3)], 1)
    report = _settle(stack.gw)
    assert {k: v for k, v in report.open_by_type.items() if v} == {"MISSING_FROM_DROPCOPY": 1}
    assert stack.gw.recon_feed.wait_seen("dropcopy", 2)
    report = stack.gw.recon.report(_day(), time.time_ns())
    assert report.open_breaks == 0
    assert sorted((b.type.value, b.status.value) for b in report.breaks) == [
        ("LATE_ARRIVAL", "RESOLVED"), ("MISSING_FROM_DROPCOPY", "RESOLVED")]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "reconcile", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def _comparable(path: Path) -> dict:
    """A report without the receive-time stamps: live stamps at matching, offline at the log line's time."""
    data = json.loads(path.read_text())
    data.pop("as_of")
    for b in data["breaks"]:
        for k in ("detected_at", "resolved_at"):
            b.pop(k)
        for side in ("gateway", "dropcopy"):
            if b[side]:
                b[side].pop("received_at")
    return data


def test_offline_reconciliation_of_the_two_logs_matches_the_live_store(stack, tmp_path) -> None:
    _run(stack, [DropCopyFault(kind="qty", symbol="AAPL", value=7),
                 DropCopyFault(kind="omit", symbol="MSFT")], 1)
    _settle(stack.gw)
    stack.close()  # logs and stores complete
    cfg_path = write_config(stack.cfg, tmp_path / "gw.toml")
    live = _cli("--config", str(cfg_path), "--date", _day(), "--out", str(tmp_path / "live"))
    assert live.returncode == 1, live.stderr  # open breaks
    logs = stack.cfg.state_dir / "fixlog"
    gw_log = next((logs / "venue").glob("FIX.4.4-*.messages.current.log"))
    dc_log = next((logs / "dropcopy").glob("FIX.4.4-*.messages.current.log"))
    offline_args = ["--gateway-log", str(gw_log), "--dropcopy-log", str(dc_log), "--venue-comp-id", "VENUE",
                    "--dropcopy-comp-id", "VENUE_DC", "--date", _day(), "--grace-seconds", str(GRACE_S)]
    off = _cli(*offline_args, "--out", str(tmp_path / "offline"))
    assert off.returncode == 1, off.stderr
    name = f"recon-{_day()}.json"
    live_r, off_r = _comparable(tmp_path / "live" / name), _comparable(tmp_path / "offline" / name)
    assert live_r == off_r
    assert {k: v for k, v in live_r["totals"]["open_by_type"].items() if v} == {"MISSING_FROM_DROPCOPY": 1,
                                                                                 "QTY_MISMATCH": 1}
    md = (tmp_path / "live" / f"recon-{_day()}.md").read_text()
    assert "QTY_MISMATCH" in md and "MSFT" in md

    # A malformed line is reported with its line number and does not stop the run.
    bad = tmp_path / "dropcopy-bad.log"
    lines = dc_log.read_text().splitlines(keepends=True)
    bad.write_text("".join(lines[:2]) + "this is not FIX\n" + "".join(lines[2:]))
    r = _cli(*[a if a != str(dc_log) else str(bad) for a in offline_args], "--out", str(tmp_path / "bad"))
    assert r.returncode == 2
    assert f"{bad}:3:" in r.stderr
    assert _comparable(tmp_path / "bad" / name)["breaks"] == off_r["breaks"]


def test_the_end_of_day_report_is_written_at_the_configured_time(stack) -> None:
    _run(stack, [], 2)
    gw = stack.gw
    # The daemon's own task, on a clock that reaches the configured minute 0.3 s from now.
    due = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    start = due - dt.timedelta(seconds=0.3)
    t0 = time.monotonic()

    def clock() -> dt.datetime:
        return start + dt.timedelta(seconds=time.monotonic() - t0)

    paths = asyncio.run(asyncio.wait_for(end_of_day(gw, due.strftime("%H:%M"), clock, once=True), 15))
    day = due.strftime("%Y%m%d")
    assert sorted(p.name for p in paths) == sorted(
        [f"recon-{day}.md", f"recon-{day}-breaks.csv", f"recon-{day}-positions.csv", f"recon-{day}.json"])
    assert all(p.parent == Path(gw.cfg.report_dir) and p.is_file() for p in paths)
    totals = json.loads((Path(gw.cfg.report_dir) / f"recon-{day}.json").read_text())["totals"]
    assert (totals["matched"], totals["open_breaks"]) == (2, 0)


def test_the_next_end_of_day_is_today_or_tomorrow() -> None:
    now = dt.datetime(2026, 3, 2, 21, 30, tzinfo=dt.timezone.utc)
    assert next_end_of_day(now, "22:00") == dt.datetime(2026, 3, 2, 22, 0, tzinfo=dt.timezone.utc)
    assert next_end_of_day(now, "21:30") == dt.datetime(2026, 3, 3, 21, 30, tzinfo=dt.timezone.utc)
    assert next_end_of_day(now, "06:00") == dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.timezone.utc)


def test_reconcile_names_a_missing_log_or_a_bad_format_instead_of_a_traceback(tmp_path) -> None:
    log = tmp_path / "gw.log"
    log.write_text("")
    base = ["--venue-comp-id", "VENUE", "--dropcopy-comp-id", "VENUE_DC", "--date", "20261202"]
    r = _cli("--gateway-log", str(log), "--dropcopy-log", str(tmp_path / "nope.log"), *base)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{tmp_path / 'nope.log'}: no such file" in r.stderr
    r = _cli("--gateway-log", str(log), "--dropcopy-log", str(log), *base, "--format", "pdf",
             "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "unknown report format(s) ['pdf']" in r.stderr


@pytest.mark.parametrize("date", ["2026-12-02", "20261302", "2026120"])
def test_reconcile_refuses_a_mistyped_trading_day(tmp_path, date) -> None:
    log = tmp_path / "gw.log"
    log.write_text("")
    r = _cli("--gateway-log", str(log), "--dropcopy-log", str(log), "--venue-comp-id", "VENUE",
             "--dropcopy-comp-id", "VENUE_DC", "--date", date, "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "not a trading day in the form YYYYMMDD" in r.stderr
    assert not (tmp_path / "out").exists()  # no empty report that would read as a clean day
