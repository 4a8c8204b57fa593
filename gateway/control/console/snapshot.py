"""What the console's page shows, read from the running gateway in one go.

The state the admin socket's `status` answers with (sessions, open orders, utilisation, switches, breakers,
overrides: one short hold of the order path's lock), plus each limit's warn fraction, the time of each session's
last message, the newest decisions and today's surveillance alerts from the journal (read-only), the open
reconciliation breaks and the alert counters. Built on a worker thread, a few times a second at most, and only
while a page is open.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gateway.control.admin import status
from gateway.events.journal import open_readonly
from gateway.orders.ledger import Ledger
from gateway.orders.risk_stage import RiskStage
from gateway.service import Gateway

DECISIONS = 40
ALERTS = 30


@dataclass
class Snapshot:
    status: dict[str, Any]
    taken_at: float
    last_received: dict[str, float] = field(default_factory=dict)
    warn: dict[str, dict[str, float]] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    breaks: list[dict[str, Any]] = field(default_factory=list)
    alert_counts: dict[str, float] = field(default_factory=dict)


def take(gw: Gateway, started: float) -> Snapshot:
    snap = Snapshot(status(gw, started, flush=False, disk=False), time.time(), gw.last_received())

    def warn(ledger: Ledger, risk: RiskStage | None) -> None:
        if risk is not None:
            e = risk.engine
            snap.warn = {acc: e.warn_fractions(a) for a, acc in enumerate(e.account_names)}

    gw.router.read(warn)
    db = open_readonly(gw.journal.path)
    try:
        snap.decisions = [dict(r) for r in db.execute(
            "SELECT q, ts, kind, session, account, cl_ord_id, symbol, side, qty, price, decision, code, detail "
            f"FROM decisions ORDER BY q DESC LIMIT {DECISIONS}")]
        day = db.execute("SELECT q FROM trading_days WHERE day = ? ORDER BY q DESC LIMIT 1",
                         (gw.trading_day,)).fetchone()
        snap.alerts = [dict(r) for r in db.execute(
            "SELECT ts, code, account, symbol, detail, orders FROM alerts WHERE q >= ? ORDER BY q DESC "
            f"LIMIT {ALERTS}", (day[0] if day else 0,))]
    finally:
        db.close()
    if gw.recon_feed.enabled:
        snap.breaks = gw.recon.store.open_breaks()
    for metric in gw.metrics.registry.collect():
        if metric.name == "fixgw_alerts":
            snap.alert_counts = {s.labels["code"]: s.value for s in metric.samples if s.name.endswith("_total")}
    return snap
