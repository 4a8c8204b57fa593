"""A venue that leaves TransactTime (60, optional in FIX 4.4) out of its execution reports, over real sessions:
its fills are dated from what the reports carry and reconcile like any other, live and offline."""

from __future__ import annotations

import time

from gateway.recon import reconcile_logs

GRACE_S = 0.4


def _day() -> str:
    return time.strftime("%Y%m%d", time.gmtime())


def test_fills_without_transact_time_reconcile_live_and_offline(stack) -> None:
    stack.sim_cfg = stack.sim_cfg.model_copy(update={"omit_transact_time": True})
    stack.cfg = stack.cfg.model_copy(update={"reconciliation": stack.cfg.reconciliation.model_copy(
        update={"grace_s": GRACE_S})})
    stack.start_sim()
    gw = stack.start_gateway()
    assert gw.dropcopy_logged_on.wait(15)
    c = stack.client()
    c.new_order("A1", "ACC1", "AAPL", "1", 10, 190.0)
    c.new_order("M1", "ACC1", "MSFT", "2", 10, 410.0)
    fills = [c.wait_for(lambda m, cl=cl: m.get(11) == cl and m.get(150) == "F") for cl in ("A1", "M1")]
    assert all(60 not in f for f in fills)  # the venue really did leave it out
    assert gw.recon_feed.wait_seen("gateway", 2)
    assert gw.recon_feed.wait_seen("dropcopy", 2)

    assert gw.recon.rejected_messages == 0  # none logged as unusable
    day = _day()
    # As of well after every grace period: a copy that had not been matched would be a break by then.
    report = gw.recon.report(day, time.time_ns() + int(GRACE_S * 10e9))
    assert (report.gateway_messages, report.dropcopy_messages) == (2, 2)
    assert (report.matched, report.open_breaks, report.breaks) == (2, 0, ())
    gw_recs, dc_recs = gw.recon.store.load_day(day)
    assert {r.transact_time for r in gw_recs + dc_recs} == {""}  # no time made up for the venue

    stack.close()  # the message logs are complete
    logs = stack.cfg.state_dir / "fixlog"
    gw_log = next((logs / "venue").glob("FIX.4.4-*.messages.current.log"))
    dc_log = next((logs / "dropcopy").glob("FIX.4.4-*.messages.current.log"))
    offline, problems = reconcile_logs(gw_log, dc_log, "VENUE", "VENUE_DC", day, int(GRACE_S * 1e9))
    assert problems == []
    assert (offline.matched, offline.open_breaks, offline.breaks) == (2, 0, ())
