"""In-line enforcement over real FIX sessions: rejects carry the promised fields and reach nothing at the venue,
exposure follows the lifecycle, a restart rebuilds it, every decision is journaled, metrics are served."""

from __future__ import annotations

import math
import urllib.request

import pytest

from sim.demo import free_port
from risk.reasons import CATALOGUE

S1 = "FIXGW->OMS1"


def _er(client, cl: str, exec_type: str, status: str | None = None) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type
                           and (status is None or m.get(39) == status))


def _expected_103(code: str) -> str:
    r = CATALOGUE[code].ord_rej_reason
    return str(99 if r is None else r)


# (code, client, account, symbol, side, qty, price) — each provoked with the example limits in config/examples.
REJECTS = [
    ("QTY_MAX", "OMS1", "ACC1", "AAPL", "1", 20_000, 190.0),
    ("QTY_MIN", "OMS1", "ACC1", "AAPL", "1", 0.5, 190.0),
    ("NOTIONAL_MAX", "OMS1", "ACC1", "AAPL", "1", 6_000, 190.0),
    ("PRICE_COLLAR", "OMS1", "ACC1", "AAPL", "1", 10, 250.0),
    ("PRICE_TICK", "OMS1", "ACC1", "AAPL", "1", 10, 190.001),
    ("NO_REFERENCE_PRICE", "OMS2", "ACC3", "NEWCO", "1", 10, 5.0),
    ("UNKNOWN_INSTRUMENT", "OMS1", "ACC1", "ZZZZ", "1", 10, 5.0),
    ("INSTRUMENT_NOT_PERMITTED", "OMS2", "ACC3", "JPM", "1", 10, 200.0),
    ("RESTRICTED_INSTRUMENT", "OMS1", "ACC1", "GS", "1", 10, 450.0),
    ("INVALID_QTY", "OMS1", "ACC1", "AAPL", "1", 2e9, 190.0),
    ("INVALID_PRICE", "OMS1", "ACC1", "AAPL", "1", 10, 2e9),
    ("INVALID_ORDER", "OMS1", "", "AAPL", "1", 10, 190.0),
    ("ACCOUNT_NOT_PERMITTED", "OMS1", "ACC3", "AAPL", "1", 10, 190.0),
]


@pytest.mark.parametrize("code,who,account,symbol,side,qty,price", REJECTS, ids=[r[0] for r in REJECTS])
def test_reject_code_reaches_the_client_and_nothing_the_venue(running, code, who, account, symbol, side, qty,
                                                              price) -> None:
    c = running.client(who)
    c.new_order("R1", account, symbol, side, qty, price)
    rej = _er(c, "R1", "8", "8")
    assert rej[58].startswith(code + ":"), rej[58]
    assert f"docs/runbooks/{code}.md" in rej[58]
    assert rej[103] == _expected_103(code)
    assert (rej[39], rej[151], rej[14]) == ("8", "0", "0")
    assert running.sim.orders == {}
    running.gw.journal.flush()
    rows = _decisions(running)
    assert [(r["decision"], r["code"], r["cl_ord_id"]) for r in rows] == [("reject", code, "R1")]


def test_figures_are_in_the_text(running) -> None:
    c = running.client()
    c.new_order("Q1", "ACC1", "AAPL", "1", 20_000, 190.0)
    rej = _er(c, "Q1", "8")
    assert "20000" in rej[58] and "10000" in rej[58]


def test_duplicate_clordid_is_rejected_and_the_first_order_stands(running) -> None:
    c = running.client()
    c.new_order("D1", "ACC1", "AAPL", "1", 10, 190.0)
    _er(c, "D1", "F", "2")
    c.new_order("D1", "ACC1", "AAPL", "1", 10, 190.0)
    rej = c.wait_for(lambda m: m.get(11) == "D1" and m.get(150) == "8")
    assert rej[58].startswith("DUPLICATE_CLORDID") and rej[103] == _expected_103("DUPLICATE_CLORDID")
    assert len(running.sim.orders) == 1


def test_order_rate_throttle(running) -> None:
    c = running.client("OMS2")  # ACC3: 5 orders a second
    for n in range(6):
        c.new_order(f"T{n}", "ACC3", "AAPL", "1", 1, 190.0)
    rej = _er(c, "T5", "8", "8")
    assert rej[58].startswith("ORDER_RATE")
    assert all(_er(c, f"T{n}", "F") for n in range(5))


