"""Hypothesis properties of the risk core.

1. The numba engine and the plain-Python reference agree on every decision and every read-out
   along random sequences of orders, fills, cancels, replaces, busts, price moves and switches.
2. A sequence of accepted orders never takes an exposure past its limit.
3. Reduce-only never blocks a strictly reducing order unless a kill switch is on.
4. Replaces never double count: the replacement's exposure replaces the original's.
"""
from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from risk_testkit import A1, BUY, INSTRUMENTS, MS, SELL, T0, dyadic_scenarios, make_cfg, same

from risk.decision import Outcome
from risk.engine import RiskEngine
from risk.reference import ReferenceRisk

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
N_INS = len(INSTRUMENTS)
SCEN = dyadic_scenarios(40, seed=11)

AGREE_LIMITS: dict[str, Any] = {
    "settings": {"var_confidence": 0.95, "order_rate_window_ms": 1000, "message_rate_window_ms": 1000},
    "global": {
        "qty_max": {"limit": 2000, "warn": 0.7}, "notional_max": {"limit": 150_000, "warn": 0.8},
        "collar_pct": {"limit": 0.05, "warn": 0.6}, "position_max": {"limit": 1500, "warn": 0.8},
        "gross_max": {"limit": 250_000, "warn": 0.8}, "net_max": 180_000, "sector_gross_max": 200_000,
        "leverage_max": {"limit": 1.5, "warn": 0.9}, "daily_loss_max": {"limit": 3_000, "warn": 0.5},
        "var_max": {"limit": 6_000, "warn": 0.8}, "es_max": 7_000,
        "order_rate_max": {"limit": 8, "warn": 0.75}, "message_rate_max": {"limit": 12, "warn": 0.75},
    },
    "accounts": {"A2": {"leverage_max": 0.5, "daily_loss_max": 1_000, "var_max": 2_500}},
    "sectors": {"S2": {"gross_max": 60_000, "warn": 0.9}},
    "instruments": {"CCC": {"qty_max": 300, "position_max": 500}},
}


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], n: int = 12) -> st.SearchStrategy[Any]:
    # one_of() would collapse repeated branches, so weight by drawing the branch index first
    return st.integers(0, n).flatmap(lambda k: good if k < n else bad)


qtys = _mostly(st.integers(1, 2500).map(float), st.sampled_from([0.0, -5.0, math.nan, math.inf, 1e10]))
ticks = st.integers(-24, 24)
new_op = st.tuples(st.just("new"), st.integers(0, 2), _mostly(st.integers(0, 2), st.sampled_from([-1, 3])),
                   _mostly(st.integers(0, N_INS - 1), st.sampled_from([-1, N_INS])),
                   _mostly(st.sampled_from([1, 2, 5]), st.just(3)), qtys, ticks, st.integers(0, 5).map(lambda x: x == 0),
                   st.integers(0, 40).map(lambda x: x == 0), st.integers(0, 400))
other_op = st.one_of(
    st.tuples(st.just("fill"), st.integers(0, 99), st.integers(1, 4), ticks),
    st.tuples(st.just("cancel"), st.integers(0, 99)),
    st.tuples(st.just("replace"), st.integers(0, 99), st.integers(1, 2500).map(float), ticks,
              st.sampled_from(["done", "rejected", "fill_then_done", "fill_then_rejected"])),
    st.tuples(st.just("price"), st.integers(0, N_INS - 1), ticks),
    st.tuples(st.just("xfill"), st.integers(0, 2), st.integers(0, N_INS - 1), st.sampled_from([1, 2]),
              st.integers(1, 800).map(float), ticks),
    st.tuples(st.just("bust"), st.integers(0, 99)),
    st.tuples(st.just("switch"), st.sampled_from(["kill", "reduce"]),
              st.sampled_from(["global", "account", "instrument"]), st.integers(0, 2),
              st.integers(0, 2).map(lambda x: x == 0)),
    st.tuples(st.just("msg"), st.integers(0, 2), st.integers(0, 300)),
)
# about half the operations are new orders; the rest move the state around them
ops = st.integers(0, 9).flatmap(lambda k: new_op if k < 5 else other_op)


