"""The controls beyond limits (risk.controls) over real FIX sessions: kill switches by trader, strategy and
session, short-sale locates, self-match prevention, circuit breakers and operator halts. For each: what trips
it, what the client receives, what the venue receives, the journal row, the alert and the metric."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from config.settings import BreakerSettings, ControlsSettings, SelfMatchGroup, SelfMatchSettings, ShortSaleSettings

S1, S2 = "FIXGW->OMS1", "FIXGW->OMS2"
STRATEGY, SMP_ID, LOCATE = 7940, 7928, 5700


def _controls(stack: Any, locates: str | None = None, **kw: Any) -> None:
    upd: dict[str, Any] = {"controls": ControlsSettings(strategy_tag=STRATEGY, **kw)}
    if locates is not None:
        path = stack.tmp / "locates.csv"
        path.write_text("account,symbol,quantity\n" + locates)
        upd["risk"] = stack.cfg.risk.model_copy(update={"locates": path})
    stack.cfg = stack.cfg.model_copy(update=upd)


@pytest.fixture
def controlled(stack: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The demo stack with the controls a test's `controls` marker names."""
    marker = request.node.get_closest_marker("controls")
    _controls(stack, **(marker.kwargs if marker else {}))
    stack.start_sim()
    stack.start_gateway()
    yield stack


def _er(client: Any, cl: str, exec_type: str) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type)


def _rows(stack: Any, table: str = "decisions") -> list[dict[str, Any]]:
    from gateway.events import journal_query

    stack.gw.journal.flush()
    return journal_query.query(stack.gw.journal.path, table=table)


def _rejected(stack: Any, code: str) -> float:
    """fixgw_requests_rejected_total{kind="new", code}."""
    return stack.gw.metrics.rejected.labels("new", code)._value.get()


def _venue_has(stack: Any, cl: str) -> bool:
    """Whether the venue got the client's order (the venue sees the gateway's ClOrdID for it)."""
    gw = stack.gw
    order = gw.router.read(lambda ledger, risk: ledger.find(S1, cl) or ledger.find(S2, cl))
    return order is not None and order.venue_cl_ord_id in stack.sim.orders


# ------------------------------------------------------------------------------------------ kill scopes
def test_a_trader_kill_switch_leaves_other_traders_of_the_account_trading(controlled: Any) -> None:
    c = controlled.client()
    c.new_order("T1A", "ACC1", "JPM", "1", 10, 200.0, extra={50: "alice", STRATEGY: "S1"})
    c.new_order("T2A", "ACC1", "JPM", "1", 10, 200.0, extra={50: "bob"})
    _er(c, "T1A", "0"), _er(c, "T2A", "0")
    res = controlled.gw.set_switch("kill", "trader", "alice", True, "ops", "alice's algo misbehaves")
    assert res["cancelled"] == 1
    _er(c, "T1A", "4")  # her resting order is cancelled at the venue
    c.new_order("T1B", "ACC1", "JPM", "1", 10, 200.0, extra={50: "alice"})
    rej = _er(c, "T1B", "8")
    assert rej[58].startswith("KILL_SWITCH_TRADER:") and "docs/runbooks/KILL_SWITCH_TRADER.md" in rej[58]
    assert not _venue_has(controlled, "T1B")
    c.new_order("T2B", "ACC1", "JPM", "1", 10, 200.0, extra={50: "bob"})
    _er(c, "T2B", "0")
    assert controlled.sim.orders[controlled.gw.router.read(lambda l, r: l.find(S1, "T2A").venue_cl_ord_id)].status \
        == "0", "bob's resting order must stay"
    rows = [(r["cl_ord_id"], r["decision"], r["code"], r["trader"], r["strategy"]) for r in _rows(controlled)]
    assert rows == [("T1A", "accept", None, "alice", "S1"), ("T2A", "accept", None, "bob", None),
                    ("T1A", "gateway-cancel", None, "alice", "S1"), ("T1B", "reject", "KILL_SWITCH_TRADER", "alice", None),
                    ("T2B", "accept", None, "bob", None)]
    admin = _rows(controlled, "admin")
    assert [(a["action"], a["scope"], a["who"]) for a in admin][-1] == ("kill on", "trader:alice", "ops")
    assert _rejected(controlled, "KILL_SWITCH_TRADER") == 1


