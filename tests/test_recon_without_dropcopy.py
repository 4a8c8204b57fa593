"""No drop-copy session configured ([dropcopy] absent or enabled = false): reconciliation is off, over real
sessions. Fills open no break, the recon gauges stay unset, no end-of-day report is written, and
`fixgw reconcile --config` says so and exits 0 (the offline, log-based form is untouched)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.control.daemon import end_of_day
from gwtest import write_config

GRACE_S = 0.4
REASONS = {"absent": "no [dropcopy] session is configured",
           "disabled": "the [dropcopy] session is disabled (enabled = false)"}


def _day() -> str:
    return time.strftime("%Y%m%d", time.gmtime())


@pytest.fixture(params=sorted(REASONS))
def without_dropcopy(request, stack):
    rc = stack.cfg.reconciliation.model_copy(update={"grace_s": GRACE_S})
    if request.param == "absent":
        dropcopy = None
        stack.sim_cfg = stack.sim_cfg.model_copy(update={"dropcopy": []})  # nor does the venue offer one
    else:
        dropcopy = stack.cfg.dropcopy.model_copy(update={"enabled": False})  # offered, but turned off here
    stack.cfg = stack.cfg.model_copy(update={"dropcopy": dropcopy, "reconciliation": rc})
    stack.kind = request.param
    return stack


def _recon_gauge_samples(gw) -> list:
    return [s for m in gw.metrics.registry.collect() if m.name == "fixgw_recon_open_breaks" for s in m.samples]


def test_fills_open_no_break_and_reconcile_says_off(without_dropcopy, tmp_path: Path, capsys) -> None:
    stack = without_dropcopy
    stack.start_sim()
    gw = stack.start_gateway()
    c = stack.client()
    c.new_order("A1", "ACC1", "AAPL", "1", 10, 190.0)
    c.new_order("M1", "ACC1", "MSFT", "2", 10, 410.0)
    for cl in ("A1", "M1"):
        # The router logs a fill (and so hands it to every event-log subscriber) before forwarding it.
        c.wait_for(lambda m, cl=cl: m.get(11) == cl and m.get(150) == "F")
    assert gw.recon_feed.drain()

    day = _day()
    gw.recon_feed.tick()
    # As of well after every grace period: a stored fill without its copy would be a break by then.
    report = gw.recon.report(day, time.time_ns() + int(GRACE_S * 10e9))
    assert (report.gateway_messages, report.open_breaks, report.breaks) == (0, 0, ())
    assert gw.recon.store.trade_dates() == []
    assert gw.metrics.alerts.labels("RECON_BREAK")._value.get() == 0
    gw.refresh_gauges()
    assert _recon_gauge_samples(gw) == []  # not fed, rather than a row of zeros that reads as "all clear"

    # The end-of-day job, on a clock that reaches the configured minute 0.3 s from now: nothing written.
    due = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    start, t0 = due - dt.timedelta(seconds=0.3), time.monotonic()
    paths = asyncio.run(asyncio.wait_for(end_of_day(gw, due.strftime("%H:%M"),
                                                    lambda: start + dt.timedelta(seconds=time.monotonic() - t0),
                                                    once=True), 15))
    assert paths == []
    assert not Path(gw.cfg.report_dir).exists() or list(Path(gw.cfg.report_dir).iterdir()) == []

    stack.close()
    cfg_path = write_config(stack.cfg, tmp_path / "gw.toml")
    capsys.readouterr()
    out_dir = tmp_path / "reports"
    assert main(["reconcile", "--config", str(cfg_path), "--date", day, "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert out == f"reconciliation is off: {REASONS[stack.kind]} in {cfg_path}\n"
    assert not out_dir.exists()  # no report that could be read as a clean day
