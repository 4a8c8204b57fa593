"""Order-lifecycle transitions, trade busts/corrections, drop-copy fills, reloads and read-outs."""
from __future__ import annotations

import math

import numpy as np
import pytest
from risk_testkit import A1, A2, AAA, ACCOUNTS, BBB, BUY, CCC, INSTRUMENTS, SELL, T0, make_cfg

from config.risk_models import risk_config_from_data
from risk.engine import RiskEngine, UnknownSlot


@pytest.fixture
def eng() -> RiskEngine:
    return RiskEngine(make_cfg({"global": {"gross_max": 1_000_000, "net_max": 1_000_000}}), n_sessions=2,
                      max_orders=8)


def test_new_ack_partial_and_full_fill(eng: RiskEngine) -> None:
    s = eng.on_sent(A1, BBB, BUY, 100, 50.0)
    assert eng.open_exposure(A1, BBB) == (100, 0)
    assert eng.account_gross(A1) == 100 * 50.0 * 2  # worst case at the reference price x multiplier
    eng.on_ack(s)
    assert eng.order(s)["state"] == 2
    assert eng.on_fill(s, 30, 49.5, T0) is False
    assert eng.position(A1, BBB) == 30 and eng.open_exposure(A1, BBB) == (70, 0)
    assert eng.cash(A1) == 1_000_000 - 30 * 49.5 * 2
    assert eng.reference_price(BBB) == 49.5  # last fill beats the configured reference
    assert eng.on_fill(s, 70, 50.5, T0) is True
    assert eng.position(A1, BBB) == 100 and eng.open_exposure(A1, BBB) == (0, 0)
    assert eng.avg_cost(A1, BBB) == pytest.approx((30 * 49.5 + 70 * 50.5) / 100)
    assert eng.order(s) is None and eng.open_order_count() == 0
    with pytest.raises(UnknownSlot):
        eng.on_fill(s, 1, 50.0)
    with pytest.raises(UnknownSlot):
        eng.on_ack(s)


def test_cancel_unsolicited_cancel_and_venue_reject_release(eng: RiskEngine) -> None:
    s1 = eng.on_sent(A1, AAA, BUY, 100, 100.0)
    s2 = eng.on_sent(A1, AAA, SELL, 40, 100.0)
    s3 = eng.on_sent(A1, AAA, SELL, 10, 100.0)
    assert eng.open_exposure(A1, AAA) == (100, 50)
    eng.on_fill(s1, 60, 100.0)
    assert eng.on_cancel(s1) is True  # the venue cancelled the rest on its own: same release
    assert eng.open_exposure(A1, AAA) == (0, 50) and eng.position(A1, AAA) == 60
    assert eng.on_venue_reject(s2) is True
    assert eng.open_exposure(A1, AAA) == (0, 10)
    eng.on_cancel(s3)
    assert eng.open_exposure(A1, AAA) == (0, 0)
    assert eng.account_gross(A1) == 60 * 100.0
    with pytest.raises(UnknownSlot):
        eng.on_cancel(s3)


@pytest.mark.parametrize("new_qty", [60, 150])
def test_replace_pending_holds_the_worst_case_then_settles(eng: RiskEngine, new_qty: int) -> None:
    s = eng.on_sent(A1, AAA, BUY, 100, 100.0)
    eng.on_fill(s, 20, 100.0)
    assert eng.check_replace(s, new_qty, 100.25, T0, 0).accepted
    eng.on_replace_pending(s, new_qty, 100.25)
    assert eng.open_exposure(A1, AAA)[0] == max(100, new_qty) - 20
    eng.on_fill(s, 10, 100.0)  # fills keep arriving while the replace is pending
    assert eng.open_exposure(A1, AAA)[0] == max(100, new_qty) - 30
    assert eng.on_replaced(s, new_qty, 100.25) is False
    assert eng.open_exposure(A1, AAA)[0] == new_qty - 30
    assert eng.order(s)["qty"] == new_qty and eng.order(s)["price"] == 100.25


def test_replace_rejected_restores_the_original(eng: RiskEngine) -> None:
    s = eng.on_sent(A1, AAA, SELL, 100, 100.0)
    eng.on_replace_pending(s, 300, 100.0)
    assert eng.open_exposure(A1, AAA) == (0, 300)
    with pytest.raises(ValueError):
        eng.on_replace_pending(s, 200, 100.0)  # one replace at a time
    assert eng.on_replace_rejected(s) is False
    assert eng.open_exposure(A1, AAA) == (0, 100)
    with pytest.raises(UnknownSlot):
        eng.on_replace_rejected(s)  # nothing pending any more


