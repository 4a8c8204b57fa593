"""Temporary limit overrides over real FIX sessions: an override changes the decision until its expiry and not
after (the expiry is driven by an injected time), survives a restart, shows in status, and every decision it
affected records it."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from risk.overrides import Override, apply


def _er(client: Any, cl: str, exec_type: str) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type)


def test_an_override_holds_until_its_time_and_then_reverts_by_itself(stack: Any, tmp_path: Path) -> None:
    from gateway.control.admin import AdminServer
    from gateway.events import journal_query

    stack.start_sim()
    gw = stack.start_gateway()
    c = stack.client()
    c.new_order("B1", "ACC1", "AAPL", "1", 100, 190.0)
    _er(c, "B1", "F")
    until = time.time_ns() + 3600 * 10**9
    iso = dt.datetime.fromtimestamp(until / 1e9, dt.timezone.utc).isoformat()
    server = AdminServer(gw, tmp_path / "admin.sock")
    res = asyncio.run(server.dispatch({"cmd": "override", "scope": "account:ACC1", "limit": "qty_max=50",
                                       "until": iso, "who": "risk-carl", "why": "desk over its sizes today"}))
    oid, until = res["id"], res["until_ns"]  # the time as the gateway parsed it (µs in the text, float rounding)
    assert abs(until - (time.time_ns() + 3600 * 10**9)) < 10 * 10**9
    assert res["limits_version"].endswith(f"+OVR-{oid}")
    c.new_order("B2", "ACC1", "AAPL", "1", 100, 190.0)
    rej = _er(c, "B2", "8")
    assert rej[58].startswith("QTY_MAX:") and "limit 50" in rej[58]
    c.new_order("B3", "ACC2", "AAPL", "1", 100, 190.0)
    _er(c, "B3", "F")  # another account: not overridden
    status = asyncio.run(server.dispatch({"cmd": "status"}))
    assert [(o["scope"], o["limit"], o["value"]) for o in status["overrides"]] == [("account:ACC1", "qty_max", 50.0)]
    # a restart replays it
    stack.stop_gateway()
    gw = stack.start_gateway()
    assert c.wait_logon(15)
    c.new_order("B4", "ACC1", "AAPL", "1", 100, 190.0)
    assert _er(c, "B4", "8")[58].startswith("QTY_MAX:")
    assert gw.router.expire_overrides(until - 10**9) == []  # a second before: still in force
    c.new_order("B5", "ACC1", "AAPL", "1", 100, 190.0)
    assert _er(c, "B5", "8")[58].startswith("QTY_MAX:")
    assert gw.router.expire_overrides(until) == [oid]
    c.new_order("B6", "ACC1", "AAPL", "1", 100, 190.0)
    _er(c, "B6", "F")
    gw.journal.flush()
    rows = {r["cl_ord_id"]: r for r in journal_query.query(gw.journal.path)}
    assert all(f"+OVR-{oid}" in rows[cl]["limits_version"] for cl in ("B2", "B3", "B4", "B5"))
    assert "+OVR" not in rows["B1"]["limits_version"] and "+OVR" not in rows["B6"]["limits_version"]
    admin = [(r["action"], r["scope"], r["who"], r["why"]) for r in journal_query.query(gw.journal.path, table="admin")
             if r["action"].startswith("override")]
    assert admin == [("override set", "account:ACC1", "risk-carl", "desk over its sizes today"),
                     ("override end", "account:ACC1", "gateway", "expired")]


def test_an_override_that_does_not_fit_is_refused(stack: Any) -> None:
    stack.start_sim()
    gw = stack.start_gateway()
    later = time.time_ns() + 60 * 10**9
    for scope, limit, value, why in (("account:NOPE", "qty_max", 5.0, "unknown account"),
                                     ("account:ACC1", "collar_pct", 0.1, "not a limit of a account scope"),
                                     ("global", "qty_max", -1.0, "greater than 0"),
                                     ("desk:X", "qty_max", 5.0, "scope must be")):
        with pytest.raises(ValueError, match=why):
            gw.router.set_override(scope, limit, value, later, "ops", "test")
    with pytest.raises(ValueError, match="in the future"):
        gw.router.set_override("global", "qty_max", 5.0, time.time_ns() - 1, "ops", "test")
    assert gw.router.read(lambda ledger, risk: risk.overrides) == {}


def test_overrides_layer_on_the_limits_and_name_themselves_in_the_version() -> None:
    from config.risk_models import load_risk_config

    ex = Path(__file__).resolve().parents[1] / "config" / "examples"
    cfg = load_risk_config(ex / "instruments.csv", ex / "accounts.toml", ex / "limits.toml", ex / "scenarios.csv")
    out = apply(cfg, [Override("1", "instrument:AAPL", "qty_max", 5.0, 0), Override("2", "global", "qty_max", 7.0, 0)])
    assert out.limits.instruments["AAPL"].qty_max.limit == 5.0 and out.limits.global_.qty_max.limit == 7.0
    assert out.limits.global_.qty_max.warn == cfg.limits.global_.qty_max.warn  # the warn fraction stays
    assert out.limits_version == cfg.limits_version + "+OVR-1+OVR-2"
    assert apply(cfg, []) is cfg