def test_replace_over_a_limit_gets_a_cancel_reject_and_the_order_stands(running) -> None:
    c = running.client()
    c.new_order("J1", "ACC1", "JPM", "1", 100, 200.0)
    _er(c, "J1", "0")
    c.replace("J2", "J1", "JPM", "1", 20_000, 200.0, "ACC1")
    rej = c.wait_for(lambda m: m.get(35) == "9" and m.get(11) == "J2")
    assert (rej[434], rej[41]) == ("2", "J1")
    assert rej[58].startswith("QTY_MAX")
    assert rej[102] == str(CATALOGUE["QTY_MAX"].cxl_rej_reason)
    (venue_order,) = running.sim.orders.values()
    assert venue_order.qty == 100


def test_sector_budget_counts_filled_positions(running) -> None:
    c = running.client()
    for n in range(2):  # 2 x 950k of TECH fills
        c.new_order(f"S{n}", "ACC1", "AAPL", "1", 5_000, 190.0)
        _er(c, f"S{n}", "F", "2")
    c.new_order("S2", "ACC1", "MSFT", "1", 2_000, 410.0)  # +820k > 2.5M TECH budget
    rej = _er(c, "S2", "8")
    assert rej[58].startswith("SECTOR_EXPOSURE")


def test_pre_trade_var_limit_and_warnings_on_the_way(running) -> None:
    c = running.client()
    c.new_order("V1", "ACC2", "JPM", "1", 4_900, 200.0)  # 980k of JPM: scenario VaR ~46.6k > 30k for ACC2
    rej = _er(c, "V1", "8")
    assert rej[58].startswith("VAR_LIMIT")
    c.new_order("V2", "ACC1", "JPM", "1", 4_500, 200.0)  # ACC1's VaR limit is 120k; 900k is over 80% of notional
    _er(c, "V2", "0")
    running.gw.journal.flush()
    v2 = [r for r in _decisions(running) if r["cl_ord_id"] == "V2"][0]
    assert (v2["decision"], v2["code"], v2["value"], v2["limit_value"]) == ("warn", "NOTIONAL_MAX", 900_000,
                                                                           1_000_000)


def test_kill_switch_blocks_and_cancels_then_reduce_only_lets_reducing_orders_through(running) -> None:
    c = running.client()
    c.new_order("K1", "ACC1", "JPM", "1", 100, 200.0)  # rests
    _er(c, "K1", "0")
    c.new_order("K2", "ACC1", "AAPL", "1", 100, 190.0)  # fills: long 100 AAPL
    _er(c, "K2", "F", "2")
    res = running.gw.set_switch("kill", "account", "ACC1", True, "ops@desk", "test drill")
    assert res["cancelled"] == 1
    unsolicited = _er(c, "K1", "4", "4")
    assert 41 not in unsolicited
    c.new_order("K3", "ACC1", "AAPL", "2", 10, 190.0)
    assert _er(c, "K3", "8")[58].startswith("KILL_SWITCH_ACCOUNT")
    running.gw.set_switch("kill", "account", "ACC1", False, "ops@desk", "drill over")
    running.gw.set_switch("reduce_only", "account", "ACC1", True, "ops@desk", "wind down")
    c.new_order("K4", "ACC1", "AAPL", "1", 10, 190.0)
    assert _er(c, "K4", "8")[58].startswith("REDUCE_ONLY")
    c.new_order("K5", "ACC1", "AAPL", "2", 60, 190.0)
    _er(c, "K5", "F", "2")
    running.gw.set_switch("kill", "global", "", True, "ops@desk", "market halt")
    c.new_order("K6", "ACC1", "AAPL", "2", 10, 190.0)
    assert _er(c, "K6", "8")[58].startswith("KILL_SWITCH_GLOBAL")
    running.gw.journal.flush()
    admin = running.gw.journal._db.execute("SELECT action, scope, who, why FROM admin ORDER BY q").fetchall()
    assert admin[0] == ("kill on", "account:ACC1", "ops@desk", "test drill")
    assert len(admin) == 4


def test_a_failing_check_rejects_with_check_error_and_the_session_stays_up(running, monkeypatch) -> None:
    c = running.client()

    def broken(*args, **kwargs):
        raise FloatingPointError("corrupt state")

    monkeypatch.setattr(running.gw.risk.engine, "check_new", broken)
    c.new_order("E1", "ACC1", "AAPL", "1", 10, 190.0)
    assert _er(c, "E1", "8")[58].startswith("CHECK_ERROR")
    monkeypatch.undo()
    c.new_order("E2", "ACC1", "AAPL", "1", 10, 190.0)
    _er(c, "E2", "F", "2")
    assert running.sim.orders and len(running.sim.orders) == 1


