"""Smoke test of the order-path benchmark (bench/): correctness only, never timing.

The arrangements (the three of the default run and the floor, bench/floor.py) run for a second at a low rate plus a tiny burst; every order must be answered, none
lost or rejected, and the results file, tables and plot inputs must be there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import loadclient  # noqa: E402
import report  # noqa: E402
import runner  # noqa: E402


def test_hand_formatted_order_is_what_simplefix_writes() -> None:
    args = ("BENCH", "FIXGW", 42, "20260101-12:00:00.123", "7-11", "ACC1", "AAPL", "2", "100", "190")
    assert loadclient.nos_bytes(*args) == loadclient.nos_simplefix(*args)


def test_percentiles_are_nearest_rank() -> None:
    s = list(range(1000, 1001000, 1000))  # 1..1000 us
    assert loadclient.pct(s, 50) == 500.0
    assert loadclient.pct(s, 99) == 990.0
    assert loadclient.pct(s, 99.9) == 999.0


@pytest.mark.timeout(60)
def test_every_arrangement_answers_every_order(tmp_path: Path) -> None:
    # the floor re-IDs every order: a report it failed to map back would reach the client under a ClOrdID
    # the client never sent, and count as lost
    code = runner.main(["--arrangements", "direct,passthrough,floor,gateway",
                        "--rates", "200", "--duration", "1", "--bursts", "50", "--warmup", "0",
                        "--ack-timeout", "5", "--out-dir", str(tmp_path), "--tag", "smoke"])
    files = list(tmp_path.glob("*-smoke.json"))
    assert len(files) == 1
    res = json.loads(files[0].read_text())
    assert code == 0, {n: a.get("error") for n, a in res["arrangements"].items()}
    assert set(res["arrangements"]) == {"direct", "passthrough", "floor", "gateway"}
    for name, arr in res["arrangements"].items():
        assert not arr["error"], (name, arr["error"])
        phases = {p["name"]: p for p in arr["phases"]}
        assert set(phases) == {"rate-200", "burst-50"}
        for p in phases.values():
            assert (p["sent"], p["acked"], p["lost"], p["rejects"]) == (p["planned"], p["planned"], 0, 0), (name, p)
            assert p["lat_us"]["n"] == p["planned"]
        assert arr["counts"]["session_rejects"] == 0 and arr["counts"]["business_rejects"] == 0
    md = (tmp_path / files[0].name.replace(".json", ".md")).read_text()
    assert "| 200 | gateway |" in md and "| 200 | floor |" in md