def test_strategy_and_session_kill_switches(controlled: Any) -> None:
    c1, c2 = controlled.client("OMS1"), controlled.client("OMS2")
    controlled.gw.set_switch("kill", "strategy", "S9", True, "ops", "RTS 6 art. 12 drill")
    c1.new_order("K1", "ACC1", "AAPL", "1", 10, 190.0, extra={STRATEGY: "S9"})
    assert _er(c1, "K1", "8")[58].startswith("KILL_SWITCH_STRATEGY:")
    c1.new_order("K2", "ACC1", "AAPL", "1", 10, 190.0, extra={STRATEGY: "S8"})
    _er(c1, "K2", "F")
    controlled.gw.set_switch("kill", "session", S2, True, "ops", "OMS2 is misbehaving")
    c2.new_order("K3", "ACC3", "AAPL", "1", 10, 190.0)
    assert _er(c2, "K3", "8")[58].startswith("KILL_SWITCH_SESSION:")
    c1.new_order("K4", "ACC1", "AAPL", "1", 10, 190.0)
    _er(c1, "K4", "F")
    controlled.gw.set_switch("kill", "session", S2, False, "ops", "fixed")
    c2.new_order("K5", "ACC3", "AAPL", "1", 10, 190.0)
    _er(c2, "K5", "F")


def test_a_trader_on_reduce_only_may_only_reduce(controlled: Any) -> None:
    c = controlled.client()
    c.new_order("R1", "ACC1", "AAPL", "1", 100, 190.0, extra={50: "carol"})
    _er(c, "R1", "F")
    controlled.gw.set_switch("reduce_only", "trader", "carol", True, "ops", "wind down")
    c.new_order("R2", "ACC1", "AAPL", "1", 10, 190.0, extra={50: "carol"})
    rej = _er(c, "R2", "8")
    assert rej[58].startswith("REDUCE_ONLY:") and "trader:carol" in rej[58]
    c.new_order("R3", "ACC1", "AAPL", "2", 40, 190.0, extra={50: "carol"})
    _er(c, "R3", "F")
    c.new_order("R4", "ACC1", "AAPL", "1", 10, 190.0, extra={50: "dave"})
    _er(c, "R4", "F")


# ------------------------------------------------------------------------------------------ short sales
@pytest.mark.controls(locates="ACC1,AAPL,100\n", short_sale=ShortSaleSettings(require_locate=True, locate_tag=LOCATE))
def test_short_sales_need_a_locate_and_fills_consume_it(controlled: Any) -> None:
    c = controlled.client()
    c.new_order("SS1", "ACC1", "AAPL", "5", 60, 190.0)
    _er(c, "SS1", "F")  # 60 of the 100 located are used
    c.new_order("SS2", "ACC1", "AAPL", "5", 50, 190.0)
    rej = _er(c, "SS2", "8")
    assert rej[58].startswith("SHORT_LOCATE:") and "110" in rej[58] and "100" in rej[58], rej[58]
    assert not _venue_has(controlled, "SS2")
    c.new_order("SS3", "ACC1", "AAPL", "5", 40, 190.0)
    _er(c, "SS3", "F")  # exactly the rest
    c.new_order("SS4", "ACC1", "MSFT", "5", 1, 410.0)
    assert _er(c, "SS4", "8")[58].startswith("SHORT_LOCATE:")  # nothing located in MSFT
    c.new_order("SS5", "ACC1", "MSFT", "5", 10, 410.0, extra={LOCATE: "SBL-123"})
    _er(c, "SS5", "0")  # the client's own locate
    c.new_order("S6", "ACC1", "AAPL", "2", 10, 190.0)
    _er(c, "S6", "F")  # a long sale needs none
    codes = {r["cl_ord_id"]: r["code"] for r in _rows(controlled) if r["decision"] == "reject"}
    assert codes == {"SS2": "SHORT_LOCATE", "SS4": "SHORT_LOCATE"}
    assert _rejected(controlled, "SHORT_LOCATE") == 2
    # locates reset at the trading day's start: the next day has its 100 again
    controlled.gw.rollover("ops", "next trading day")
    assert c.wait_logon(15)
    c.new_order("SS7", "ACC1", "AAPL", "5", 100, 190.0)
    _er(c, "SS7", "F")
    c.new_order("SS8", "ACC1", "AAPL", "5", 1, 190.0)
    assert _er(c, "SS8", "8")[58].startswith("SHORT_LOCATE:")


