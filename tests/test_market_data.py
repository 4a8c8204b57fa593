"""Reference prices from the venue's market-data session over real FIX sessions: the collar follows the feed,
a price older than its age limit rejects (STALE_REFERENCE_PRICE), an instrument the feed never priced uses the
stated fallback, and the venue's SecurityStatus halts and resumes trading. Each decision records the price it
used, its source and its age."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from config.settings import MarketDataSettings
from gateway.fix import sessions
from sim.demo import free_port
from sim.venue import SimSession
from tests.gwtest import wait_until

PRICES = {"AAPL": 190.0, "MSFT": 410.0, "JPM": 200.0}
MAX_AGE_S = 1.0


@pytest.fixture
def fed(stack: Any) -> Iterator[Any]:
    """The demo stack with a market-data session for AAPL, MSFT and JPM (NVDA is left to the fallback)."""
    port = free_port()
    stack.cfg = stack.cfg.model_copy(update={"marketdata": MarketDataSettings(
        port=port, sender_comp_id="FIXGW_MD", target_comp_id="VENUE_MD", reconnect_s=1, max_age_s=MAX_AGE_S,
        symbols=sorted(PRICES))})
    stack.sim_cfg = stack.sim_cfg.model_copy(update={
        "marketdata_port": port, "marketdata": [SimSession(sender_comp_id="VENUE_MD", target_comp_id="FIXGW_MD")],
        "prices": PRICES, "md_interval_s": 0.2})
    stack.start_sim()
    stack.start_gateway()
    assert stack.gw.marketdata_logged_on.wait(15)
    wait_until(lambda: _source(stack, "JPM") == "market", 10, "the feed priced JPM")
    yield stack


def _source(stack: Any, symbol: str) -> str | None:
    ref = stack.gw.router.read(lambda ledger, risk: risk.reference(symbol))
    return ref[1] if ref else None


def _price(stack: Any, symbol: str) -> float:
    return stack.gw.router.read(lambda ledger, risk: risk.reference(symbol))[0]


def _er(client: Any, cl: str, exec_type: str) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type)


def _rows(stack: Any, table: str = "decisions") -> dict[str, dict[str, Any]]:
    from gateway.events import journal_query

    stack.gw.journal.flush()
    return {r["cl_ord_id"] if table == "decisions" else r["q"]: r
            for r in journal_query.query(stack.gw.journal.path, table=table)}


def _md_session(stack: Any) -> Any:
    md = stack.cfg.marketdata
    return sessions.lookup(sessions.session_id(md.begin_string, md.sender_comp_id, md.target_comp_id))


def test_the_collar_follows_the_feed_and_each_decision_records_its_price(fed: Any) -> None:
    c = fed.client()
    fed.sim.set_quote("JPM", bid=249.9, ask=250.1, last=250.0)
    wait_until(lambda: _price(fed, "JPM") == 250.0, 10, "the feed's JPM trade reached the gateway")
    c.new_order("P1", "ACC1", "JPM", "1", 10, 200.0)  # the file's 200 is now 20% off the market
    assert _er(c, "P1", "8")[58].startswith("PRICE_COLLAR:")
    c.new_order("P2", "ACC1", "JPM", "1", 10, 250.0)
    _er(c, "P2", "0")
    c.replace("P4", "P2", "JPM", "1", 10, 250.5, "ACC1")
    _er(c, "P4", "5")
    c.new_order("P3", "ACC1", "NVDA", "1", 10, 120.0)  # not in the feed: the stated fallback
    _er(c, "P3", "F")
    rows = _rows(fed)
    assert (rows["P4"]["kind"], rows["P4"]["ref_price"], rows["P4"]["ref_source"]) == ("G", 250.0, "market")
    assert (rows["P1"]["ref_price"], rows["P1"]["ref_source"]) == (250.0, "market")
    assert 0 <= rows["P1"]["ref_age_s"] < MAX_AGE_S
    assert (rows["P2"]["decision"], rows["P2"]["ref_source"]) == ("accept", "market")
    assert (rows["P3"]["ref_price"], rows["P3"]["ref_source"], rows["P3"]["ref_age_s"]) == (120.0, "configured", None)


def test_a_stale_price_after_the_feed_stops_rejects_and_a_fresh_one_clears_it(fed: Any) -> None:
    c = fed.client()
    c.new_order("F1", "ACC1", "AAPL", "1", 10, 190.0)
    _er(c, "F1", "F")
    _md_session(fed).logout("test: the feed stops")
    wait_until(lambda: not fed.gw.marketdata_logged_on.is_set(), 10, "market-data session down")
    wait_until(lambda: fed.gw.router.read(lambda l, r: (r.controls.price_age_s("AAPL", r.clock()) or 0)) > MAX_AGE_S,
               10, "the AAPL price older than its limit")
    c.new_order("F2", "ACC1", "AAPL", "1", 10, 190.0)
    rej = _er(c, "F2", "8")
    assert rej[58].startswith("STALE_REFERENCE_PRICE:") and "docs/runbooks/STALE_REFERENCE_PRICE.md" in rej[58]
    venue_cls = {o.cl_ord_id for o in fed.sim.orders.values()}
    assert len(venue_cls) == 1  # only F1 reached the venue
    row = _rows(fed)["F2"]
    assert (row["decision"], row["code"], row["ref_source"]) == ("reject", "STALE_REFERENCE_PRICE", "market")
    assert row["ref_age_s"] > MAX_AGE_S and row["limit_value"] == MAX_AGE_S
    assert fed.gw.metrics.rejected.labels("new", "STALE_REFERENCE_PRICE")._value.get() == 1
    fed.gw.refresh_gauges()
    assert fed.gw.metrics.price_age.labels("AAPL")._value.get() > MAX_AGE_S
    _md_session(fed).logon()  # back: the new snapshot makes the price fresh
    assert fed.gw.marketdata_logged_on.wait(15)
    wait_until(lambda: fed.gw.router.read(lambda l, r: r.controls.price_age_s("AAPL", r.clock())) < MAX_AGE_S, 10,
               "a fresh AAPL price")
    c.new_order("F3", "ACC1", "AAPL", "1", 10, 190.0)
    _er(c, "F3", "F")


def test_a_venue_halt_from_security_status_rejects_at_the_gateway_until_resumed(fed: Any) -> None:
    c = fed.client()
    fed.sim.halt("MSFT", "news pending")
    wait_until(lambda: fed.gw.router.breakers() != [], 10, "the gateway heard the halt")
    assert fed.gw.router.breakers() == [{"code": "INSTRUMENT_HALTED", "scope": "instrument:MSFT", "source": "venue"}]
    c.new_order("H1", "ACC1", "MSFT", "1", 10, 410.0)
    rej = _er(c, "H1", "8")
    assert rej[58].startswith("INSTRUMENT_HALTED:") and rej[103] == "2"
    assert fed.sim.orders == {}  # refused by the gateway, not the venue
    # a restart keeps the halt (the event log has it), and the venue's answer to the status request confirms it
    fed.stop_gateway()
    fed.start_gateway()
    assert fed.gw.marketdata_logged_on.wait(15)
    assert c.wait_logon(15)
    c.new_order("H2", "ACC1", "MSFT", "1", 10, 410.0)
    assert _er(c, "H2", "8")[58].startswith("INSTRUMENT_HALTED:")
    fed.sim.resume("MSFT")
    wait_until(lambda: fed.gw.router.breakers() == [], 10, "the gateway heard the resume")
    c.new_order("H3", "ACC1", "MSFT", "1", 10, 410.0)
    _er(c, "H3", "F")  # MSFT partially fills at the simulator
    admin = [(r["action"], r["scope"], r["who"]) for r in _rows(fed, "admin").values()]
    assert admin == [("halt on", "instrument:MSFT", "venue"), ("halt off", "instrument:MSFT", "venue")]