def test_order_filled_out_while_replace_pending_ends_on_reject(eng: RiskEngine) -> None:
    s = eng.on_sent(A1, AAA, BUY, 100, 100.0)
    eng.on_replace_pending(s, 150, 100.0)
    assert eng.on_fill(s, 100, 100.0) is False  # could still become the 150 order
    assert eng.open_exposure(A1, AAA) == (50, 0)
    assert eng.on_replace_rejected(s) is True
    assert eng.open_exposure(A1, AAA) == (0, 0) and eng.order(s) is None


def test_replace_down_to_the_filled_quantity_completes(eng: RiskEngine) -> None:
    s = eng.on_sent(A1, AAA, BUY, 100, 100.0)
    eng.on_fill(s, 40, 100.0)
    assert eng.on_replaced(s, 40, 100.0) is True
    assert eng.open_exposure(A1, AAA) == (0, 0)


def test_realised_pnl_flip_and_multiplier(eng: RiskEngine) -> None:
    eng.on_external_fill(A1, CCC, BUY, 10, 20.0)
    eng.on_external_fill(A1, CCC, SELL, 4, 21.0)
    assert eng.realised_pnl(A1) == 4 * 1.0 * 10  # multiplier 10
    eng.on_external_fill(A1, CCC, SELL, 10, 22.0)  # closes 6, opens a short of 4 at 22
    assert eng.position(A1, CCC) == -4 and eng.avg_cost(A1, CCC) == 22.0
    assert eng.realised_pnl(A1) == 40 + 6 * 2.0 * 10
    eng.set_reference_price(CCC, 21.0)
    assert eng.daily_pnl(A1) == eng.realised_pnl(A1) + (-4) * (21.0 - 22.0) * 10


def test_bust_and_correct_restore_exactly(eng: RiskEngine) -> None:
    eng.set_reference_price(AAA, 100.0)  # a bust does not rewind the last-fill price; pin the mark
    eng.on_external_fill(A2, AAA, BUY, 100, 100.0)
    before = (eng.position(A2, AAA), eng.cash(A2), eng.daily_pnl(A2), eng.account_gross(A2))
    eng.on_external_fill(A2, AAA, BUY, 50, 101.0)
    eng.on_bust(A2, AAA, BUY, 50, 101.0)  # ExecType H
    assert (eng.position(A2, AAA), eng.cash(A2), eng.daily_pnl(A2), eng.account_gross(A2)) == before
    eng.on_external_fill(A2, AAA, SELL, 30, 99.0)
    eng.on_correct(A2, AAA, SELL, 30, 99.0, 20, 99.5)  # ExecType G: 30 @ 99 was really 20 @ 99.5
    assert eng.position(A2, AAA) == 80
    assert eng.cash(A2) == 250_000 - 100 * 100.0 + 20 * 99.5
    with pytest.raises(ValueError):
        eng.on_correct(A2, AAA, SELL, 20, 99.5, math.nan, 99.5)


def test_external_fill_mirrors_a_fill_the_gateway_never_saw(eng: RiskEngine) -> None:
    eng.on_external_fill(A1, BBB, SELL, 25, 51.0, T0)
    assert eng.position(A1, BBB) == -25 and eng.reference_price(BBB) == 51.0
    assert eng.account_net(A1) == 25 * 51.0 * 2


@pytest.mark.parametrize("q,px", [(0, 100.0), (-1, 100.0), (math.nan, 100.0), (1, 0.0), (1, math.inf), (1, -5.0)])
def test_bad_fills_raise_and_leave_state_alone(eng: RiskEngine, q: float, px: float) -> None:
    s = eng.on_sent(A1, AAA, BUY, 100, 100.0)
    snap = eng.snapshot()
    with pytest.raises(ValueError):
        eng.on_fill(s, q, px)
    with pytest.raises(ValueError):
        eng.on_external_fill(A1, AAA, BUY, q, px)
    assert all(np.array_equal(x, y, equal_nan=True) for x, y in zip(snap, eng.snapshot()))


def test_bad_sends_raise(eng: RiskEngine) -> None:
    for args in ((-1, AAA, BUY, 1, 100.0), (A1, 9, BUY, 1, 100.0), (A1, AAA, 3, 1, 100.0), (A1, AAA, BUY, 0, 100.0),
                 (A1, AAA, BUY, math.nan, 100.0)):
        with pytest.raises(ValueError):
            eng.on_sent(*args)