# ------------------------------------------------------------------------------------------ self-match prevention
@pytest.mark.controls(self_match=SelfMatchSettings(enabled=True, smp_id_tag=SMP_ID))
def test_self_match_rejects_the_new_order_that_would_cross_its_own_resting_order(controlled: Any) -> None:
    c = controlled.client()
    c.new_order("B1", "ACC1", "JPM", "1", 100, 200.0)
    _er(c, "B1", "0")  # JPM rests at the simulator
    c.new_order("X1", "ACC1", "JPM", "2", 100, 199.0)
    rej = _er(c, "X1", "8")
    assert rej[58].startswith("SELF_MATCH:") and "B1" in rej[58], rej[58]
    assert not _venue_has(controlled, "X1")
    c.new_order("X2", "ACC1", "JPM", "2", 100, 201.0)  # above the bid: would not trade
    _er(c, "X2", "0")
    c.new_order("X3", "ACC2", "JPM", "2", 100, 199.0)  # another account, no group: another owner
    _er(c, "X3", "0")
    c.new_order("X4", "ACC2", "JPM", "1", 50, 202.0)  # ACC2's buy crosses ACC2's own sell X3
    assert _er(c, "X4", "8")[58].startswith("SELF_MATCH:")
    c.new_order("X5", "ACC1", "JPM", "1", 10, 205.0, extra={SMP_ID: "DESK7"})  # an SMP ID is its own owner
    _er(c, "X5", "0")
    c.new_order("X6", "ACC2", "JPM", "2", 10, 204.0, extra={SMP_ID: "DESK7"})
    assert _er(c, "X6", "8")[58].startswith("SELF_MATCH:")
    assert _rejected(controlled, "SELF_MATCH") == 3
    assert {r["cl_ord_id"]: r["code"] for r in _rows(controlled) if r["decision"] == "reject"} == {
        "X1": "SELF_MATCH", "X4": "SELF_MATCH", "X6": "SELF_MATCH"}


@pytest.mark.controls(self_match=SelfMatchSettings(enabled=True, groups=[
    SelfMatchGroup(name="DESK", accounts=["ACC1", "ACC2"], action="cancel_resting")]))
def test_self_match_in_a_group_cancels_the_resting_order_and_sends_the_new_one(controlled: Any) -> None:
    c = controlled.client()
    c.new_order("B1", "ACC1", "JPM", "1", 100, 200.0)
    _er(c, "B1", "0")
    c.new_order("S1", "ACC2", "JPM", "2", 100, 199.0)
    _er(c, "B1", "4")  # the resting buy of the same desk is cancelled at the venue
    _er(c, "S1", "0")  # and the new sell goes on
    assert _venue_has(controlled, "S1")
    cancels = [r for r in _rows(controlled) if r["decision"] == "gateway-cancel"]
    assert [(r["cl_ord_id"], r["detail"].split(":")[0]) for r in cancels] == [("B1", "SELF_MATCH")]


# ------------------------------------------------------------------------------------------ breakers
@pytest.mark.controls(breakers=BreakerSettings(reject_storm_count=3, reject_storm_window_s=60))
def test_a_reject_storm_trips_a_breaker_that_stays_until_an_operator_clears_it(controlled: Any) -> None:
    c = controlled.client()
    alerts = controlled.gw.metrics.alerts.labels("REJECT_STORM")
    for n in range(4):
        c.new_order(f"Q{n}", "ACC1", "AAPL", "1", 20_000, 190.0)  # QTY_MAX
        assert _er(c, f"Q{n}", "8")[58].startswith("QTY_MAX:")
    assert alerts._value.get() == 2  # session and account tripped, each alerted before the next order
    c.new_order("OK1", "ACC1", "AAPL", "1", 10, 190.0)
    rej = _er(c, "OK1", "8")
    assert rej[58].startswith("REJECT_STORM:") and "docs/runbooks/REJECT_STORM.md" in rej[58]
    assert not _venue_has(controlled, "OK1")
    tripped = controlled.gw.router.breakers()
    assert {(b["code"], b["scope"]) for b in tripped} == {("REJECT_STORM", f"session:{S1}"),
                                                           ("REJECT_STORM", "account:ACC1")}
    m = controlled.gw.metrics
    controlled.gw.refresh_gauges()
    assert m.breakers_tripped.labels("REJECT_STORM")._value.get() == 2
    assert m.breaker_trips.labels("REJECT_STORM")._value.get() == 2
    assert m.rejected.labels("new", "REJECT_STORM")._value.get() == 1
    admin = [a for a in _rows(controlled, "admin") if a["action"].startswith("breaker")]
    assert {(a["action"], a["scope"], a["who"]) for a in admin} == {("breaker trip", f"session:{S1}", "gateway"),
                                                                   ("breaker trip", "account:ACC1", "gateway")}
    # a restart replays the trip: still tripped
    controlled.stop_gateway()
    controlled.start_gateway()
    assert len(controlled.gw.router.breakers()) == 2
    c.wait_logon(15)
    with pytest.raises(ValueError, match="no tripped"):
        controlled.gw.router.clear_breaker("REJECT_STORM", "account:ACC9", "ops", "typo")
    controlled.gw.router.clear_breaker("REJECT_STORM", f"session:{S1}", "ops", "client fixed")
    c.new_order("OK2", "ACC1", "AAPL", "1", 10, 190.0)
    assert _er(c, "OK2", "8")[58].startswith("REJECT_STORM:")  # the account's breaker still holds
    controlled.gw.router.clear_breaker("REJECT_STORM", "account:ACC1", "ops", "client fixed")
    c.new_order("OK3", "ACC1", "AAPL", "1", 10, 190.0)
    _er(c, "OK3", "F")
    clears = [a for a in _rows(controlled, "admin") if a["action"] == "breaker clear"]
    assert [(a["scope"], a["who"], a["why"]) for a in clears] == [(f"session:{S1}", "ops", "client fixed"),
                                                                ("account:ACC1", "ops", "client fixed")]


