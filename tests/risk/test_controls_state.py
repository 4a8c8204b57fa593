"""The controls' own state, without sessions: breaker windows, the self-match book, short-sale use, and what a
checkpoint keeps of them (tests/test_controls.py has the same controls over real FIX sessions)."""

from __future__ import annotations

import math

from config.settings import BreakerSettings, ControlsSettings
from gateway.control.checkpoint import _decode_ledger, _encode_ledger
from gateway.orders.ledger import CANCELED, NEW, Ledger
from risk.controls import Controls, crosses

S = 1_000_000_000


def test_a_breaker_trips_on_the_count_above_its_limit_within_the_window_only() -> None:
    c = Controls(ControlsSettings(breakers=BreakerSettings(reject_storm_count=2, reject_storm_window_s=10)))
    assert c.on_reject("s", "A", "QTY_MAX", 0) == []
    assert c.on_reject("s", "A", "QTY_MAX", 5 * S) == []
    assert c.on_reject("s", "A", "QTY_MAX", 11 * S) == []  # the first has left the window: 2 in it
    trips = c.on_reject("s", "A", "QTY_MAX", 12 * S)
    assert [(t.code, t.scope, t.value, t.limit) for t in trips] == [("REJECT_STORM", "session:s", 3, 2),
                                                                    ("REJECT_STORM", "account:A", 3, 2)]
    for t in trips:
        c.trip(t)
    assert c.blocked("s", "B", "", "", "AAPL").code == "REJECT_STORM"  # type: ignore[union-attr]
    assert c.blocked("t", "B", "", "", "AAPL") is None
    assert c.clear("REJECT_STORM", "session:s") and not c.clear("REJECT_STORM", "session:s")
    assert c.on_reject("s", "", "QTY_MAX", 13 * S) == []  # counting starts again after a clear


def test_the_state_a_checkpoint_keeps_round_trips() -> None:
    c = Controls(ControlsSettings())
    c.switch("kill", "trader:t1", True)
    c.switch("reduce_only", "strategy:s1", True)
    c.halt("AAPL", True, "venue")
    c.halt("AAPL", True, "operator ops")
    c.halt("MSFT", True, "operator ops")
    c.halt("AAPL", False, "venue")  # a venue resume leaves the operator's halt
    back = Controls(ControlsSettings())
    back.load_state(c.state())
    assert (back.kills, back.reduce_only, back.halts) == ({"trader:t1"}, {"strategy:s1"},
                                                           {"AAPL": "operator ops", "MSFT": "operator ops"})


def test_crossing_prices() -> None:
    assert crosses("1", 100.0, "2", 100.0) and crosses("1", 101.0, "5", 100.0)
    assert not crosses("1", 99.0, "2", 100.0) and not crosses("1", 100.0, "1", 90.0)
    assert crosses("2", 100.0, "1", 100.5) and not crosses("2", 101.0, "1", 100.5)
    assert crosses("1", math.nan, "2", 1e9) and crosses("2", 100.0, "1", math.nan)


def _ledger() -> Ledger:
    led = Ledger()
    for n, (side, px) in enumerate((("2", 101.0), ("2", 100.0), ("2", 103.0), ("1", 99.0))):
        led.add_new("s", f"c{n}", f"v{n}", "A", "X", side, "2", 10, px, -1, owner="account:A")
    return led


def test_the_self_match_book_finds_the_crossed_orders_and_forgets_done_and_repriced_ones() -> None:
    led = _ledger()
    assert led.crossing("account:A", "X", "1", 99.5) == []
    assert sorted(o.cl_ord_id for o in led.crossing("account:A", "X", "1", 101.0)) == ["c0", "c1"]
    assert [o.cl_ord_id for o in led.crossing("account:A", "X", "2", 98.0)] == ["c3"]
    assert led.crossing("account:B", "X", "1", 200.0) == [] and led.crossing("account:A", "Y", "1", 200.0) == []
    led.set_status(led.orders[2], CANCELED)  # c1 @100 is done
    o = led.orders[1]
    o.price = 104.0  # c0 replaced up to 104
    led.repriced(o)
    assert led.crossing("account:A", "X", "1", 101.0) == []
    assert [o.cl_ord_id for o in led.crossing("account:A", "X", "1", math.nan)] != []
    led.set_status(led.orders[2], NEW)  # a bust reopens c1
    assert [o.cl_ord_id for o in led.crossing("account:A", "X", "1", 101.0)] == ["c1"]


def test_short_sales_use_their_fills_and_open_leaves_and_a_checkpoint_keeps_both() -> None:
    led = Ledger()
    a = led.add_new("s", "s1", "v1", "A", "X", "5", "2", 100, 10.0, -1)
    b = led.add_new("s", "s2", "v2", "A", "X", "5", "2", 50, 10.0, -1)
    a.cum_qty = 60
    led.short_filled_by(a, 60)
    assert led.short_used("A", "X") == 60 + 40 + 50
    led.set_status(b, CANCELED)
    assert led.short_used("A", "X") == 100
    back = _decode_ledger(_encode_ledger(led))
    assert back.short_used("A", "X") == 100 and back.short_used("A", "Y") == 0
    led.short_filled_by(a, -60)  # a bust
    assert led.short_used("A", "X") == 40
