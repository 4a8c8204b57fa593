"""Fills without TransactTime (60, optional in FIX 4.4) are dated from what the report does carry:
TradeDate (75), else SendingTime (52, or OrigSendingTime 122 on a resend), else when the gateway got it."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import simplefix

from gateway.events.schema import Execution, decode
from gateway.recon.fixlog import reconcile_logs
from gateway.recon.model import from_fix
from gateway.recon.service import ReconService
from gateway.recon.store import ReconStore
from gateway.recon.feed import ReconFeed
from recon_testlib import DAY, DROPCOPY, GATEWAY, GRACE, MS, SEC, T0, VENUE, fill, fix_ts, log_line, to_fix

NEXT_DAY = T0 + 12 * 3600 * SEC  # 20261128-02:00, a day after DAY's T0


def _msg(**tags: str) -> dict[int, str]:
    base = {17: "E1", 37: "O1", 11: "C1", 1: "ACC1", 55: "XYZ", 54: "1", 32: "100", 31: "10.5", 150: "F"}
    return base | {int(k[1:]): v for k, v in tags.items()}


def test_trade_date_dates_a_fill_without_transact_time() -> None:
    rec = from_fix(_msg(t75="20261126", t52=fix_ts(T0)), "dropcopy", NEXT_DAY)
    assert (rec.trade_date, rec.transact_time) == ("20261126", "")


def test_sending_time_dates_it_without_trade_date() -> None:
    just_before_midnight = fix_ts(T0 + 9 * 3600 * SEC + 59 * 60 * SEC + 59 * SEC)  # 20261127-23:59:59
    rec = from_fix(_msg(t52=just_before_midnight), "dropcopy", NEXT_DAY)
    assert rec.trade_date == DAY  # not the day it was matched


def test_a_resend_is_dated_by_its_original_sending_time() -> None:
    rec = from_fix(_msg(t43="Y", t52=fix_ts(NEXT_DAY), t122=fix_ts(T0)), "dropcopy", NEXT_DAY)
    assert rec.trade_date == DAY and rec.poss_dup


def test_without_any_time_the_arrival_dates_it() -> None:
    assert from_fix(_msg(), "gateway", NEXT_DAY, arrived_ns=T0).trade_date == DAY
    assert from_fix(_msg(), "gateway", T0).trade_date == DAY  # arrival defaults to the receive stamp


def test_transact_time_still_wins_over_sending_time() -> None:
    rec = from_fix(_msg(t60=fix_ts(T0), t52=fix_ts(NEXT_DAY)), "gateway", NEXT_DAY)
    assert (rec.trade_date, rec.transact_time) == (DAY, fix_ts(T0))


def test_an_unparseable_sending_time_is_named() -> None:
    with pytest.raises(ValueError, match=r"invalid tag 52 \(SendingTime\)"):
        from_fix(_msg(t52="yesterday"), "dropcopy", T0)


def _feed(tmp_path: Path, now: int) -> tuple[ReconFeed, ReconService]:
    service = ReconService(ReconStore(tmp_path / "recon.sqlite"), GRACE, clock=lambda: now)
    return ReconFeed(service, lambda *a: None, lambda events: None), service


def _gateway_event(exec_id: str, ts: int, **extra: str) -> Execution:
    """A fill as the router logs it for a venue report without TransactTime or TradeDate (the log's line)."""
    return decode(json.dumps({"e": "X", "v": "G1-1", "n": 1, "x": "F", "id": exec_id, "os": "2", "oid": "O1", "lq": 100.0,
            "lp": 10.5, "ref": "", "s": "FIXGW->OMS1", "a": "ACC1", "sym": "XYZ", "side": "1", "cl": "C1",
            "ts": ts, "tt": "", "td": "", **extra}))  # type: ignore[return-value]


def test_a_gateway_fill_replayed_after_midnight_keeps_the_day_it_arrived(tmp_path: Path) -> None:
    feed, service = _feed(tmp_path, NEXT_DAY)  # the restart happens the next day
    assert feed.catch_up([_gateway_event("E1", T0)]) == 1
    assert service.rejected_messages == 0
    gw, _ = service.store.load_day(DAY)
    assert [(r.exec_id, r.transact_time) for r in gw] == [("E1", "")]


def test_the_router_sending_time_is_used_when_logged(tmp_path: Path) -> None:
    feed, service = _feed(tmp_path, NEXT_DAY)
    feed.catch_up([_gateway_event("E1", NEXT_DAY, st=fix_ts(T0))])  # sent before midnight, logged after
    assert [r.exec_id for r in service.store.load_day(DAY)[0]] == ["E1"]


def test_both_copies_without_transact_time_match_live(tmp_path: Path) -> None:
    now = [T0]
    service = ReconService(ReconStore(tmp_path / "recon.sqlite"), GRACE, clock=lambda: now[0])
    assert service.on_dropcopy_message(_msg(t52=fix_ts(T0))) == []
    now[0] += 5 * MS
    assert service.on_gateway_message(_msg(), arrived_ns=now[0]) == []
    now[0] += GRACE * 2
    assert service.tick() == []
    report = service.report(DAY, now[0])
    assert (report.matched, report.open_breaks, service.rejected_messages) == (1, 0, 0)


def _without_times(msg: simplefix.FixMessage) -> simplefix.FixMessage:
    msg.remove(60)
    msg.remove(75)
    return msg


def test_offline_logs_without_transact_time_reconcile_by_sending_time(tmp_path: Path) -> None:
    gw = [replace(fill("gateway", "E1", 1000), transact_time=""),
          replace(fill("gateway", "E2", 2000, qty=50), transact_time="")]
    dc = [replace(r, source="dropcopy", received_ns=r.received_ns + 3 * MS) for r in gw]
    gw_log, dc_log = tmp_path / "gw.log", tmp_path / "dc.log"
    gw_log.write_bytes(b"".join(log_line(r.received_ns, _without_times(to_fix(r, VENUE, GATEWAY, i)))
                                for i, r in enumerate(gw, start=2)))
    dc_log.write_bytes(b"".join(log_line(r.received_ns, _without_times(to_fix(r, DROPCOPY, GATEWAY, i)))
                                for i, r in enumerate(dc, start=2)))
    report, problems = reconcile_logs(gw_log, dc_log, VENUE, DROPCOPY, DAY, GRACE)
    assert problems == []
    assert (report.gateway_messages, report.dropcopy_messages, report.matched, report.breaks) == (2, 2, 2, ())