@pytest.mark.controls(breakers=BreakerSettings(message_storm_count=150, message_storm_window_s=5))
def test_a_message_storm_logs_the_session_out_cancels_its_orders_and_keeps_it_out(controlled: Any) -> None:
    """Two steps, as exchanges do it: the example limits' throttle rejects above 100 messages a second
    (MESSAGE_RATE); above 150 in 5 s the session is logged out and its orders cancelled (MESSAGE_STORM)."""
    from tests.gwtest import wait_until

    c = controlled.client()
    other = controlled.client("OMS2")
    logouts = c.logouts
    for n in range(151):  # as fast as the client sends: well over 100 within a second
        c.new_order(f"M{n}", "ACC1", "JPM", "1", 1, 200.0)
    assert _er(c, "M150", "8")[58].startswith("MESSAGE_STORM:")
    codes = [(m.get(58) or "").split(":")[0] for m in c.received if m.get(150) == "8"]
    assert codes.count("MESSAGE_RATE") >= 1 and codes[-1] == "MESSAGE_STORM", codes
    assert controlled.gw.metrics.alerts.labels("MESSAGE_STORM")._value.get() == 1
    wait_until(lambda: c.logouts > logouts, 10, "the storming session logged out")
    open_at_venue = lambda: [o for o in controlled.sim.orders.values() if o.status not in ("4", "2", "8")]  # noqa
    wait_until(lambda: not open_at_venue(), 10, "the session's resting orders cancelled at the venue")
    assert len(controlled.sim.orders) == 151 - len(codes)  # the rejected (throttles, storm) never reached it
    # it stays out: its reconnects are refused until the breaker is cleared, after a restart too
    assert not c.wait_logon(3)
    other.new_order("O1", "ACC3", "AAPL", "1", 10, 190.0)
    _er(other, "O1", "F")  # other sessions trade on
    controlled.stop_gateway()
    controlled.start_gateway()
    assert other.wait_logon(15) and not c.wait_logon(3)
    controlled.gw.router.clear_breaker("MESSAGE_STORM", f"session:{S1}", "ops", "client throttled")
    assert c.wait_logon(15)
    c.new_order("N1", "ACC1", "AAPL", "1", 10, 190.0)
    _er(c, "N1", "F")