def _decisions(stack) -> list[dict]:
    cur = stack.gw.journal._db.execute("SELECT * FROM decisions ORDER BY q")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _script_part1(c, sim, gw) -> None:
    c.new_order("A1", "ACC1", "AAPL", "1", 100, 190.0)  # full fill
    _er(c, "A1", "F", "2")
    c.new_order("M1", "ACC1", "MSFT", "2", 200, 410.0)  # 100 filled, 100 open
    _er(c, "M1", "F", "1")
    c.new_order("J1", "ACC1", "JPM", "1", 300, 200.0)  # rests
    _er(c, "J1", "0")
    c.new_order("X1", "ACC2", "XOM", "1", 10, 110.0)  # venue reject
    _er(c, "X1", "8")


def _script_part2(c, sim, gw) -> None:
    c.replace("J2", "J1", "JPM", "1", 400, 201.0, "ACC1")
    _er(c, "J2", "5")
    venue_cl = gw.router.ledger.find(S1, "J2").venue_cl_ord_id
    sim.fill_open(venue_cl, 150)
    _er(c, "J2", "F", "1")
    c.cancel("J3", "J2", "JPM", "1", "ACC1")
    _er(c, "J3", "4", "4")


def _flat(book: dict) -> dict[str, float]:
    out = {}
    for k, v in book.items():
        if isinstance(v, tuple):
            out.update({f"{k}.{n}": x for n, x in zip(("pos", "open_buy", "open_sell"), v)})
        else:
            out[k] = v
    return out


def _book(gw) -> dict[str, float]:
    e = gw.risk.engine
    a = e.account_index("ACC1")
    out = {}
    for sym in ("AAPL", "MSFT", "JPM"):
        i = e.instrument_index(sym)
        buy, sell = e.open_exposure(a, i)
        out[sym] = (e.position(a, i), buy, sell)
    out["cash"] = e.cash(a)
    out["XOM/ACC2"] = (e.position(e.account_index("ACC2"), e.instrument_index("XOM")),
                       *e.open_exposure(e.account_index("ACC2"), e.instrument_index("XOM")))
    return _flat(out)


# Worked by hand: AAPL +100 @190; MSFT -100 @410 with 100 still offered; JPM 150 @201 bought, rest cancelled;
# XOM rejected by the venue leaves nothing. Cash: 2,000,000 - 19,000 + 41,000 - 30,150.
EXPECTED = _flat({"AAPL": (100.0, 0.0, 0.0), "MSFT": (-100.0, 0.0, 100.0), "JPM": (150.0, 0.0, 0.0),
                  "cash": 1_991_850.0, "XOM/ACC2": (0.0, 0.0, 0.0)})


def test_exposure_after_a_scripted_lifecycle_equals_the_hand_computed_book(running) -> None:
    c = running.client()
    _script_part1(c, running.sim, running.gw)
    _script_part2(c, running.sim, running.gw)
    assert _book(running.gw) == pytest.approx(EXPECTED)


def test_a_restart_in_the_middle_of_the_script_ends_with_the_same_book(running) -> None:
    c = running.client()
    _script_part1(c, running.sim, running.gw)
    before = _book(running.gw)
    running.stop_client(c)
    running.stop_gateway()
    gw = running.start_gateway()
    assert _book(gw) == pytest.approx(before)
    c = running.client(name="oms1")
    _script_part2(c, running.sim, gw)
    assert _book(gw) == pytest.approx(EXPECTED)


def test_journal_holds_one_row_per_decision_and_each_fill(running) -> None:
    c = running.client()
    _script_part1(c, running.sim, running.gw)
    c.new_order("Q9", "ACC1", "AAPL", "1", 20_000, 190.0)  # rejected
    _er(c, "Q9", "8")
    _script_part2(c, running.sim, running.gw)
    running.gw.journal.flush()
    rows = _decisions(running)
    assert [(r["kind"], r["cl_ord_id"], r["decision"]) for r in rows] == [
        ("D", "A1", "accept"), ("D", "M1", "accept"), ("D", "J1", "accept"), ("D", "X1", "accept"),
        ("D", "Q9", "reject"), ("G", "J2", "accept"), ("F", "J3", "accept")]
    q9 = rows[4]
    assert (q9["code"], q9["value"], q9["limit_value"], q9["account"], q9["symbol"]) == \
        ("QTY_MAX", 20_000, 10_000, "ACC1", "AAPL")
    assert all(r["limits_version"] == running.gw.risk.limits_version for r in rows)
    fills = running.gw.journal._db.execute("SELECT cl_ord_id, last_qty, last_px FROM fills ORDER BY q").fetchall()
    assert fills == [("A1", 100, 190.0), ("M1", 100, 410.0), ("J2", 150, 201.0)]


