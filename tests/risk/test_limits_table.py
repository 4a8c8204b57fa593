"""Each reason code at, just below and just above its limit, warn thresholds included.

Every case runs on the numba engine and on the plain-Python reference, which must agree."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from risk_testkit import A1, A2, A3, AAA, BBB, BUY, CCC, MS, NOREF, SELL, T0, dyadic_scenarios, make_cfg, same

from risk.decision import Decision, Outcome
from risk.engine import RiskEngine
from risk.reference import ReferenceRisk

ACCEPT, WARN, REJECT = Outcome.ACCEPT, Outcome.WARN, Outcome.REJECT


def both(limits: dict[str, Any], scenarios: np.ndarray | None = None) -> tuple[RiskEngine, ReferenceRisk]:
    cfg = make_cfg(limits, scenarios)
    return RiskEngine(cfg, n_sessions=4, max_orders=64), ReferenceRisk(cfg, n_sessions=4, max_orders=64)


def new(eng: RiskEngine, ref: ReferenceRisk, *args: Any, sess: int = 0, now: int = T0) -> Decision:
    a, i, side, qty, px = args[:5]
    mkt = args[5] if len(args) > 5 else False
    dup = args[6] if len(args) > 6 else False
    d = eng.check_new(sess, a, i, side, qty, px, mkt, dup, now)
    r = ref.check_new(sess, a, i, side, qty, px, mkt, dup, now)
    assert same(d, r), (d, r)
    return d


def fill_both(eng: RiskEngine, ref: ReferenceRisk, a: int, i: int, side: int, qty: float, px: float) -> None:
    eng.on_external_fill(a, i, side, qty, px)
    ref.on_external_fill(a, i, side, qty, px)


def sent_both(eng: RiskEngine, ref: ReferenceRisk, a: int, i: int, side: int, qty: float, px: float) -> tuple[int, int]:
    return eng.on_sent(a, i, side, qty, px), ref.on_sent(a, i, side, qty, px)


def has_warn(d: Decision, code: str) -> bool:
    return any(w[0] == code for w in d.warnings)


@dataclass
class Case:
    code: str
    limits: dict[str, Any]
    order: tuple[Any, ...]  # (account, instrument, side, qty, price[, market])
    expect: Outcome
    value: float | None = None
    limit: float | None = None
    warn: bool = False  # the code is among the warnings
    setup: Callable[[RiskEngine, ReferenceRisk], None] | None = None
    scenarios: np.ndarray | None = field(default=None, repr=False)


def _long_aaa_then_price(px: float) -> Callable[[RiskEngine, ReferenceRisk], None]:
    def setup(eng: RiskEngine, ref: ReferenceRisk) -> None:
        fill_both(eng, ref, A1, AAA, BUY, 1000, 100.0)
        eng.set_reference_price(AAA, px)
        ref.set_reference_price(AAA, px)
    return setup


def _long_aaa(eng: RiskEngine, ref: ReferenceRisk) -> None:
    fill_both(eng, ref, A1, AAA, BUY, 300, 100.0)


def _open_buy_400(eng: RiskEngine, ref: ReferenceRisk) -> None:
    sent_both(eng, ref, A1, AAA, BUY, 400, 100.0)


W = {"warn": 0.5}
CASES = [
    # quantity max 1000, warn at 500
    Case("QTY_MAX", {"global": {"qty_max": 1000, **W}}, (A1, AAA, BUY, 1000, 100.0), WARN, warn=True),
    Case("QTY_MAX", {"global": {"qty_max": 1000, **W}}, (A1, AAA, BUY, 999, 100.0), WARN, warn=True),
    Case("QTY_MAX", {"global": {"qty_max": 1000, **W}}, (A1, AAA, BUY, 1001, 100.0), REJECT, 1001, 1000),
    Case("QTY_MAX", {"global": {"qty_max": 1000, **W}}, (A1, AAA, BUY, 499, 100.0), ACCEPT),
    Case("QTY_MAX", {"global": {"qty_max": 1000, **W}}, (A1, AAA, BUY, 500, 100.0), WARN, warn=True),
    # the tightest scope applies: instrument 200 under global 1000
    Case("QTY_MAX", {"global": {"qty_max": 1000}, "instruments": {"AAA": {"qty_max": 200}}},
         (A1, AAA, BUY, 201, 100.0), REJECT, 201, 200),
    Case("QTY_MAX", {"global": {"qty_max": 1000}, "accounts": {"A2": {"qty_max": 300}}},
         (A2, AAA, BUY, 301, 100.0), REJECT, 301, 300),
    Case("QTY_MAX", {"global": {"qty_max": 1000}, "accounts": {"A2": {"qty_max": 300}}},
         (A1, AAA, BUY, 301, 100.0), ACCEPT),
    # quantity min 10 (largest minimum applies)
    Case("QTY_MIN", {"global": {"qty_min": 10}}, (A1, AAA, BUY, 10, 100.0), ACCEPT),
    Case("QTY_MIN", {"global": {"qty_min": 10}}, (A1, AAA, BUY, 9, 100.0), REJECT, 9, 10),
    Case("QTY_MIN", {"global": {"qty_min": 10}}, (A1, AAA, BUY, 11, 100.0), ACCEPT),
    Case("QTY_MIN", {"global": {"qty_min": 10}, "instruments": {"AAA": {"qty_min": 20}}},
         (A1, AAA, BUY, 19, 100.0), REJECT, 19, 20),
    # notional max 100k, warn at 80k; AAA ref 100, BBB multiplier 2
    Case("NOTIONAL_MAX", {"global": {"notional_max": 100_000, "warn": 0.8}}, (A1, AAA, BUY, 1000, 100.0), WARN, warn=True),
    Case("NOTIONAL_MAX", {"global": {"notional_max": 100_000, "warn": 0.8}}, (A1, AAA, BUY, 1001, 100.0), REJECT, 100_100, 100_000),
    Case("NOTIONAL_MAX", {"global": {"notional_max": 100_000, "warn": 0.8}}, (A1, AAA, BUY, 999, 100.0), WARN, warn=True),
    Case("NOTIONAL_MAX", {"global": {"notional_max": 100_000, "warn": 0.8}}, (A1, AAA, BUY, 799, 100.0), ACCEPT),
    Case("NOTIONAL_MAX", {"global": {"notional_max": 100_000}}, (A1, BBB, BUY, 1001, 50.0), REJECT, 100_100, 100_000),
    Case("NOTIONAL_MAX", {"global": {"notional_max": 100_000}}, (A1, AAA, BUY, 1001, None, True), REJECT, 100_100, 100_000),
    # collar 5 % of ref 100, warn at half of it
    Case("PRICE_COLLAR", {"global": {"collar_pct": 0.05, **W}}, (A1, AAA, BUY, 10, 105.0), WARN, warn=True),
    Case("PRICE_COLLAR", {"global": {"collar_pct": 0.05, **W}}, (A1, AAA, BUY, 10, 95.0), WARN, warn=True),
    Case("PRICE_COLLAR", {"global": {"collar_pct": 0.05, **W}}, (A1, AAA, BUY, 10, 105.25), REJECT, 0.0525, 0.05),
    Case("PRICE_COLLAR", {"global": {"collar_pct": 0.05, **W}}, (A1, AAA, SELL, 10, 94.75), REJECT, 0.0525, 0.05),
    Case("PRICE_COLLAR", {"global": {"collar_pct": 0.05, **W}}, (A1, AAA, BUY, 10, 104.75), WARN, warn=True),
    Case("PRICE_COLLAR", {"global": {"collar_pct": 0.05, **W}}, (A1, AAA, BUY, 10, 102.0), ACCEPT),
    Case("PRICE_COLLAR", {"global": {"collar_pct": 0.05}}, (A1, AAA, BUY, 10, 500.0, True), ACCEPT),  # market: no collar
    # position max 1000 (units), warn 0.9; open orders count at their worst case
    Case("POSITION_LIMIT", {"global": {"position_max": 1000, "warn": 0.9}}, (A1, AAA, BUY, 1000, 100.0), WARN, warn=True),
    Case("POSITION_LIMIT", {"global": {"position_max": 1000, "warn": 0.9}}, (A1, AAA, BUY, 1001, 100.0), REJECT, 1001, 1000),
    Case("POSITION_LIMIT", {"global": {"position_max": 1000, "warn": 0.9}}, (A1, AAA, BUY, 899, 100.0), ACCEPT),
    Case("POSITION_LIMIT", {"global": {"position_max": 1000}}, (A1, AAA, BUY, 600, 100.0), ACCEPT, setup=_open_buy_400),
    Case("POSITION_LIMIT", {"global": {"position_max": 1000}}, (A1, AAA, BUY, 601, 100.0), REJECT, 1001, 1000, setup=_open_buy_400),
    Case("POSITION_LIMIT", {"global": {"position_max": 1000}}, (A1, AAA, SELL, 1000, 100.0), ACCEPT, setup=_open_buy_400),
    # gross 100k, warn 0.75
    Case("GROSS_EXPOSURE", {"global": {"gross_max": 100_000, "warn": 0.75}}, (A1, AAA, BUY, 1000, 100.0), WARN, warn=True),
    Case("GROSS_EXPOSURE", {"global": {"gross_max": 100_000, "warn": 0.75}}, (A1, AAA, BUY, 1001, 100.0), REJECT, 100_100, 100_000),
    Case("GROSS_EXPOSURE", {"global": {"gross_max": 100_000, "warn": 0.75}}, (A1, AAA, BUY, 749, 100.0), ACCEPT),
    Case("GROSS_EXPOSURE", {"global": {"gross_max": 100_000}}, (A1, BBB, SELL, 701, 50.0), REJECT, 100_100, 100_000, setup=_long_aaa),
    Case("GROSS_EXPOSURE", {"global": {"gross_max": 100_000}}, (A1, BBB, SELL, 700, 50.0), ACCEPT, setup=_long_aaa),
    # net 50k: long 300 AAA (30k) plus BBB buys (100 per unit)
    Case("NET_EXPOSURE", {"global": {"net_max": 50_000, **W}}, (A1, BBB, BUY, 200, 50.0), WARN, warn=True, setup=_long_aaa),
    Case("NET_EXPOSURE", {"global": {"net_max": 50_000, **W}}, (A1, BBB, BUY, 201, 50.0), REJECT, 50_100, 50_000, setup=_long_aaa),
    Case("NET_EXPOSURE", {"global": {"net_max": 50_000, **W}}, (A1, BBB, BUY, 199, 50.0), WARN, warn=True, setup=_long_aaa),
    Case("NET_EXPOSURE", {"global": {"net_max": 50_000}}, (A1, BBB, SELL, 800, 50.0), ACCEPT, setup=_long_aaa),
    # sector budget 20k in S2; CCC is 200 per contract
    Case("SECTOR_EXPOSURE", {"sectors": {"S2": {"gross_max": 20_000, "warn": 0.5}}}, (A1, CCC, BUY, 100, 20.0), WARN, warn=True),
    Case("SECTOR_EXPOSURE", {"sectors": {"S2": {"gross_max": 20_000, "warn": 0.5}}}, (A1, CCC, BUY, 101, 20.0), REJECT, 20_200, 20_000),
    Case("SECTOR_EXPOSURE", {"sectors": {"S2": {"gross_max": 20_000, "warn": 0.5}}}, (A1, CCC, BUY, 49, 20.0), ACCEPT),
    Case("SECTOR_EXPOSURE", {"global": {"sector_gross_max": 20_000}}, (A1, AAA, BUY, 201, 100.0), REJECT, 20_100, 20_000),
    # leverage: A2 has 250k cash; 0.4 allows 100k gross
    Case("LEVERAGE", {"accounts": {"A2": {"leverage_max": 0.4, "warn": 0.9}}}, (A2, AAA, BUY, 1000, 100.0), WARN, warn=True),
    Case("LEVERAGE", {"accounts": {"A2": {"leverage_max": 0.4, "warn": 0.9}}}, (A2, AAA, BUY, 1001, 100.0), REJECT, 100_100 / 250_000, 0.4),
    Case("LEVERAGE", {"accounts": {"A2": {"leverage_max": 0.4, "warn": 0.9}}}, (A2, AAA, BUY, 899, 100.0), ACCEPT),
    # daily loss 10k: long 1000 AAA bought at 100, marked down
    Case("DAILY_LOSS", {"global": {"daily_loss_max": 10_000, **W}}, (A1, AAA, BUY, 1, 90.0), WARN, warn=True,
         setup=_long_aaa_then_price(90.0)),
    Case("DAILY_LOSS", {"global": {"daily_loss_max": 10_000, **W}}, (A1, AAA, BUY, 1, 89.75), REJECT, 10_250, 10_000,
         setup=_long_aaa_then_price(89.75)),
    Case("DAILY_LOSS", {"global": {"daily_loss_max": 10_000, **W}}, (A1, AAA, BUY, 1, 90.25), WARN, warn=True,
         setup=_long_aaa_then_price(90.25)),
    Case("DAILY_LOSS", {"global": {"daily_loss_max": 10_000, **W}}, (A1, AAA, BUY, 1, 95.25), ACCEPT,
         setup=_long_aaa_then_price(95.25)),
    Case("DAILY_LOSS", {"global": {"daily_loss_max": 10_000}}, (A1, AAA, SELL, 500, 80.0), ACCEPT,
         setup=_long_aaa_then_price(80.0)),  # reducing orders pass a breached loss limit
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.code}-{c.order[3]}-{c.expect.name}")
def test_limit_table(case: Case) -> None:
    eng, ref = both(case.limits, case.scenarios)
    if case.setup:
        case.setup(eng, ref)
    d = new(eng, ref, *case.order)
    assert d.outcome == case.expect, d
    if case.expect == REJECT:
        assert d.code == case.code
        assert d.value == pytest.approx(case.value, rel=1e-12)
        assert d.limit == pytest.approx(case.limit, rel=1e-12)
        assert d.runbook == f"docs/runbooks/{case.code}.md"
        assert len(d.text()) <= 150 and d.text().startswith(case.code)
    else:
        assert d.code is None
        assert has_warn(d, case.code) == case.warn, d


def _var_after(ref: ReferenceRisk, a: int, i: int, sd: float, qty: float) -> tuple[float, float]:
    return ref.var_es(a, (i, qty if sd > 0 else 0.0, qty if sd < 0 else 0.0))


@pytest.mark.parametrize("kind", ["var_max", "es_max"])
def test_var_es_at_below_above(kind: str) -> None:
    sc = dyadic_scenarios(200)
    probe = ReferenceRisk(make_cfg({}, sc))
    probe.var_on, probe.k_tail = True, 10  # 0.95 x 200 scenarios
    var, es = _var_after(probe, A1, AAA, 1.0, 500)
    v = var if kind == "var_max" else es
    code = "VAR_LIMIT" if kind == "var_max" else "ES_LIMIT"
    settings = {"var_confidence": 0.95}
    for lim, expect in ((v, WARN), (v + 1, WARN), (v - 1, REJECT)):
        eng, ref = both({"settings": settings, "global": {kind: {"limit": lim, "warn": 0.5}}}, sc)
        d = new(eng, ref, A1, AAA, BUY, 500, 100.0)
        assert d.outcome == expect
        if expect == REJECT:
            assert (d.code, d.value, d.limit) == (code, v, lim)
        else:
            assert has_warn(d, code)
        assert eng.var_es(A1) == ref.var_es(A1)
    # far below the warn level: clean accept
    eng, ref = both({"settings": settings, "global": {kind: 4 * v}}, sc)
    assert new(eng, ref, A1, AAA, BUY, 500, 100.0).outcome == ACCEPT


def test_var_limit_lets_a_risk_reducing_order_through() -> None:
    sc = dyadic_scenarios(200)
    eng, ref = both({"settings": {"var_confidence": 0.95}, "global": {"var_max": 1.0}}, sc)
    fill_both(eng, ref, A1, AAA, BUY, 500, 100.0)
    assert new(eng, ref, A1, AAA, BUY, 1, 100.0).code == "VAR_LIMIT"
    assert new(eng, ref, A1, AAA, SELL, 100, 100.0).outcome == ACCEPT


def test_order_rate_window_slides() -> None:
    eng, ref = both({"global": {"order_rate_max": {"limit": 3, "warn": 0.6}}, "settings": {"order_rate_window_ms": 1000}})
    outs = [new(eng, ref, A1, AAA, BUY, 1, 100.0, now=T0 + k * MS) for k in range(4)]
    assert [d.outcome for d in outs] == [ACCEPT, WARN, WARN, REJECT]
    assert (outs[3].code, outs[3].value, outs[3].limit) == ("ORDER_RATE", 4, 3)
    assert new(eng, ref, A2, AAA, BUY, 1, 100.0, now=T0 + 4 * MS).outcome == ACCEPT  # per account
    # the first order leaves the window exactly 1000 ms after it was sent
    assert new(eng, ref, A1, AAA, BUY, 1, 100.0, now=T0 + 999 * MS).code == "ORDER_RATE"
    assert new(eng, ref, A1, AAA, BUY, 1, 100.0, now=T0 + 1000 * MS).outcome == WARN


def test_rejected_orders_do_not_use_the_order_rate() -> None:
    eng, ref = both({"global": {"order_rate_max": 2, "qty_max": 10}})
    for k in range(5):
        assert new(eng, ref, A1, AAA, BUY, 11, 100.0, now=T0 + k).code == "QTY_MAX"
    assert new(eng, ref, A1, AAA, BUY, 1, 100.0, now=T0 + 9).outcome == ACCEPT


def test_message_rate_counts_every_message_of_the_session() -> None:
    eng, ref = both({"global": {"message_rate_max": 3, "qty_max": 10}})
    assert eng.count_message(0, T0) == ref.count_message(0, T0)
    assert new(eng, ref, A1, AAA, BUY, 11, 100.0, now=T0 + 1).code == "QTY_MAX"  # counted although rejected
    assert new(eng, ref, A1, AAA, BUY, 1, 100.0, now=T0 + 2).outcome == ACCEPT
    d = new(eng, ref, A1, AAA, BUY, 1, 100.0, now=T0 + 3)
    assert (d.code, d.value, d.limit) == ("MESSAGE_RATE", 4, 3)
    assert eng.count_message(0, T0 + 4).code == "MESSAGE_RATE"
    assert new(eng, ref, A1, AAA, BUY, 1, 100.0, sess=1, now=T0 + 5).outcome == ACCEPT  # per session
    assert new(eng, ref, A1, AAA, BUY, 1, 100.0, now=T0 + 1000 * MS).outcome == ACCEPT


# ------------------------------------------------------------------ codes without a numeric limit
def test_unknown_account_and_instrument() -> None:
    eng, ref = both({})
    assert new(eng, ref, -1, AAA, BUY, 1, 100.0).code == "UNKNOWN_ACCOUNT"
    assert new(eng, ref, 3, AAA, BUY, 1, 100.0).code == "UNKNOWN_ACCOUNT"
    assert new(eng, ref, A1, -1, BUY, 1, 100.0).code == "UNKNOWN_INSTRUMENT"
    assert new(eng, ref, A1, 5, BUY, 1, 100.0).code == "UNKNOWN_INSTRUMENT"
    assert eng.account_index("NOPE") == -1 and eng.instrument_index("NOPE") == -1
    assert eng.account_index("A2") == A2 and eng.instrument_index("CCC") == CCC


@pytest.mark.parametrize("qty", [0.0, -1.0, math.nan, math.inf, -math.inf, 2e9])
def test_bad_quantities_reject_cleanly(qty: float) -> None:
    eng, ref = both({})
    d = eng.check_new(0, A1, AAA, BUY, qty, 100.0, False, False, T0)
    assert d.code == "INVALID_QTY" and d.outcome == REJECT
    assert ref.check_new(0, A1, AAA, BUY, qty, 100.0, False, False, T0).code == "INVALID_QTY"
    assert d.text().startswith("INVALID_QTY")


@pytest.mark.parametrize("px", [0.0, -100.0, math.nan, math.inf, None, 2e9])
def test_bad_prices_reject_cleanly(px: float | None) -> None:
    eng, ref = both({})
    d = new(eng, ref, A1, AAA, BUY, 1, px)
    assert d.code == "INVALID_PRICE"


def test_wrong_types_fail_closed() -> None:
    eng, _ = both({})
    for qty in ("abc", None, object()):
        d = eng.check_new(0, A1, AAA, BUY, qty, 100.0, False, False, T0)  # type: ignore[arg-type]
        assert d.outcome == REJECT and d.code == "CHECK_ERROR"
    d = eng.check_new(0, A1, AAA, BUY, 1, "x", False, False, T0)  # type: ignore[arg-type]
    assert d.code == "CHECK_ERROR"


def test_side_tick_duplicate() -> None:
    eng, ref = both({})
    assert new(eng, ref, A1, AAA, 3, 1, 100.0).code == "INVALID_ORDER"
    assert new(eng, ref, A1, AAA, 5, 1, 100.0).outcome == ACCEPT  # sell short is a sell
    d = new(eng, ref, A1, AAA, BUY, 1, 100.1)
    assert (d.code, d.value, d.limit) == ("PRICE_TICK", 100.1, 0.25)
    assert new(eng, ref, A1, AAA, BUY, 1, 100.25).outcome == ACCEPT
    assert new(eng, ref, A1, AAA, BUY, 1, 100.0, False, True).code == "DUPLICATE_CLORDID"


def test_kill_switches_restricted_and_permissions() -> None:
    eng, ref = both({"restricted": ["DDD"]})
    assert new(eng, ref, A1, 3, BUY, 1, 8.0).code == "RESTRICTED_INSTRUMENT"
    assert new(eng, ref, A3, CCC, BUY, 1, 20.0).code == "INSTRUMENT_NOT_PERMITTED"
    assert new(eng, ref, A3, AAA, BUY, 1, 100.0).outcome == ACCEPT
    for scope, idx, code in (("global", 0, "KILL_SWITCH_GLOBAL"), ("account", A1, "KILL_SWITCH_ACCOUNT"),
                             ("instrument", AAA, "KILL_SWITCH_INSTRUMENT")):
        eng.set_kill(scope, idx, True)
        ref.set_kill(scope, idx, True)
        assert eng.kill_state(scope, idx)
        assert new(eng, ref, A1, AAA, BUY, 1, 100.0).code == code
        if scope != "global":
            assert new(eng, ref, A2, BBB, BUY, 1, 50.0).outcome == ACCEPT
        eng.set_kill(scope, idx, False)
        ref.set_kill(scope, idx, False)
        assert new(eng, ref, A1, AAA, BUY, 1, 100.0).outcome == ACCEPT
    with pytest.raises(ValueError):
        eng.set_kill("desk", 0, True)
    with pytest.raises(IndexError):
        eng.set_kill("account", 7, True)


def test_reduce_only_passes_strictly_reducing_orders() -> None:
    eng, ref = both({})
    fill_both(eng, ref, A1, AAA, BUY, 100, 100.0)
    for scope, idx in (("global", 0), ("account", A1), ("instrument", AAA)):
        eng.set_reduce_only(scope, idx, True)
        ref.set_reduce_only(scope, idx, True)
        assert new(eng, ref, A1, AAA, SELL, 100, 100.0).outcome == ACCEPT
        d = new(eng, ref, A1, AAA, SELL, 101, 100.0)  # would flip to short
        assert (d.code, d.value) == ("REDUCE_ONLY", 100)
        assert new(eng, ref, A1, AAA, BUY, 1, 100.0).code == "REDUCE_ONLY"
        eng.set_reduce_only(scope, idx, False)
        ref.set_reduce_only(scope, idx, False)
    # open sells count: 60 working + 50 more could flip the position
    sent_both(eng, ref, A1, AAA, SELL, 60, 100.0)
    eng.set_reduce_only("account", A1, True)
    ref.set_reduce_only("account", A1, True)
    assert new(eng, ref, A1, AAA, SELL, 40, 100.0).outcome == ACCEPT
    assert new(eng, ref, A1, AAA, SELL, 41, 100.0).code == "REDUCE_ONLY"


def test_no_reference_price_and_the_fallback_chain() -> None:
    eng, ref = both({"global": {"collar_pct": 0.05}})
    assert new(eng, ref, A1, NOREF, BUY, 1, 10.0).code == "NO_REFERENCE_PRICE"
    assert new(eng, ref, A1, NOREF, BUY, 1, None, True).code == "NO_REFERENCE_PRICE"
    assert math.isnan(eng.reference_price(NOREF))
    fill_both(eng, ref, A2, NOREF, BUY, 1, 10.0)  # last fill becomes the reference
    assert eng.reference_price(NOREF) == 10.0
    assert new(eng, ref, A1, NOREF, BUY, 1, 10.5).outcome == ACCEPT
    assert new(eng, ref, A1, NOREF, BUY, 1, 10.75).code == "PRICE_COLLAR"
    eng.set_reference_price(NOREF, 20.0)  # live beats last fill
    ref.set_reference_price(NOREF, 20.0)
    assert new(eng, ref, A1, NOREF, BUY, 1, 20.5).outcome == ACCEPT
    assert eng.reference_price(AAA) == 100.0  # configured when nothing else
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            eng.set_reference_price(AAA, bad)
    assert eng.reference_price(AAA) == 100.0


def test_replace_codes() -> None:
    eng, ref = both({})
    s, o = sent_both(eng, ref, A1, AAA, BUY, 100, 100.0)
    eng.on_fill(s, 40, 100.0)
    ref.on_fill(o, 40, 100.0)
    for new_qty, code in ((40, "REPLACE_BELOW_FILLED"), (30, "REPLACE_BELOW_FILLED")):
        d = eng.check_replace(s, new_qty, 100.0, T0, 0)
        assert d == ref.check_replace(o, new_qty, 100.0, T0, 0)
        assert (d.code, d.value, d.limit) == (code, new_qty, 40)
    assert eng.check_replace(s, 41, 100.0, T0, 0).outcome == ACCEPT
    eng.on_replace_pending(s, 80, 100.0)
    assert eng.check_replace(s, 90, 100.0, T0, 0).code == "REPLACE_PENDING"
    assert eng.check_replace(63, 90, 100.0, T0, 0).code == "UNKNOWN_ORDER"
    assert eng.check_replace(-1, 90, 100.0, T0, 0).code == "UNKNOWN_ORDER"
    assert eng.check_replace(10_000, 90, 100.0, T0, 0).code == "UNKNOWN_ORDER"
    assert eng.check_replace(s, 90, 100.0, T0, 0, duplicate=True).code == "REPLACE_PENDING"
    eng.on_replace_rejected(s)
    assert eng.check_replace(s, 90, 100.0, T0, 0, duplicate=True).code == "DUPLICATE_CLORDID"
    assert eng.check_replace(s, 90, 100.1, T0, 0).code == "PRICE_TICK"


def test_check_error_on_bad_session_and_full_book() -> None:
    cfg = make_cfg({})
    eng = RiskEngine(cfg, n_sessions=2, max_orders=2)
    assert eng.check_new(2, A1, AAA, BUY, 1, 100.0, False, False, T0).code == "CHECK_ERROR"
    assert eng.check_new(-1, A1, AAA, BUY, 1, 100.0, False, False, T0).code == "CHECK_ERROR"
    assert eng.count_message(5, T0).code == "CHECK_ERROR"
    eng.on_sent(A1, AAA, BUY, 1, 100.0)
    eng.on_sent(A1, AAA, BUY, 1, 100.0)
    d = eng.check_new(0, A1, AAA, BUY, 1, 100.0, False, False, T0)
    assert (d.code, d.value) == ("CHECK_ERROR", 2)
    with pytest.raises(RuntimeError):
        eng.on_sent(A1, AAA, BUY, 1, 100.0)


def test_decision_text_is_short_and_names_the_runbook() -> None:
    eng, _ = both({"global": {"qty_max": 10_000}})
    d = eng.check_new(0, A1, AAA, BUY, 20_000, 100.0, False, False, T0)
    assert d.text() == "QTY_MAX: order qty 20000 > limit 10000; see docs/runbooks/QTY_MAX.md"
    assert d.ord_rej_reason == 3 and d.cxl_rej_reason == 2
    assert eng.check_new(0, A1, AAA, BUY, 1, 100.0, False, False, T0).text() == "accepted"