@pytest.mark.controls(breakers=BreakerSettings(repeated_exec_count=2, repeated_exec_window_s=60))
def test_repeated_executions_block_the_strategy_until_cleared(controlled: Any) -> None:
    c = controlled.client()
    for n in range(3):
        c.new_order(f"E{n}", "ACC1", "AAPL", "1", 10, 190.0, extra={STRATEGY: "LOOPY"})
        _er(c, f"E{n}", "F")
    c.new_order("E3", "ACC1", "AAPL", "1", 10, 190.0, extra={STRATEGY: "LOOPY"})
    assert _er(c, "E3", "8")[58].startswith("REPEATED_EXECUTIONS:")
    c.new_order("E4", "ACC1", "AAPL", "1", 10, 190.0, extra={STRATEGY: "CALM"})
    _er(c, "E4", "F")  # another strategy of the same account trades on
    assert controlled.gw.metrics.alerts.labels("REPEATED_EXECUTIONS")._value.get() == 1
    assert _rejected(controlled, "REPEATED_EXECUTIONS") == 1 and not _venue_has(controlled, "E3")
    trip = [a for a in _rows(controlled, "admin") if a["action"] == "breaker trip"]
    assert [(a["scope"], a["who"]) for a in trip] == [("strategy:LOOPY", "gateway")]
    assert [(b["code"], b["scope"]) for b in controlled.gw.router.breakers()] == [("REPEATED_EXECUTIONS",
                                                                                  "strategy:LOOPY")]


# ------------------------------------------------------------------------------------------ halts and the admin socket
def test_an_operator_halt_and_the_admin_socket_commands(controlled: Any, tmp_path: Path) -> None:
    from gateway.control.admin import AdminServer

    c = controlled.client()
    server = AdminServer(controlled.gw, tmp_path / "admin.sock")

    def ask(req: dict[str, Any]) -> dict[str, Any]:
        return asyncio.run(server.dispatch(req))

    assert ask({"cmd": "halt", "state": "on", "scope": "instrument:AAPL", "who": "ops", "why": "news pending"})["ok"]
    c.new_order("H1", "ACC1", "AAPL", "1", 10, 190.0)
    rej = _er(c, "H1", "8")
    assert rej[58].startswith("INSTRUMENT_HALTED:") and rej[103] == "2"
    assert _rejected(controlled, "INSTRUMENT_HALTED") == 1 and not _venue_has(controlled, "H1")
    assert ask({"cmd": "breakers"})["breakers"] == [{"code": "INSTRUMENT_HALTED", "scope": "instrument:AAPL",
                                                     "source": "operator ops"}]
    ask({"cmd": "kill", "state": "on", "scope": "strategy:S7", "who": "ops", "why": "drill"})
    status = ask({"cmd": "status"})
    assert (status["halted"], status["kill_switch"]["scopes"]) == ({"AAPL": "operator ops"}, ["strategy:S7"])
    with pytest.raises(ValueError, match="unknown session"):
        ask({"cmd": "kill", "state": "on", "scope": "session:FIXGW->NOBODY", "who": "ops", "why": "typo"})
    with pytest.raises(ValueError, match="scope must be"):
        ask({"cmd": "kill", "state": "on", "scope": "desk:X", "who": "ops", "why": "x"})
    with pytest.raises(ValueError, match="no tripped"):
        ask({"cmd": "clear_breaker", "code": "REJECT_STORM", "scope": "session:X", "who": "ops", "why": "x"})
    # the same through `fixgw admin`, the command line operators use
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        cli = [sys.executable, "-m", "gateway.cli", "admin", "--socket", str(server.path)]
        out = subprocess.run([*cli, "breakers"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and json.loads(out.stdout)["breakers"][0]["scope"] == "instrument:AAPL", out
        out = subprocess.run([*cli, "clear-breaker", "--code", "REJECT_STORM", "--scope", "account:ACC1", "--who", "ops",
                              "--why", "nothing tripped"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "no tripped REJECT_STORM" in out.stdout, out
        out = subprocess.run([*cli, "halt", "off", "--symbol", "AAPL", "--who", "ops", "--why", "news out"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    c.new_order("H2", "ACC1", "AAPL", "1", 10, 190.0)
    _er(c, "H2", "F")
    assert [(a["action"], a["scope"]) for a in _rows(controlled, "admin")] == [
        ("halt on", "instrument:AAPL"), ("kill on", "strategy:S7"), ("halt off", "instrument:AAPL")]


def test_the_trader_party_is_read_from_the_parties_group() -> None:
    import quickfix as fix
    import quickfix44 as fix44

    from gateway.fix import messages as fm

    m = fix44.NewOrderSingle()
    for pid, role in (("clearing-firm", "4"), ("erin", "12")):
        g = fix44.NewOrderSingle.NoPartyIDs()
        g.setField(fix.PartyID(pid))
        g.setField(fix.PartyIDSource("D"))
        g.setField(fix.PartyRole(int(role)))
        m.addGroup(g)
    assert fm.party_id(m, 12) == "erin"
    assert fm.party_id(m, 4) == "clearing-firm"
    assert fm.party_id(m, 11) == ""