def test_price_moves_revalue_exposure_and_pnl(eng: RiskEngine) -> None:
    eng.on_external_fill(A1, AAA, BUY, 100, 100.0)
    eng.on_sent(A1, AAA, BUY, 50, 100.0)
    eng.set_reference_price(AAA, 90.0)
    assert eng.account_gross(A1) == 150 * 90.0
    assert eng.daily_pnl(A1) == -1000.0
    assert eng.equity(A1) == 1_000_000 - 100 * 100.0 + 100 * 90.0
    u = eng.utilisation(A1)
    assert u["gross_exposure"] == pytest.approx(150 * 90.0 / 1_000_000)
    assert "var" not in u  # no scenarios configured


def test_load_position_measures_pnl_from_its_cost(eng: RiskEngine) -> None:
    eng.load_position(A1, AAA, 200, 95.0)
    assert eng.position(A1, AAA) == 200 and eng.cash(A1) == 1_000_000
    assert eng.daily_pnl(A1) == 200 * (100.0 - 95.0)
    with pytest.raises(ValueError):
        eng.load_position(A1, AAA, 10, -1.0)


def test_rebuild_aggregates_is_idempotent(eng: RiskEngine) -> None:
    eng.on_external_fill(A1, AAA, BUY, 100, 100.0)
    eng.on_sent(A1, CCC, SELL, 7, 20.0)
    eng.set_reference_price(AAA, 101.25)
    before = (eng.account_gross(A1), eng.account_net(A1), eng.equity(A1), eng.sector_exposure(A1, "S2"))
    eng.rebuild_aggregates()
    assert (eng.account_gross(A1), eng.account_net(A1), eng.equity(A1), eng.sector_exposure(A1, "S2")) == before


def test_reload_keeps_positions_orders_slots_and_switches(eng: RiskEngine) -> None:
    eng.on_external_fill(A1, AAA, BUY, 100, 100.0)
    s = eng.on_sent(A2, BBB, SELL, 30, 50.0)
    eng.set_reference_price(AAA, 101.0)
    eng.set_kill("instrument", CCC, True)
    eng.set_reduce_only("account", A2, True)
    # new file: instruments reordered and one added, an account added, cash deposit, tighter limits
    instruments = [INSTRUMENTS[2], {"symbol": "EEE", "sector": "S3", "tick_size": 0.5, "reference_price": 4.0},
                   *INSTRUMENTS[:2], *INSTRUMENTS[3:]]
    accounts = [*ACCOUNTS[:1], {"name": "A2", "cash": 300_000.0}, ACCOUNTS[2], {"name": "A4", "cash": 1.0}]
    cfg = risk_config_from_data(instruments, accounts, {"global": {"qty_max": 5}})
    new = eng.with_config(cfg)
    a, b, c = new.instrument_index("AAA"), new.instrument_index("BBB"), new.instrument_index("CCC")
    assert (a, b, c) == (2, 3, 0)
    assert new.position(A1, a) == 100 and new.reference_price(a) == 101.0
    assert new.open_exposure(A2, b) == (0, 30)
    assert new.order(s)["instrument"] == b
    assert new.cash(A2) == 300_000.0 and new.daily_pnl(A2) == eng.daily_pnl(A2)
    assert new.kill_state("instrument", c) and new.reduce_only_state("account", A2)
    assert new.account_gross(A1) == eng.account_gross(A1)
    assert new.check_new(0, A1, a, BUY, 6, 101.0, False, False, T0).code == "QTY_MAX"
    assert new.on_fill(s, 30, 50.0) is True  # the slot number still refers to the same order
    assert new.position(A2, b) == -30
    assert new.limits_version != eng.limits_version


def test_reload_refuses_to_drop_an_account_with_a_position(eng: RiskEngine) -> None:
    eng.on_external_fill(A2, AAA, BUY, 1, 100.0)
    cfg = risk_config_from_data(INSTRUMENTS, [ACCOUNTS[0], ACCOUNTS[2]], {})
    with pytest.raises(ValueError, match="A2/AAA"):
        eng.with_config(cfg)
    cfg = risk_config_from_data(INSTRUMENTS[1:], [*ACCOUNTS[:2], {"name": "A3", "cash": 1.0}], {})
    with pytest.raises(ValueError, match="A2/AAA"):
        eng.with_config(cfg)


def test_snapshot_restore_and_copy(eng: RiskEngine) -> None:
    snap = eng.snapshot()
    twin = eng.copy()
    eng.on_external_fill(A1, AAA, BUY, 100, 100.0)
    assert twin.position(A1, AAA) == 0
    eng.restore(snap)
    assert eng.position(A1, AAA) == 0 and eng.account_gross(A1) == 0
    with pytest.raises(ValueError):
        RiskEngine(make_cfg({}), n_sessions=1, max_orders=2).restore(snap)