def test_journal_query_command(running, tmp_path) -> None:
    import subprocess
    import sys

    c = running.client()
    c.new_order("Q1", "ACC1", "AAPL", "1", 20_000, 190.0)
    _er(c, "Q1", "8")
    c.new_order("A1", "ACC1", "AAPL", "1", 5, 190.0)
    _er(c, "A1", "F")
    running.gw.journal.flush()
    db = running.cfg.state_dir / "journal.sqlite"
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "journal", "--db", str(db), "--code", "QTY_MAX",
                        "--format", "csv"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and ",Q1," in lines[1] and "QTY_MAX" in lines[1]
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "journal", "--db", str(db), "--account", "ACC1",
                        "--since", "2000-01-01T00:00:00", "--format", "json"], capture_output=True, text=True,
                       timeout=60)
    import json
    assert [row["cl_ord_id"] for row in json.loads(r.stdout)] == ["Q1", "A1"]


def test_metrics_endpoint_serves_the_counters(stack) -> None:
    port = free_port()
    stack.cfg = stack.cfg.model_copy(update={"metrics": stack.cfg.metrics.model_copy(update={"port": port})})
    stack.start_sim()
    stack.start_gateway()
    c = stack.client()
    c.new_order("Q1", "ACC1", "AAPL", "1", 20_000, 190.0)
    _er(c, "Q1", "8")
    c.new_order("A1", "ACC1", "AAPL", "1", 5, 190.0)
    _er(c, "A1", "F")
    stack.gw.refresh_gauges()
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'fixgw_requests_rejected_total{code="QTY_MAX",kind="new"} 1.0' in body
    assert 'fixgw_requests_accepted_total{kind="new"} 1.0' in body
    assert 'fixgw_requests_checked_total{kind="new"} 2.0' in body
    assert "fixgw_check_latency_seconds_count 2.0" in body
    assert 'fixgw_session_logged_on{role="venue",session="FIX.4.4:FIXGW->VENUE"} 1.0' in body
    assert 'fixgw_limit_utilisation_ratio{account="ACC1",limit="gross_exposure"}' in body
    util = [ln for ln in body.splitlines() if ln.startswith('fixgw_limit_utilisation_ratio{account="ACC1",limit="gross')]
    assert math.isclose(float(util[0].split()[-1]), 950.0 / 5_000_000)


def test_busts_corrections_and_unsolicited_cancels_move_the_book(running) -> None:
    c = running.client()
    gw, sim = running.gw, running.sim
    e = gw.risk.engine
    a, aapl, jpm = e.account_index("ACC1"), e.instrument_index("AAPL"), e.instrument_index("JPM")
    c.new_order("B1", "ACC1", "AAPL", "1", 100, 190.0)
    fill = _er(c, "B1", "F", "2")
    c.new_order("B2", "ACC1", "AAPL", "1", 50, 190.0)
    fill2 = _er(c, "B2", "F", "2")
    assert e.position(a, aapl) == 150
    sim.correct(fill[17], 80, 189.5)  # the first fill was really 80 @ 189.5
    g = _er(c, "B1", "G")
    assert (g[19], g[32]) == (fill[17], "80")
    assert e.position(a, aapl) == 130
    sim.bust(fill2[17])  # the second never happened
    h = _er(c, "B2", "H")
    assert h[19] == fill2[17]
    assert e.position(a, aapl) == 80
    cash = 2_000_000 - 80 * 189.5
    assert e.cash(a) == pytest.approx(cash)
    # The simulated venue reopens what a bust or correction un-fills: those leaves are reserved again.
    assert sorted((o.cl_ord_id, o.leaves_qty) for o in gw.router.ledger.open_orders()) == [("B1", 20), ("B2", 50)]
    assert e.open_exposure(a, aapl) == (70.0, 0.0)
    c.new_order("U1", "ACC1", "JPM", "1", 100, 200.0)  # rests
    _er(c, "U1", "0")
    assert e.open_exposure(a, jpm) == (100.0, 0.0)
    venue_cl = gw.router.ledger.find(S1, "U1").venue_cl_ord_id
    sim.cancel_unsolicited(venue_cl)  # the venue cancels on its own
    _er(c, "U1", "4", "4")
    assert e.open_exposure(a, jpm) == (0.0, 0.0)
    assert "U1" not in [o.cl_ord_id for o in gw.router.ledger.open_orders()]
