from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.recon.model import BreakType, format_ns
from gateway.recon.report import BREAK_COLUMNS, POSITION_COLUMNS, reconcile_records, write_reports
from recon_testlib import AS_OF, DAY, GRACE, MS, T0, clean_day, fill


def faulty_day():
    """Several faults at once, so every table has rows worth reading back."""
    gw, dc = clean_day()
    by_id = {r.exec_id: i for i, r in enumerate(dc)}
    dc[by_id["E2"]] = replace(dc[by_id["E2"]], last_qty=40.0)           # QTY_MISMATCH
    dc[by_id["E5"]] = replace(dc[by_id["E5"]], last_px=55.25)           # PRICE_MISMATCH
    del dc[by_id["E1"]]                                                  # MISSING_FROM_DROPCOPY
    dc.append(fill("dropcopy", "X9", 2500, order_id="O9", cl_ord_id="C9|pipe", account="ACC9", qty=5, px=20))
    return gw, sorted(dc, key=lambda r: r.received_ns)


def test_report_totals_and_tables(tmp_path: Path) -> None:
    gw, dc = faulty_day()
    report = reconcile_records(gw, dc, GRACE, AS_OF)
    assert report.trade_date == DAY
    assert (report.gateway_messages, report.dropcopy_messages, report.matched) == (7, 7, 6)
    assert report.open_by_type == {t.value: 0 for t in BreakType} | {
        "MISSING_FROM_DROPCOPY": 1, "UNKNOWN_TO_GATEWAY": 1, "QTY_MISMATCH": 1, "PRICE_MISMATCH": 1}

    paths = write_reports(report, tmp_path / "out")
    assert [p.name for p in paths] == [f"recon-{DAY}.md", f"recon-{DAY}-breaks.csv", f"recon-{DAY}-positions.csv",
                                       f"recon-{DAY}.json"]
    md, breaks_csv, positions_csv, js = (p.read_text(encoding="utf-8") for p in paths)

    rows = list(csv.DictReader(breaks_csv.splitlines()))
    assert list(rows[0]) == list(BREAK_COLUMNS)
    assert [(r["type"], r["exec_id"]) for r in rows] == [
        ("QTY_MISMATCH", "E2"), ("PRICE_MISMATCH", "E5"), ("MISSING_FROM_DROPCOPY", "E1"),
        ("UNKNOWN_TO_GATEWAY", "X9")]
    qty = rows[0]
    assert (qty["gw_qty"], qty["dc_qty"], qty["gw_px"], qty["dc_px"]) == ("50", "40", "10.01", "10.01")
    assert rows[3]["cl_ord_id"] == "C9|pipe" and rows[3]["gw_exec_id"] == "" and rows[3]["dc_qty"] == "5"

    positions = {(r["account"], r["symbol"]): r for r in csv.DictReader(positions_csv.splitlines())}
    assert list(next(iter(positions.values()))) == list(POSITION_COLUMNS)
    assert positions[("ACC1", "XYZ")]["diff"] == "110"  # E1 missing (100) and E2 short by 10
    assert positions[("ACC9", "XYZ")]["diff"] == "-5"

    data = json.loads(js)
    assert list(data) == ["trade_date", "as_of", "grace_seconds", "totals", "breaks", "positions", "input_problems"]
    assert data["totals"]["matched"] == 6 and data["totals"]["open_breaks"] == 4
    assert data["breaks"][0]["gateway"]["qty"] == 50 and data["breaks"][0]["dropcopy"]["qty"] == 40
    assert data["breaks"][2]["detected_at"] == format_ns(T0 + 1000 * MS + GRACE)

    assert md.startswith("# Reconciliation report: trading day 2026-11-27\n")
    assert "| QTY_MISMATCH | OPEN | 0 | 1 |" not in md  # counts table is by type, not by row
    assert "| QTY_MISMATCH | 1 | 0 |" in md
    assert ("| QTY_MISMATCH:E2 | QTY_MISMATCH | OPEN | ACC1 | XYZ | O1 | C1 | E2 | F | 1 | 50 | 10.01 | "
            "20261127-14:00:01.990 | E2 | F | 1 | 40 | 10.01 | 20261127-14:00:01.990 |") in md
    assert "| UNKNOWN_TO_GATEWAY:X9:F | UNKNOWN_TO_GATEWAY | OPEN | ACC9 | XYZ | O9 | C9\\|pipe |" in md
    assert "| ACC1 | XYZ | 150 | 40 | 110 |" in md
    assert "Matched: 6 (on ExecID 6, on OrderID/ClOrdID 0). Open breaks: 4. Resolved breaks: 0." in md


def test_clean_day_report(tmp_path: Path) -> None:
    gw, dc = clean_day()
    report = reconcile_records(gw, dc, GRACE, AS_OF)
    (md,) = write_reports(report, tmp_path, formats=["md"])
    text = md.read_text()
    assert "## Breaks\n\nNone.\n" in text and "None (4 account/instrument positions agree)." in text
    assert report.open_breaks == 0 and report.breaks == ()


def test_reports_are_deterministic(tmp_path: Path) -> None:
    gw, dc = faulty_day()
    a = write_reports(reconcile_records(gw, dc, GRACE, AS_OF), tmp_path / "a")
    b = write_reports(reconcile_records(list(gw), list(dc), GRACE, AS_OF), tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert not list((tmp_path / "a").glob(".*"))  # no temp files left behind


def test_pending_records_are_not_breaks_before_grace_ends() -> None:
    gw, dc = faulty_day()
    report = reconcile_records(gw, dc, GRACE, as_of_ns=T0 + 8 * 1000 * MS)
    assert report.open_by_type["MISSING_FROM_DROPCOPY"] == 0 and report.pending_gateway == 1
    assert report.open_by_type["UNKNOWN_TO_GATEWAY"] == 0 and report.pending_dropcopy == 1


def test_bad_inputs() -> None:
    gw, dc = clean_day()
    with pytest.raises(ValueError, match="several trading days"):
        reconcile_records(gw + [replace(gw[0], exec_id="Z", trade_date="20261128")], dc, GRACE, AS_OF)
    report = reconcile_records(gw + [replace(gw[0], exec_id="Z", trade_date="20261128")], dc, GRACE, AS_OF,
                               trade_date=DAY)
    assert report.breaks == ()
    with pytest.raises(ValueError, match="unknown report format"):
        write_reports(report, "/nonexistent", formats=["pdf"])
