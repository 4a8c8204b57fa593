"""One test per break type: a clean day with exactly one fault injected yields exactly that break."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.recon.events import BreakOpened, BreakResolved, UnknownFill, UnknownFillCovered
from gateway.recon.matcher import Reconciler, match_all
from gateway.recon.model import Break, BreakStatus, BreakType, FillRecord
from recon_testlib import AS_OF, GRACE, MS, SEC, T0, clean_day, copy, fill

B = BreakType


def run(gw: list[FillRecord], dc: list[FillRecord], as_of: int = AS_OF, match_on_order: bool = False) -> Reconciler:
    rec = Reconciler(GRACE, match_on_order=match_on_order)
    match_all(rec, gw, dc)
    rec.tick(as_of)
    return rec


def summary(rec: Reconciler) -> tuple[Counter, Counter]:
    opened = Counter(b.type for b in rec.breaks() if b.status is BreakStatus.OPEN)
    resolved = Counter(b.type for b in rec.breaks() if b.status is BreakStatus.RESOLVED)
    return opened, resolved


def only(rec: Reconciler) -> Break:
    (brk,) = rec.breaks()
    return brk


def test_clean_day_has_no_breaks() -> None:
    gw, dc = clean_day()
    rec = run(gw, dc)
    assert rec.breaks() == []
    assert rec.matched_count == len(gw) and rec.matched_by == {"exec_id": len(gw), "order": 0}
    assert rec.open_counts() == {t: 0 for t in BreakType}
    assert rec.pending_counts() == {"gateway": 0, "dropcopy": 0}
    assert all(p.diff == 0 for p in rec.position_differences())
    # E1 + E2 bought 150, E4 short sale busted to 0, E5 bought 7; E3 sold 200
    assert {(p.account, p.symbol): p.gateway_net_qty for p in rec.position_differences()} == {
        ("ACC1", "XYZ"): 150.0, ("ACC1", "ABC"): -200.0, ("ACC2", "XYZ"): 0.0, ("ACC2", "ABC"): 7.0}


def _e1(dc: list[FillRecord]) -> int:
    return next(i for i, r in enumerate(dc) if r.exec_id == "E1")


def fault_omit(gw, dc):
    del dc[_e1(dc)]


def fault_unknown_order(gw, dc):
    dc.append(fill("dropcopy", "X9", 2500, order_id="O9", cl_ord_id="C9", account="ACC9", qty=5, px=20))


def fault_qty(gw, dc):
    dc[_e1(dc)] = replace(dc[_e1(dc)], last_qty=90.0)


def fault_price(gw, dc):
    dc[_e1(dc)] = replace(dc[_e1(dc)], last_px=10.5)


def fault_side(gw, dc):
    dc[_e1(dc)] = replace(dc[_e1(dc)], side="2")


def fault_duplicate(gw, dc):
    dc.insert(_e1(dc) + 1, replace(dc[_e1(dc)], received_ns=T0 + 1500 * MS))


def fault_delay_past_grace(gw, dc):
    dc[_e1(dc)] = replace(dc[_e1(dc)], received_ns=T0 + 1000 * MS + GRACE + 1 * MS)


def fault_delay_within_grace(gw, dc):
    dc[_e1(dc)] = replace(dc[_e1(dc)], received_ns=T0 + 1000 * MS + GRACE)  # exactly at the limit: in time


@pytest.mark.parametrize("fault, opened, resolved", [
    (fault_omit, {B.MISSING_FROM_DROPCOPY: 1}, {}),
    (fault_unknown_order, {B.UNKNOWN_TO_GATEWAY: 1}, {}),
    (fault_qty, {B.QTY_MISMATCH: 1}, {}),
    (fault_price, {B.PRICE_MISMATCH: 1}, {}),
    (fault_side, {B.SIDE_MISMATCH: 1}, {}),
    (fault_duplicate, {B.DUPLICATE: 1}, {}),
    (fault_delay_past_grace, {}, {B.MISSING_FROM_DROPCOPY: 1, B.LATE_ARRIVAL: 1}),
    (fault_delay_within_grace, {}, {}),
])
def test_each_fault_yields_exactly_its_break(fault, opened, resolved) -> None:
    gw, dc = clean_day()
    fault(gw, dc)
    dc.sort(key=lambda r: r.received_ns)
    rec = run(gw, dc)
    assert summary(rec) == (Counter(opened), Counter(resolved))
    assert rec.open_counts() == {t: opened.get(t, 0) for t in BreakType}
    for brk in rec.breaks():
        assert brk.exec_id in ("E1", "X9")


def test_missing_break_names_keys_and_is_dated_at_grace_expiry() -> None:
    gw, dc = clean_day()
    fault_omit(gw, dc)
    brk = only(run(gw, dc))
    assert brk.id == "MISSING_FROM_DROPCOPY:E1:F"
    assert brk.keys() == {"exec_id": "E1", "order_id": "O1", "cl_ord_id": "C1", "account": "ACC1", "symbol": "XYZ"}
    assert brk.gateway is not None and brk.dropcopy is None
    assert brk.detected_ns == T0 + 1000 * MS + GRACE
    # the book differs by the missing 100 and the report shows it
    diff = {(p.account, p.symbol): p.diff for p in run(gw, dc).position_differences()}
    assert diff[("ACC1", "XYZ")] == 100.0


def test_mismatch_shows_both_sides() -> None:
    gw, dc = clean_day()
    fault_qty(gw, dc)
    brk = only(run(gw, dc))
    assert (brk.gateway.qty, brk.dropcopy.qty) == (100.0, 90.0)  # type: ignore[union-attr]
    assert brk.note == "qty gateway 100 vs drop copy 90"
    assert brk.detected_ns == T0 + 1005 * MS  # as soon as both copies are there, no grace for a mismatch


def test_live_events_for_an_unknown_order() -> None:
    rec = Reconciler(GRACE)
    x9 = fill("dropcopy", "X9", 0, order_id="O9", cl_ord_id="C9")
    assert rec.add_dropcopy_fill(x9) == []  # not yet a break: the gateway's copy may still be on its way
    assert rec.tick(T0 + GRACE) == []
    events = rec.tick(T0 + GRACE + 1)
    assert [type(e) for e in events] == [BreakOpened, UnknownFill]
    assert events[1] == UnknownFill(x9, order_known=False, break_id="UNKNOWN_TO_GATEWAY:X9:F")
    assert rec.unknown_fills() == [x9]
    assert rec.tick(AS_OF) == []  # opened once


def test_unknown_execution_of_a_known_order_is_not_a_bypass() -> None:
    rec = Reconciler(GRACE)
    gw_e1 = fill("gateway", "E1", 0)
    rec.add_gateway_fill(gw_e1)
    rec.add_dropcopy_fill(copy(gw_e1, 2))
    other_order_fill = fill("dropcopy", "E2", 10, cl_ord_id="C-other-session", qty=1)
    rec.add_dropcopy_fill(other_order_fill)
    (opened, unknown) = rec.tick(AS_OF)
    assert isinstance(unknown, UnknownFill) and unknown.order_known
    assert opened.brk.note == "order known to gateway, execution not seen by it"  # type: ignore[union-attr]


def test_drop_copy_first_within_grace_is_not_a_break() -> None:
    rec = Reconciler(GRACE)
    e1 = fill("dropcopy", "E1", 0)
    assert rec.add_dropcopy_fill(e1) == []
    assert rec.add_gateway_fill(copy(e1, 29_000)) == []
    assert rec.tick(AS_OF) == [] and rec.matched_count == 1


def test_drop_copy_first_past_grace_mirrors_then_resolves_late() -> None:
    rec = Reconciler(GRACE)
    e1 = fill("dropcopy", "E1", 0)
    rec.add_dropcopy_fill(e1)
    first = rec.tick(T0 + 31 * SEC)
    assert [type(e) for e in first] == [BreakOpened, UnknownFill]
    gw_e1 = copy(e1, 40_000)
    events = rec.add_gateway_fill(gw_e1)
    assert [type(e) for e in events] == [BreakResolved, BreakOpened, UnknownFillCovered]
    assert events[0].brk.id == "UNKNOWN_TO_GATEWAY:E1:F" and events[0].brk.resolved_ns == gw_e1.received_ns
    late = events[1].brk
    assert (late.type, late.status, late.id) == (B.LATE_ARRIVAL, BreakStatus.RESOLVED, "LATE_ARRIVAL:gateway:E1:F")
    assert late.note == "gateway copy 40s after the other, grace 30s"
    assert events[2] == UnknownFillCovered(e1, gw_e1)
    assert rec.unknown_fills() == [] and rec.open_counts()[B.UNKNOWN_TO_GATEWAY] == 0


def test_late_drop_copy_resolves_missing_and_records_late() -> None:
    rec = Reconciler(GRACE)
    e1 = fill("gateway", "E1", 0)
    rec.add_gateway_fill(e1)
    (opened,) = rec.tick(T0 + 60 * SEC)
    assert opened.brk.type is B.MISSING_FROM_DROPCOPY and rec.open_counts()[B.MISSING_FROM_DROPCOPY] == 1
    events = rec.add_dropcopy_fill(copy(e1, 90_000))
    assert [(type(e), e.brk.type, e.brk.status) for e in events] == [
        (BreakResolved, B.MISSING_FROM_DROPCOPY, BreakStatus.RESOLVED),
        (BreakOpened, B.LATE_ARRIVAL, BreakStatus.RESOLVED)]
    assert rec.open_counts() == {t: 0 for t in BreakType} and rec.matched_count == 1


def test_outcome_does_not_depend_on_tick_cadence() -> None:
    """An add expires what was due before it: the same late arrival with no tick in between."""
    rec = Reconciler(GRACE)
    e1 = fill("gateway", "E1", 0)
    rec.add_gateway_fill(e1)
    events = rec.add_dropcopy_fill(copy(e1, 90_000))
    assert [(type(e), e.brk.type) for e in events] == [
        (BreakOpened, B.MISSING_FROM_DROPCOPY), (BreakResolved, B.MISSING_FROM_DROPCOPY),
        (BreakOpened, B.LATE_ARRIVAL)]
    assert events[0].brk.detected_ns == T0 + GRACE


def test_resend_is_ignored_but_a_repeated_exec_id_is_a_duplicate() -> None:
    rec = Reconciler(GRACE)
    e1 = fill("gateway", "E1", 0)
    rec.add_gateway_fill(e1)
    assert rec.add_gateway_fill(replace(e1, received_ns=T0 + 5, poss_dup=True)) == []
    assert rec.resends_ignored == 1
    (dup,) = rec.add_gateway_fill(replace(e1, received_ns=T0 + 6, poss_dup=True, last_qty=1.0))
    assert dup.brk.type is B.DUPLICATE and "economics differ" in dup.brk.note
    (dup2,) = rec.add_gateway_fill(replace(e1, received_ns=T0 + 7))
    assert dup2.brk.id == "DUPLICATE:gateway:E1:F:2" and "not flagged PossDup" in dup2.brk.note
    assert rec.message_counts() == {"gateway": 3, "dropcopy": 0}
    assert rec.positions("gateway") == {("ACC1", "XYZ"): 100.0}  # a duplicate never counts twice


def test_bust_and_correction_applied_on_both_sides_before_comparing() -> None:
    gw, dc = clean_day()
    rec = run(gw, dc)
    assert rec.positions("gateway")[("ACC2", "XYZ")] == 0.0  # E4 busted
    # a correction only the gateway saw is a missing message, not a price mismatch
    gw.append(fill("gateway", "E1C", 8000, exec_type="G", exec_ref_id="E1", px=9.99, transact_ms=7990))
    rec = run(gw, dc)
    assert summary(rec) == (Counter({B.MISSING_FROM_DROPCOPY: 1}), Counter())
    assert only(rec).id == "MISSING_FROM_DROPCOPY:E1C:G"
    # a bust only the drop copy carries: unknown to the gateway, mirrored as a bust
    dc.append(fill("dropcopy", "E1X", 9000, exec_type="H", exec_ref_id="E1", transact_ms=8990))
    rec = run(gw, sorted(dc, key=lambda r: r.received_ns))
    assert summary(rec)[0] == Counter({B.MISSING_FROM_DROPCOPY: 1, B.UNKNOWN_TO_GATEWAY: 1})
    assert rec.positions("dropcopy")[("ACC1", "XYZ")] == 50.0  # E1 busted on the drop copy, E2 remains


def test_correction_on_both_sides_resolves_a_mismatch() -> None:
    rec = Reconciler(GRACE)
    gw_e1 = fill("gateway", "E1", 0)
    rec.add_gateway_fill(gw_e1)
    (qty,) = rec.add_dropcopy_fill(copy(gw_e1, 5, last_qty=90.0))
    assert qty.brk.type is B.QTY_MISMATCH
    fix = fill("gateway", "E1C", 1000, exec_type="G", exec_ref_id="E1", qty=90)
    assert rec.add_gateway_fill(fix) == []  # the drop copy has not seen the correction yet: no verdict
    (resolved,) = rec.add_dropcopy_fill(copy(fix, 1003))
    assert isinstance(resolved, BreakResolved) and resolved.brk.id == "QTY_MISMATCH:E1"
    assert resolved.brk.note.endswith("resolved: sides now agree")
    assert rec.open_counts() == {t: 0 for t in BreakType}


def test_correction_that_still_disagrees_supersedes_the_break() -> None:
    rec = Reconciler(GRACE)
    gw_e1 = fill("gateway", "E1", 0)
    rec.add_gateway_fill(gw_e1)
    rec.add_dropcopy_fill(copy(gw_e1, 5, last_px=10.5))
    fix = fill("gateway", "E1C", 1000, exec_type="G", exec_ref_id="E1", px=10.2)
    rec.add_gateway_fill(fix)
    events = rec.add_dropcopy_fill(copy(fix, 1002, last_px=10.3))
    assert [(type(e), e.brk.id) for e in events] == [(BreakResolved, "PRICE_MISMATCH:E1"),
                                                    (BreakOpened, "PRICE_MISMATCH:E1#2")]
    assert events[1].brk.note == "px gateway 10.2 vs drop copy 10.3 (after corrections/busts)"


def test_drop_copy_correction_arriving_before_the_trade() -> None:
    rec = Reconciler(GRACE)
    gw_e1 = fill("gateway", "E1", 0)
    fix = fill("gateway", "E1C", 10, exec_type="G", exec_ref_id="E1", qty=80)
    rec.add_dropcopy_fill(copy(fix, 1))   # correction first, its trade not yet seen anywhere
    rec.add_dropcopy_fill(copy(gw_e1, 2))
    rec.add_gateway_fill(gw_e1)
    rec.add_gateway_fill(fix)
    assert rec.tick(AS_OF) == [] and rec.breaks() == []
    assert rec.positions("gateway") == rec.positions("dropcopy") == {("ACC1", "XYZ"): 80.0}


def _independently_numbered(match_on_order: bool) -> Reconciler:
    rec = Reconciler(GRACE, match_on_order=match_on_order)
    gw_e1 = fill("gateway", "E1", 0)
    gw_e2 = fill("gateway", "E2", 10, qty=50, px=10.1)
    for r in (gw_e1, gw_e2):
        rec.add_gateway_fill(r)
    rec.add_dropcopy_fill(copy(gw_e2, 12, exec_id="D2"))  # venue numbers the drop copy differently
    rec.add_dropcopy_fill(copy(gw_e1, 13, exec_id="D1", last_qty=99.0))
    assert rec.matched_count == 0
    return rec


def test_exec_id_only_by_default() -> None:
    rec = _independently_numbered(match_on_order=False)
    rec.tick(AS_OF)
    assert summary(rec) == (Counter({B.MISSING_FROM_DROPCOPY: 2, B.UNKNOWN_TO_GATEWAY: 2}), Counter())


def test_different_exec_ids_fall_back_to_order_match_after_grace() -> None:
    rec = _independently_numbered(match_on_order=True)
    events = rec.tick(AS_OF)
    assert rec.matched_by == {"exec_id": 0, "order": 2}
    (qty,) = events
    assert qty.brk.id == "QTY_MISMATCH:E1" and qty.brk.dropcopy.exec_id == "D1"
    assert qty.brk.note.endswith("(matched on OrderID/ClOrdID)")


def test_positions_include_mirrored_unknown_fills() -> None:
    gw, dc = clean_day()
    fault_unknown_order(gw, dc)
    rec = run(gw, sorted(dc, key=lambda r: r.received_ns))
    diffs = [p for p in rec.position_differences() if p.diff]
    assert [(p.account, p.symbol, p.gateway_net_qty, p.dropcopy_net_qty, p.diff) for p in diffs] == [
        ("ACC9", "XYZ", 0.0, 5.0, -5.0)]


def test_wrong_source_refused() -> None:
    with pytest.raises(ValueError):
        Reconciler(GRACE).add_gateway_fill(fill("dropcopy", "E1", 0))
    with pytest.raises(ValueError):
        Reconciler(-1)


@st.composite
def _scenario(draw):
    """Random subsets of the clean day's drop copy, with random delays, plus tick times."""
    gw, dc = clean_day()
    out = []
    for r in dc:
        if draw(st.booleans()):
            delay = draw(st.integers(min_value=-2_000, max_value=45_000))
            out.append(replace(r, received_ns=r.received_ns + delay * MS))
    ticks = draw(st.lists(st.integers(min_value=0, max_value=120_000), max_size=6))
    return gw, sorted(out, key=lambda r: r.received_ns), sorted(T0 + t * MS for t in ticks)


@settings(max_examples=150, deadline=None)
@given(_scenario(), st.booleans())
def test_tick_cadence_never_changes_the_result(scenario, match_on_order) -> None:
    gw, dc, ticks = scenario
    quiet = run(gw, dc, match_on_order=match_on_order)
    busy = Reconciler(GRACE, match_on_order=match_on_order)
    feed = sorted([(r.received_ns, 0, r) for r in gw] + [(r.received_ns, 1, r) for r in dc], key=lambda t: t[:2])
    for ns, side, r in feed:
        while ticks and ticks[0] <= ns:
            busy.tick(ticks.pop(0))
        (busy.add_gateway_fill if side == 0 else busy.add_dropcopy_fill)(r)
    busy.tick(AS_OF)
    assert busy.breaks() == quiet.breaks()
    assert busy.position_differences() == quiet.position_differences()
    # every drop-copy message either matched or is accounted for by exactly one presence break
    opened, resolved = summary(quiet)
    assert opened[B.UNKNOWN_TO_GATEWAY] == 0
    assert quiet.matched_count + opened[B.MISSING_FROM_DROPCOPY] == len(gw)
