"""Surveillance after the fact: each pattern, scripted as the gateway's event log would record it, raises its
alert; a clean flow raises none; `fixgw surveillance` finds them in a day's log."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from config.settings import SurveillanceSettings
from gateway.events import schema
from gateway.events.surveillance import scan

S = 1_000_000_000
SESSION = "FIXGW->OMS1"
RULES = SurveillanceSettings(wash_window_s=60, otr_max=5, otr_min_orders=10, layering_window_s=5,
                             layering_min_cancels=3, cancel_rate_max=0.5, cancel_rate_min_orders=6)


class Day:
    """A scripted day: orders, fills and cancels with the fields the gateway logs."""

    def __init__(self) -> None:
        self.events: list[schema.Event] = []
        self.n = 0

    def order(self, t: float, acc: str, sym: str, side: str, qty: float = 100, px: float = 100.0) -> str:
        self.n += 1
        cl = f"C{self.n}"
        self.events.append(schema.NewOrder(request=self.n, session=SESSION, cl_ord_id=cl, venue_cl_ord_id=f"G{self.n}",
                                           number=self.n, account=acc, symbol=sym, side=side, ord_type="2", qty=qty,
                                           px=px, ts=int(t * S)))
        return cl

    def fill(self, t: float, cl: str, qty: float = 100, px: float = 100.0) -> None:
        o = next(e for e in self.events if isinstance(e, schema.NewOrder) and e.cl_ord_id == cl)
        self.events.append(schema.Execution(venue_cl_ord_id=o.venue_cl_ord_id, number=o.number, exec_type="F",
                                            exec_id=f"E{cl}{t}", ord_status="2", last_qty=qty, last_px=px,
                                            session=SESSION, account=o.account, symbol=o.symbol, side=o.side,
                                            cl_ord_id=cl, ts=int(t * S)))

    def cancel(self, t: float, cl: str, by: str = "") -> None:
        o = next(e for e in self.events if isinstance(e, schema.NewOrder) and e.cl_ord_id == cl)
        self.events.append(schema.Cancel(request=0, session=SESSION, cl_ord_id=f"X{cl}", orig_cl_ord_id=cl,
                                         venue_cl_ord_id=f"V{cl}", number=o.number, account=o.account,
                                         symbol=o.symbol, side=o.side, qty=None, px=None, by=by, ts=int(t * S)))


def _codes(day: Day, owners: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    return [(a.code, a.account, a.symbol) for a in scan(day.events, RULES, owners)]


def test_a_clean_day_raises_nothing() -> None:
    d = Day()
    for i in range(12):  # buys and sells an hour apart, most filled, a few cancelled
        cl = d.order(i * 3600, "ACC1", "AAPL", "1" if i % 2 == 0 else "2")
        if i % 4 == 3:
            d.cancel(i * 3600 + 10, cl)
        else:
            d.fill(i * 3600 + 1, cl)
    assert _codes(d) == []


def test_a_wash_trade_of_one_account_and_of_one_owner_across_accounts() -> None:
    d = Day()
    d.fill(11, d.order(10, "ACC1", "AAPL", "1"))
    d.fill(31, d.order(30, "ACC1", "AAPL", "2"))  # the same account sells 20 s later
    d.fill(101, d.order(100, "ACC1", "MSFT", "1"))
    d.fill(201, d.order(200, "ACC2", "MSFT", "2"))  # another account, 100 s later: outside the window
    d.fill(1001, d.order(1000, "ACC2", "JPM", "1"))
    d.fill(1010, d.order(1009, "ACC3", "JPM", "5"))  # ACC2 and ACC3 are one owner; a short sale is a sale
    assert _codes(d) == [("WASH_TRADE", "ACC1", "AAPL")]
    assert _codes(d, {"ACC2": "DESK", "ACC3": "DESK"}) == [("WASH_TRADE", "ACC1", "AAPL"), ("WASH_TRADE", "ACC3",
                                                                                             "JPM")]
    alert = scan(d.events, RULES)[0]
    assert alert.orders == ("C1", "C2") and alert.value == 20


def test_order_to_trade_ratio_per_account_and_instrument() -> None:
    d = Day()
    for i in range(12):
        cl = d.order(i, "ACC1", "AAPL", "1", px=100 - i)
        if i == 0:
            d.fill(0.5, cl)
        else:
            d.cancel(i + 0.5, cl)
    for i in range(12):  # ACC2 fills most of its orders
        d.fill(i + 0.1, d.order(i, "ACC2", "AAPL", "2"))
    alerts = [a for a in scan(d.events, RULES) if a.code == "ORDER_TO_TRADE"]
    # Raised once, when the ratio first crossed: ACC1's 10th message (its 6th order, at 5 s) over its one fill
    assert [(a.account, a.symbol, a.value, a.ts) for a in alerts] == [("ACC1", "AAPL", 10.0, 5 * S)]


def test_layering_cancels_on_the_other_side_right_after_a_fill() -> None:
    d = Day()
    layers = [d.order(1 + i * 0.1, "ACC1", "AAPL", "1", px=99 - i) for i in range(3)]  # bids to push the price up
    d.fill(3, d.order(2, "ACC1", "AAPL", "2", px=101))  # the real order sells
    for i, cl in enumerate(layers):
        d.cancel(3.5 + i * 0.2, cl)  # and the bids are pulled
    slow = [d.order(100 + i, "ACC2", "AAPL", "1") for i in range(3)]
    d.fill(110, d.order(109, "ACC2", "AAPL", "2"))
    for i, cl in enumerate(slow):
        d.cancel(130 + i, cl)  # 20 s later: outside the window
    alerts = [a for a in scan(d.events, RULES) if a.code == "LAYERING"]
    assert [(a.account, a.orders) for a in alerts] == [("ACC1", tuple(f"X{cl}" for cl in layers))]


def test_cancel_rate_counts_the_clients_cancels_not_the_gateways() -> None:
    d = Day()
    for i in range(8):
        cl = d.order(i * 100, "ACC1", "AAPL", "1")
        d.cancel(i * 100 + 50, cl)  # ACC1 cancels all 8
    for i in range(8):
        cl = d.order(i * 100, "ACC2", "MSFT", "1")
        d.cancel(i * 100 + 50, cl, by="gateway")  # a kill switch cancelled ACC2's: not ACC2's doing
    assert [(a.code, a.account) for a in scan(d.events, RULES) if a.code == "CANCEL_RATE"] == [("CANCEL_RATE", "ACC1")]


def test_the_command_reads_a_day_and_exits_1_on_alerts(tmp_path: Any) -> None:
    from sim.demo import demo_configs
    from tests.gwtest import write_config

    cfg, _ = demo_configs(tmp_path)
    cfg = cfg.model_copy(update={"surveillance": RULES})
    cfg.state_dir.mkdir(parents=True)
    d = Day()
    d.fill(11, d.order(10, "ACC1", "AAPL", "1"))
    d.fill(31, d.order(30, "ACC1", "AAPL", "2"))
    with open(cfg.state_dir / "events.log", "wb") as f:
        f.write(schema.encode_line(schema.DayStart(prefix="G", day="20261203")))
        for ev in d.events:
            f.write(schema.encode_line(ev))
    toml = write_config(cfg, tmp_path / "gateway.toml")
    cmd = [sys.executable, "-m", "gateway.cli", "surveillance", "--config", str(toml), "--date", "20261203"]
    md = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert md.returncode == 1 and "| WASH_TRADE | ACC1 | AAPL |" in md.stdout and "docs/runbooks/WASH_TRADE.md" in md.stdout
    js = subprocess.run([*cmd, "--format", "json"], capture_output=True, text=True, timeout=120)
    assert [a["code"] for a in json.loads(js.stdout)["alerts"]] == ["WASH_TRADE"]


def test_a_partly_filled_order_is_one_wash_trade_not_one_per_fill() -> None:
    d = Day()
    b = d.order(10, "ACC1", "AAPL", "1")
    d.fill(11, b, qty=50)
    s = d.order(12, "ACC1", "AAPL", "2")
    d.fill(13, s, qty=50)
    d.fill(14, s, qty=50)  # the sale's second fill pairs with the same buy: no second alert
    assert _codes(d) == [("WASH_TRADE", "ACC1", "AAPL")]


def _alerts(gw: Any) -> list[tuple[str, str, str, str]]:
    from gateway.events import journal_query

    assert gw.surveillance.flush() and gw.journal.flush()
    return [(r["code"], r["account"], r["symbol"], r["orders"])
            for r in journal_query.query(gw.journal.path, table="alerts")]


def test_the_running_gateway_raises_alerts_live_and_a_restart_neither_repeats_nor_forgets(stack: Any) -> None:
    from gateway.events.log import EventLog
    from gateway.events.surveillance import owners_of

    stack.cfg = stack.cfg.model_copy(update={"surveillance": RULES})
    stack.start_sim()
    gw = stack.start_gateway()
    c = stack.client()

    def filled(cl: str, side: str) -> None:
        c.new_order(cl, "ACC1", "AAPL", side, 100, 190.0)
        c.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == "F")

    filled("B1", "1")
    assert _alerts(gw) == []
    stack.stop_gateway()
    gw = stack.start_gateway()  # the buy is before the restart, the sale after it
    assert c.wait_logon(15)
    filled("S1", "2")
    assert _alerts(gw) == [("WASH_TRADE", "ACC1", "AAPL", "B1 S1")]
    assert gw.metrics.registry.get_sample_value("fixgw_alerts_total", {"code": "WASH_TRADE"}) == 1
    # what the gateway raised live is what a scan of its day's log finds afterwards
    logged = list(EventLog.read(gw.events.path))
    live = [(e.code, e.account, e.symbol, e.ts, tuple(e.orders)) for e in logged if e.kind == "SRV"]
    again = [(a.code, a.account, a.symbol, a.ts, a.orders) for a in scan(logged, RULES, owners_of(stack.cfg))]
    assert live == again and len(live) == 1
    stack.stop_gateway()
    gw = stack.start_gateway()
    assert c.wait_logon(15)
    assert _alerts(gw) == [("WASH_TRADE", "ACC1", "AAPL", "B1 S1")]  # not raised again
    filled("S2", "2")  # within the window of the alert: one alert per owner and instrument per window
    assert _alerts(gw) == [("WASH_TRADE", "ACC1", "AAPL", "B1 S1")]


def test_one_wash_alert_per_owner_and_instrument_per_window() -> None:
    d = Day()
    for i in range(10):  # a market maker: buys and sells every second
        d.fill(i + 0.5, d.order(i, "ACC1", "AAPL", "1" if i % 2 == 0 else "2"))
    d.fill(100.5, d.order(100, "ACC1", "AAPL", "1"))  # 99 s after the alert: a new window
    d.fill(101.5, d.order(101, "ACC1", "AAPL", "2"))
    assert [(a.code, a.orders, a.ts) for a in scan(d.events, RULES)] == [
        ("WASH_TRADE", ("C1", "C2"), int(1.5 * S)), ("WASH_TRADE", ("C11", "C12"), int(101.5 * S))]