def _px(eng: RiskEngine, i: int, t: int) -> float:
    """A price t/4 % off the reference, on the 0.25 tick (|t| > 20 is outside a 5 % collar)."""
    ref = eng.reference_price(i) if 0 <= i < N_INS else 10.0
    base = ref if ref > 0 else 10.0
    return max(round(base * (1 + t / 400) * 4) / 4, 0.25)


def _assert_state(eng: RiskEngine, ref: ReferenceRisk) -> None:
    for a in range(3):
        for i in range(N_INS):
            assert eng.position(a, i) == ref.pos.get((a, i), 0.0)
            assert eng.open_exposure(a, i) == ref.open_qty(a, i)
        assert eng.account_gross(a) == ref.gross(a)
        assert eng.account_net(a) == ref.net(a)
        assert eng.equity(a) == ref.equity(a)
        assert eng.daily_pnl(a) == ref.daily_pnl(a)
        assert eng.realised_pnl(a) == ref.realised[a]
        for sec in ("S1", "S2"):
            assert eng.sector_exposure(a, sec) == ref.sector_gross(a, sec)
        assert eng.var_es(a) == ref.var_es(a)


@settings(PROPS, max_examples=150)
@given(st.lists(ops, min_size=20, max_size=60))
def test_kernel_and_reference_agree(seq: list[tuple[Any, ...]]) -> None:
    cfg = make_cfg(AGREE_LIMITS, SCEN)
    eng, ref = RiskEngine(cfg, n_sessions=3, max_orders=40), ReferenceRisk(cfg, n_sessions=3, max_orders=40)
    now = T0
    live: list[tuple[int, int]] = []  # (engine slot, reference id)
    xfills: list[tuple[int, int, int, float, float]] = []
    for op in seq:
        kind = op[0]
        if kind == "new":
            _, sess, a, i, side, qty, t, mkt, dup, dt = op
            now += dt * MS
            px = None if mkt else _px(eng, i, t)
            d = eng.check_new(sess, a, i, side, qty, px, mkt, dup, now)
            r = ref.check_new(sess, a, i, side, qty, px, mkt, dup, now)
            assert same(d, r), (op, d, r)
            event(f"new: {d.code or d.outcome.name}")
            if d.accepted:
                live.append((eng.on_sent(a, i, side, qty, px, sess), ref.on_sent(a, i, side, qty, px)))
        elif kind == "fill" and live:
            _, k, part, t = op
            s, o = live[k % len(live)]
            leaves = ref.orders[o].reserved()
            q = max(1.0, math.floor(leaves / part))
            px = _px(eng, int(ref.orders[o].instrument), t)
            done = eng.on_fill(s, q, px)
            assert done == ref.on_fill(o, q, px)
            if done:
                live.remove((s, o))
        elif kind == "cancel" and live:
            s, o = live.pop(op[1] % len(live))
            assert eng.on_cancel(s) and ref.on_cancel(o)
        elif kind == "replace" and live:
            _, k, q, t, how = op
            s, o = live[k % len(live)]
            px = _px(eng, ref.orders[o].instrument, t)
            now += MS
            d = eng.check_replace(s, q, px, now, 0)
            r = ref.check_replace(o, q, px, now, 0)
            assert same(d, r), (op, d, r)
            event(f"replace: {d.code or d.outcome.name}")
            if not d.accepted:
                continue
            assert eng.on_replace_pending(s, q, px) == ref.on_replace_pending(o, q, px)
            if how.startswith("fill"):
                f = max(1.0, math.floor(ref.orders[o].reserved() / 3))
                assert eng.on_fill(s, f, px) == ref.on_fill(o, f, px)
            done = eng.on_replaced(s, q, px) if how.endswith("done") else eng.on_replace_rejected(s)
            rdone = ref.on_replaced(o, q, px) if how.endswith("done") else ref.on_replace_rejected(o)
            assert done == rdone
            if done:
                live.remove((s, o))
        elif kind == "price":
            _, i, t = op
            px = _px(eng, i, t)
            eng.set_reference_price(i, px)
            ref.set_reference_price(i, px)
        elif kind == "xfill":
            _, a, i, side, q, t = op
            px = _px(eng, i, t)
            eng.on_external_fill(a, i, side, q, px)
            ref.on_external_fill(a, i, side, q, px)
            xfills.append((a, i, side, q, px))
        elif kind == "bust" and xfills:
            a, i, side, q, px = xfills.pop(op[1] % len(xfills))
            eng.on_bust(a, i, side, q, px)
            ref.on_bust(a, i, side, q, px)
        elif kind == "switch":
            _, what, scope, idx, on = op
            getattr(eng, f"set_{'kill' if what == 'kill' else 'reduce_only'}")(scope, idx, on)
            getattr(ref, f"set_{'kill' if what == 'kill' else 'reduce_only'}")(scope, idx, on)
        elif kind == "msg":
            _, sess, dt = op
            now += dt * MS
            assert same(eng.count_message(sess, now), ref.count_message(sess, now))
        _assert_state(eng, ref)
    assert eng.open_order_count() == len(ref.orders)


