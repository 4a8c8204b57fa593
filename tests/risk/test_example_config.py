"""The example reference data and limits in config/examples/: they load, and a demo can provoke
every kernel reject with a plausible order (the sequences below are the demo script)."""
from __future__ import annotations

from pathlib import Path

import pytest

from config.risk_models import RiskConfig, load_risk_config
from risk.decision import Decision
from risk.engine import RiskEngine
from risk.reasons import CATALOGUE

EX = Path(__file__).resolve().parents[2] / "config" / "examples"
BUY, SELL = 1, 2
SEC = 1_000_000_000


def example_cfg() -> RiskConfig:
    return load_risk_config(EX / "instruments.csv", EX / "accounts.toml", EX / "limits.toml", EX / "scenarios.csv")


class Demo:
    def __init__(self) -> None:
        self.eng = RiskEngine(example_cfg(), n_sessions=4, max_orders=1000)
        self.now = 1_800_000_000 * SEC

    def order(self, acc: str, sym: str, side: int, qty: float, px: float | None, *, send: bool = True,
              fill: bool = False, sess: int = 0, dup: bool = False, dt: int = SEC // 20) -> Decision:
        e = self.eng
        self.now += dt
        a, i = e.account_index(acc), e.instrument_index(sym)
        d = e.check_new(sess, a, i, side, qty, px, px is None, dup, self.now)
        if d.accepted and send:
            s = e.on_sent(a, i, side, qty, px, sess)
            if fill:
                e.on_fill(s, qty, px if px is not None else e.reference_price(i))
        return d


def _loaded(d: Demo) -> None:
    assert d.eng.limits_version == example_cfg().limits_version


DEMOS = {
    "UNKNOWN_ACCOUNT": lambda d: d.order("ACC9", "AAPL", BUY, 100, 190.0),
    "UNKNOWN_INSTRUMENT": lambda d: d.order("ACC1", "ZZZZ", BUY, 100, 190.0),
    "INVALID_ORDER": lambda d: d.order("ACC1", "AAPL", 3, 100, 190.0),
    "INVALID_QTY": lambda d: d.order("ACC1", "AAPL", BUY, 0, 190.0),
    "INVALID_PRICE": lambda d: d.order("ACC1", "AAPL", BUY, 100, -190.0),
    "PRICE_TICK": lambda d: d.order("ACC1", "AAPL", BUY, 100, 190.005),
    "DUPLICATE_CLORDID": lambda d: d.order("ACC1", "AAPL", BUY, 100, 190.0, dup=True),
    "RESTRICTED_INSTRUMENT": lambda d: d.order("ACC1", "GS", BUY, 100, 450.0),
    "INSTRUMENT_NOT_PERMITTED": lambda d: d.order("ACC3", "JPM", BUY, 100, 200.0),
    "NO_REFERENCE_PRICE": lambda d: d.order("ACC1", "NEWCO", BUY, 100, 10.0),
    "PRICE_COLLAR": lambda d: d.order("ACC1", "AAPL", BUY, 100, 200.0),
    "QTY_MIN": lambda d: d.order("ACC1", "AAPL", BUY, 0.5, 190.0),
    "QTY_MAX": lambda d: d.order("ACC1", "AAPL", BUY, 20_000, 190.0),
    "NOTIONAL_MAX": lambda d: d.order("ACC1", "MSFT", BUY, 6_000, 410.0),
    "ORDER_RATE": lambda d: [d.order("ACC3", "AAPL", BUY, 10, 190.0) for _ in range(6)][-1],
    "MESSAGE_RATE": lambda d: [d.order("ACC1", "AAPL", BUY, 1, 190.0, sess=1, dt=SEC // 200)
                               for _ in range(101)][-1],
    "POSITION_LIMIT": lambda d: [d.order("ACC1", "CLZ5", BUY, 50, 75.0) for _ in range(5)][-1],
    "SECTOR_EXPOSURE": lambda d: (d.order("ACC1", "XOM", BUY, 9_000, 110.0), d.order("ACC1", "CVX", BUY, 3_500, 155.0))[-1],
    "NET_EXPOSURE": lambda d: [d.order("ACC1", s, BUY, q, p) for s, q, p in
                               (("AAPL", 5000, 190.0), ("MSFT", 2300, 410.0), ("NVDA", 4000, 120.0),
                                ("JPM", 4900, 200.0))][-1],
    "GROSS_EXPOSURE": lambda d: [d.order("ACC1", s, side, q, p) for s, side, q, p in
                                 (("AAPL", BUY, 5000, 190.0), ("MSFT", BUY, 2300, 410.0), ("NVDA", BUY, 4000, 120.0),
                                  ("JPM", SELL, 4900, 200.0), ("MS", SELL, 10_000, 95.0), ("BAC", SELL, 10_000, 35.0),
                                  ("XOM", BUY, 9_000, 110.0))][-1],
    "LEVERAGE": lambda d: [d.order("ACC2", s, side, q, p) for s, side, q, p in
                           (("AAPL", BUY, 2000, 190.0), ("JPM", SELL, 2000, 200.0), ("MSFT", BUY, 600, 410.0))][-1],
    "DAILY_LOSS": lambda d: (d.order("ACC2", "AAPL", BUY, 2000, 190.0, fill=True),
                             d.eng.set_reference_price(d.eng.instrument_index("AAPL"), 177.0),
                             d.order("ACC2", "AAPL", BUY, 100, 177.0))[-1],
    "VAR_LIMIT": lambda d: d.order("ACC2", "AAPL", BUY, 4000, 190.0),
    "ES_LIMIT": lambda d: d.order("ACC2", "AAPL", BUY, 3000, 190.0),
}


def _switch(kind: str, scope: str, name: str) -> object:
    def run(d: Demo) -> Decision:
        e = d.eng
        idx = 0 if scope == "global" else (e.account_index(name) if scope == "account" else e.instrument_index(name))
        getattr(e, kind)(scope, idx, True)
        return d.order("ACC1", "AAPL", BUY, 100, 190.0)
    return run


DEMOS |= {
    "KILL_SWITCH_GLOBAL": _switch("set_kill", "global", ""),
    "KILL_SWITCH_ACCOUNT": _switch("set_kill", "account", "ACC1"),
    "KILL_SWITCH_INSTRUMENT": _switch("set_kill", "instrument", "AAPL"),
    "REDUCE_ONLY": _switch("set_reduce_only", "account", "ACC1"),
}


@pytest.mark.parametrize("code", sorted(DEMOS))
def test_demo_provokes_each_reject(code: str) -> None:
    d = Demo()
    _loaded(d)
    dec = DEMOS[code](d)
    assert dec.code == code, dec
    assert dec.text().startswith(code) and len(dec.text()) <= 150


def test_every_order_rule_has_a_demo() -> None:
    order_codes = {c for c, r in CATALOGUE.items() if r.raised_by == "kernel"}
    not_order_rules = {"CHECK_ERROR", "UNKNOWN_ORDER", "REPLACE_PENDING", "REPLACE_BELOW_FILLED"}
    assert order_codes - not_order_rules == set(DEMOS)


def test_plain_orders_pass_on_the_example_limits() -> None:
    d = Demo()
    for acc in ("ACC1", "ACC2", "ACC3"):
        assert d.order(acc, "AAPL", BUY, 100, 190.0).outcome.name == "ACCEPT"
    assert d.order("ACC1", "CLZ5", SELL, 10, 75.0).accepted
    assert d.order("ACC1", "MSFT", BUY, 2300, None).outcome.name == "WARN"  # 943k: near the 1M notional cap
