"""Golden replay: recorded event logs rebuild the same ledger, risk state and journal rows, whatever the code's shape.

The logs under tests/golden/ were recorded by the gateway (`fixgw demo`, and the two days of the docs'
walkthrough, a rollover between them); `expected.json` is what the code of commit f675e1e built from them,
before the redesign of issue 14. A change to how events are written, read or applied that moves any of it
fails here. Regenerate (only for an intended change of behaviour, and say why in the commit):
`FIXGW_GOLDEN_WRITE=1 .venv/bin/python -m pytest tests/test_golden_replay.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from config.risk_models import load_risk_config
from gateway.events.journal import DECISION_COLS, Journal
from gateway.events.log import EventLog
from gateway.orders.ledger import Ledger
from gateway.orders.lifecycle import replay_log
from gateway.orders.risk_stage import RiskStage

GOLDEN = Path(__file__).parent / "golden"
RISK = GOLDEN / "risk"
DAYS = ("demo-day", "walk-day1", "walk-day2")
SESSIONS = ["FIXGW->OMS1", "FIXGW->OMS2"]  # the demo config's clients, in its order
MAX_ORDERS = 4096


def _num(x: Any) -> Any:
    return None if isinstance(x, float) and math.isnan(x) else x


# Order fields added after the recording (issue 15's controls): empty on these days, so left out of the comparison.
LATER_FIELDS = {"trader", "strategy", "owner"}


def _ledger(ledger: Ledger) -> dict[str, Any]:
    return {
        "orders": [{f.name: _num(getattr(o, f.name)) for f in dataclasses.fields(o)
                    if not (f.name in LATER_FIELDS and getattr(o, f.name) == "")} for o in ledger.orders.values()],
        "open": sorted(ledger.open),
        "requests": sorted([r.order.number, r.kind, r.cl_ord_id, r.orig_cl_ord_id, r.venue_cl_ord_id,
                            r.venue_orig_cl_ord_id, _num(r.qty), _num(r.price)] for r in ledger.by_venue.values()),
        "by_client": sorted([s, cl, r.venue_cl_ord_id] for (s, cl), r in ledger.by_client.items()),
        "exec_ids": sorted(exec_id for _number, exec_id in ledger.exec_ids),
        "fills": sorted([exec_id, *v] for (_number, exec_id), v in ledger.fills.items()),
        "rejected_ids": sorted(map(list, ledger.rejected_ids)),
        "prior_ids": sorted(map(list, ledger.prior_ids)),
        "next_number": ledger.next_number,
        "next_request": ledger.next_request,
    }


def _risk(stage: RiskStage) -> dict[str, Any]:
    e = stage.engine
    book = {}
    for a, acc in enumerate(e.account_names):
        for i, sym in enumerate(e.instrument_symbols):
            pos, avg, expo = e.position(a, i), e.avg_cost(a, i), e.open_exposure(a, i)
            if pos or any(expo):
                book[f"{acc}/{sym}"] = [pos, _num(avg), list(expo)]
    money = {acc: [e.cash(a), e.equity(a)] for a, acc in enumerate(e.account_names)}
    buffers = hashlib.sha256(b"".join(b.tobytes() for b in e.snapshot())).hexdigest()
    return {"book": book, "money": money, "buffers_sha256": buffers}


def _journal(events_file: Path, db_path: Path) -> dict[str, list[list[Any]]]:
    journal = Journal(db_path)
    journal.catch_up(EventLog.read(events_file))
    journal.stop()
    db = sqlite3.connect(db_path)
    try:
        # the columns the recording's journal had: later ones (LATER_DECISION_COLS after account_defaulted) are
        # empty for these days
        cols = {"decisions": ",".join(DECISION_COLS[:DECISION_COLS.index("account_defaulted") + 1])}
        return {t: [list(r) for r in db.execute(f"SELECT {cols.get(t, '*')} FROM {t} ORDER BY q")]
                for t in ("decisions", "fills", "admin", "trading_days")}
    finally:
        db.close()


def rebuild(day: str, tmp: Path) -> dict[str, Any]:
    events_file = GOLDEN / f"{day}.events.log"
    cfg = load_risk_config(RISK / "instruments.csv", RISK / "accounts.toml", RISK / "limits.toml",
                           RISK / "scenarios.csv")
    ledger = Ledger()
    stage = RiskStage(cfg, SESSIONS, ledger.fills, MAX_ORDERS)
    applied = replay_log(EventLog.read(events_file), ledger, stage)
    # JSON round trip: the expected file holds lists where the dump holds tuples
    return json.loads(json.dumps({"applied": applied, "ledger": _ledger(ledger), "risk": _risk(stage),
                                  "journal": _journal(events_file, tmp / f"{day}.sqlite")}))


@pytest.mark.parametrize("day", DAYS)
def test_a_recorded_day_rebuilds_exactly_what_it_did_before_the_redesign(day: str, tmp_path: Path) -> None:
    got = rebuild(day, tmp_path)
    expected_file = GOLDEN / f"{day}.expected.json"
    if os.environ.get("FIXGW_GOLDEN_WRITE"):
        expected_file.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(expected_file.read_text())
    assert got["applied"] == expected["applied"]
    assert got["ledger"] == expected["ledger"]
    assert got["risk"] == expected["risk"]
    assert got["journal"] == expected["journal"]
    assert got["ledger"]["orders"] and got["journal"]["decisions"] or day == "walk-day2"