# ------------------------------------------------------------------ never past a limit
CAPS: dict[str, Any] = {"global": {"position_max": 1500, "gross_max": 300_000, "net_max": 200_000,
                                   "sector_gross_max": 220_000, "leverage_max": 0.5, "qty_max": 2500}}
order = st.tuples(st.integers(0, 2), st.integers(0, 3), st.sampled_from([BUY, SELL]), st.integers(1, 2500),
                  st.integers(0, 3))


@PROPS
@given(st.lists(order, min_size=1, max_size=60))
def test_accepted_orders_never_take_exposure_past_a_limit(orders: list[tuple[int, int, int, int, int]]) -> None:
    cfg = make_cfg(CAPS)
    eng = RiskEngine(cfg, n_sessions=1, max_orders=100)
    for i in range(4):  # live prices fixed: a fill at the reference price moves no equity
        eng.set_reference_price(i, INSTRUMENTS[i]["reference_price"])
    slots: list[int] = []
    for n, (a, i, side, qty, fill_mode) in enumerate(orders):
        px = INSTRUMENTS[i]["reference_price"]
        if eng.check_new(0, a, i, side, qty, px, False, False, T0 + n).accepted:
            s = eng.on_sent(a, i, side, qty, px)
            if fill_mode == 1:
                eng.on_fill(s, qty, px)
            elif fill_mode == 2:
                eng.on_fill(s, max(1, qty // 2), px)
                slots.append(s)
            elif fill_mode == 3:
                eng.on_cancel(s)
            else:
                slots.append(s)
        for acc in range(3):
            assert eng.account_gross(acc) <= 300_000
            assert eng.account_net(acc) <= 200_000
            assert eng.account_gross(acc) <= 0.5 * eng.equity(acc)
            for sec in ("S1", "S2"):
                assert eng.sector_exposure(acc, sec) <= 220_000
            for ins in range(4):
                ob, os_ = eng.open_exposure(acc, ins)
                p = eng.position(acc, ins)
                assert max(abs(p + ob), abs(p - os_)) <= 1500


# ------------------------------------------------------------------ reduce-only
@PROPS
@given(st.integers(0, 1), st.integers(0, 3), st.integers(-2000, 2000).filter(lambda p: p != 0),
       st.integers(0, 500), st.integers(0, 500), st.data(),
       st.sampled_from(["global", "account", "instrument"]), st.sampled_from([None, "global", "account", "instrument"]))
def test_reduce_only_never_blocks_a_strictly_reducing_order(a: int, i: int, pos: int, open_buy: int, open_sell: int,
                                                            data: st.DataObject, scope: str, kill: str | None) -> None:
    cfg = make_cfg({"global": {"qty_max": 5000, "notional_max": 10_000_000}})
    eng = RiskEngine(cfg, n_sessions=1, max_orders=16)
    px = INSTRUMENTS[i]["reference_price"]
    eng.on_external_fill(a, i, BUY if pos > 0 else SELL, abs(pos), px)
    if open_buy:
        eng.on_sent(a, i, BUY, open_buy, px)
    if open_sell:
        eng.on_sent(a, i, SELL, open_sell, px)
    # strictly reducing: cannot cross zero even if every same-side open order fills
    room = pos - open_sell if pos > 0 else -pos - open_buy
    if room < 1:
        return
    side = SELL if pos > 0 else BUY
    qty = data.draw(st.integers(1, room))
    idx = {"global": 0, "account": a, "instrument": i}
    snap = eng.snapshot()
    free = eng.check_new(0, a, i, side, qty, px, False, False, T0)
    eng.restore(snap)
    eng.set_reduce_only(scope, idx[scope], True)
    if kill:
        eng.set_kill(kill, idx[kill], True)
    d = eng.check_new(0, a, i, side, qty, px, False, False, T0)
    assert d.code != "REDUCE_ONLY"
    if kill:
        assert d.code.startswith("KILL_SWITCH")
    else:
        assert d == free and d.accepted
    # and an order that adds to the position is blocked
    eng.set_kill(kill or "global", 0 if not kill else idx[kill], False)
    grow = eng.check_new(0, a, i, BUY if pos > 0 else SELL, 1, px, False, False, T0 + 1)
    assert grow.code == "REDUCE_ONLY"


# ------------------------------------------------------------------ replaces
@PROPS
@given(st.integers(1, 1000), st.integers(0, 999), st.integers(1, 1000), st.integers(0, 400),
       st.sampled_from([BUY, SELL]), st.sampled_from(["done", "rejected"]))
def test_replaces_never_double_count(qty: int, filled_raw: int, new_qty_raw: int, other: int, side: int, how: str) -> None:
    filled = min(filled_raw, qty - 1)
    new_qty = filled + new_qty_raw
    limit = qty + other  # the book sits exactly at the position limit
    cfg = make_cfg({"global": {"position_max": limit, "qty_max": 5000, "notional_max": 10_000_000}})
    eng = RiskEngine(cfg, n_sessions=1, max_orders=8)
    eng.on_sent(A1, 0, side, other, 100.0) if other else None
    s = eng.on_sent(A1, 0, side, qty, 100.0)
    if filled:
        eng.on_fill(s, filled, 100.0)
    sd = 1 if side == BUY else -1

    def worst() -> float:
        ob, os_ = eng.open_exposure(A1, 0)
        p = eng.position(A1, 0)
        return max(abs(p + ob), abs(p - os_))

    assert worst() == limit
    # replacing an order by itself never counts it twice, even at the limit
    assert eng.check_replace(s, qty, 100.0, T0, 0).accepted
    d = eng.check_replace(s, new_qty, 100.0, T0 + 1, 0)
    expect_worst = other + new_qty  # position (filled) + other + new leaves, all on one side
    if expect_worst <= limit:
        assert d.accepted
    else:
        assert (d.code, d.value, d.limit) == ("POSITION_LIMIT", expect_worst, limit)
        return
    eng.on_replace_pending(s, new_qty, 100.0)
    held = eng.open_exposure(A1, 0)[0 if sd > 0 else 1]
    assert held == other + max(qty, new_qty) - filled  # worst case of old and new while pending
    if how == "done":
        eng.on_replaced(s, new_qty, 100.0)
        assert eng.open_exposure(A1, 0)[0 if sd > 0 else 1] == other + new_qty - filled
    else:
        eng.on_replace_rejected(s)
        assert eng.open_exposure(A1, 0)[0 if sd > 0 else 1] == other + qty - filled
    assert worst() <= limit


def test_same_state_same_order_same_decision() -> None:
    cfg = make_cfg(AGREE_LIMITS, SCEN)
    eng = RiskEngine(cfg, n_sessions=1, max_orders=8)
    eng.on_external_fill(A1, 0, BUY, 700, 100.0)
    snap = eng.snapshot()
    first = [eng.check_new(0, A1, i, BUY, 1500, None, True, False, T0 + i) for i in range(4)]
    eng.restore(snap)
    again = [eng.check_new(0, A1, i, BUY, 1500, None, True, False, T0 + i) for i in range(4)]
    assert first == again
    assert any(d.outcome != Outcome.ACCEPT for d in first)
