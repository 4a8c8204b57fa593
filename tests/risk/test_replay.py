"""Batch replay applies the same rules as the in-line calls, and answers what-if on new limits."""
from __future__ import annotations

import numpy as np
import pytest
from risk_testkit import A1, A2, AAA, BBB, BUY, CCC, MS, SELL, T0, make_cfg

from risk.engine import RiskEngine
from risk.replay import CANCEL, EVENT_DTYPE, FILL, MSG, NEW, PRICE, REPLACE, replay

LIMITS = {"global": {"qty_max": 1000, "gross_max": 150_000, "collar_pct": 0.05,
                     "order_rate_max": {"limit": 20, "warn": 0.5}, "message_rate_max": 30}}


def _flow(n_orders: int, seed: int) -> np.ndarray:
    """A recorded day in miniature: orders, partial fills, cancels, replaces, prices, messages."""
    rng = np.random.default_rng(seed)
    ev: list[tuple] = []
    now = T0
    px = {AAA: 100.0, BBB: 50.0, CCC: 20.0}
    for _ in range(n_orders):
        now += int(rng.integers(1, 120)) * MS
        i = int(rng.choice([AAA, BBB, CCC]))
        side = BUY if rng.random() < 0.55 else SELL
        qty = float(rng.integers(1, 1400))
        price = px[i] + 0.25 * int(rng.integers(-30, 30))
        ev.append((NEW, int(rng.integers(0, 2)), int(rng.integers(0, 2)), i, side, qty, price, 0, 0, now, -1))
        k = len(ev) - 1
        r = rng.random()
        if r < 0.4:
            ev.append((FILL, 0, 0, 0, 0, float(max(1, qty // 2)), price, 0, 0, now + MS, k))
        elif r < 0.6:
            ev.append((CANCEL, 0, 0, 0, 0, 0.0, 0.0, 0, 0, now + MS, k))
        elif r < 0.75:
            ev.append((REPLACE, 0, 0, 0, 0, qty + 100, price, 0, 0, now + MS, k))
            ev.append((FILL, 0, 0, 0, 0, qty + 100, price, 0, 0, now + 2 * MS, k))
        if rng.random() < 0.1:
            px[i] += 0.25 * int(rng.integers(-4, 5))
            ev.append((PRICE, 0, 0, i, 0, 0.0, px[i], 0, 0, now, -1))
        if rng.random() < 0.1:
            ev.append((MSG, 0, 0, 0, 0, 0.0, 0.0, 0, 0, now, -1))
    return np.array(ev, dtype=EVENT_DTYPE)


def _sequential(eng: RiskEngine, events: np.ndarray) -> list[int]:
    """The same flow through the in-line API, the way the gateway would drive it."""
    codes: list[int] = []
    slot: dict[int, int] = {}
    for k, e in enumerate(events):
        kind, ref = int(e["kind"]), int(e["ref"])
        code = 0
        if kind == NEW:
            d = eng.check_new(int(e["session"]), int(e["account"]), int(e["instrument"]), int(e["side"]),
                              float(e["qty"]), float(e["price"]), False, False, int(e["now_ns"]))
            if d.accepted:
                slot[k] = eng.on_sent(int(e["account"]), int(e["instrument"]), int(e["side"]), float(e["qty"]),
                                      float(e["price"]), int(e["session"]))
                eng.on_ack(slot[k])
            code = d.code
        elif kind == FILL:
            if ref in slot:
                if eng.on_fill(slot[ref], float(e["qty"]), float(e["price"])):
                    del slot[ref]
            else:
                code = "UNKNOWN_ORDER"
        elif kind == CANCEL:
            d = eng.count_message(int(e["session"]), int(e["now_ns"]))
            code = d.code
            if d.accepted and ref in slot:
                eng.on_cancel(slot.pop(ref))
        elif kind == REPLACE:
            d = eng.check_replace(slot.get(ref, -1), float(e["qty"]), float(e["price"]), int(e["now_ns"]),
                                  int(e["session"]))
            code = d.code
            if d.accepted and eng.on_replaced(slot[ref], float(e["qty"]), float(e["price"])):
                del slot[ref]
        elif kind == PRICE:
            eng.set_reference_price(int(e["instrument"]), float(e["price"]))
        elif kind == MSG:
            code = eng.count_message(int(e["session"]), int(e["now_ns"])).code
        codes.append(code or 0)
    return codes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_matches_the_inline_calls(seed: int) -> None:
    events = _flow(400, seed)
    cfg = make_cfg(LIMITS)
    a, b = RiskEngine(cfg, n_sessions=2, max_orders=512), RiskEngine(cfg, n_sessions=2, max_orders=512)
    res = replay(a, events)
    seq = _sequential(b, events)
    from risk.reasons import CATALOGUE
    assert [c if c > 0 else 0 for c in res.codes.tolist()] == [CATALOGUE[c].id if c else 0 for c in seq]
    for acc in (A1, A2):
        assert a.account_gross(acc) == b.account_gross(acc)
        assert a.daily_pnl(acc) == b.daily_pnl(acc)
        for i in (AAA, BBB, CCC):
            assert a.position(acc, i) == b.position(acc, i)
            assert a.open_exposure(acc, i) == b.open_exposure(acc, i)
    rejects = res.rejects()
    assert {"QTY_MAX", "PRICE_COLLAR"} <= set(rejects)
    assert res.accepted + sum(rejects.values()) == len(events)
    assert np.isnan(res.values[res.codes <= 0]).all()


def test_what_if_tighter_limits_reject_more_and_skip_their_fills() -> None:
    events = _flow(300, 9)
    loose = replay(RiskEngine(make_cfg(LIMITS), n_sessions=2, max_orders=512), events)
    tight_limits = {"global": {**LIMITS["global"], "qty_max": 300}}
    tight_eng = RiskEngine(make_cfg(tight_limits), n_sessions=2, max_orders=512)
    tight = replay(tight_eng, events)
    new = events["kind"] == NEW
    assert (tight.codes[new] > 0).sum() > (loose.codes[new] > 0).sum()
    assert tight.rejects()["QTY_MAX"] > loose.rejects().get("QTY_MAX", 0)
    # a fill of an order the new limits would have rejected has no order to land on
    assert tight.rejects()["UNKNOWN_ORDER"] > loose.rejects().get("UNKNOWN_ORDER", 0)


def test_replay_from_a_live_engine_leaves_it_alone() -> None:
    live = RiskEngine(make_cfg(LIMITS), n_sessions=2, max_orders=512)
    live.on_external_fill(A1, AAA, BUY, 500, 100.0)
    snap = live.snapshot()
    res = replay(live.with_config(make_cfg({"global": {"qty_max": 10}})), _flow(50, 4))
    assert res.rejects()["QTY_MAX"] > 0
    assert all(np.array_equal(x, y, equal_nan=True) for x, y in zip(snap, live.snapshot()))


def test_replay_rejects_a_wrong_dtype() -> None:
    with pytest.raises(TypeError):
        replay(RiskEngine(make_cfg({}), n_sessions=1, max_orders=4), np.zeros(3))
