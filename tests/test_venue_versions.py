"""The gateway against a venue that speaks FIX 4.2, or FIX 5.0SP2 over FIXT.1.1, while its OMS client speaks FIX
4.4: the venue is fixcore-engine (tests/foreign_fix.py), not QuickFIX, and validates what it receives against
the version's data dictionary; the client is the QuickFIX OmsClient.

Each test runs once per venue version. What the venue received must be valid in its version: its BeginString,
every field the dictionary requires (fixcore's validation answers anything less with a session Reject, so no
35=3 may leave the venue), no field the version does not define for the message type (FIX 4.4-only tags such
as OrderCapacity(528) or the Parties group must not reach a 4.2 venue), and HandlInst(21) on 4.2 orders.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

import quickfix as fix

from foreign_fix import (BEGIN_STRINGS, AckFill, Fields, ForeignVenue, Reply, execution_report,
                         undefined_fields)
from test_foreign_engine import _er

ACK, FILL = "0", "F"
VERSIONS = ["FIX.4.2", "FIX.5.0SP2"]


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def venues(stack: Any, version: str) -> Iterator[list[ForeignVenue]]:
    """The gateway's venue session set to `version`, no drop copy (the foreign venue has none). The gateway is
    stopped first, so that its Logout still finds the venue."""
    stack.cfg = stack.cfg.model_copy(update={
        "dropcopy": None,
        "venue": stack.cfg.venue.model_copy(update={"fix_version": version}),
    })
    made: list[ForeignVenue] = []
    try:
        yield made
    finally:
        stack.close()
        for v in made:
            v.stop()


def _venue(stack: Any, made: list[ForeignVenue], version: str, script: Any = None, **kw: Any) -> ForeignVenue:
    v = ForeignVenue(stack.cfg.venue.port, stack.cfg.venue.target_comp_id, stack.cfg.venue.sender_comp_id,
                     on_message=script, fix_version=version, validate=True, **kw)
    made.append(v)
    v.start()
    return v


def _up(stack: Any, made: list[ForeignVenue], version: str, script: Any = None) -> tuple[ForeignVenue, Any]:
    venue = _venue(stack, made, version, script)
    stack.start_gateway()
    assert venue.wait_logon(5), "the gateway did not log on to the foreign venue"
    return venue, stack.client()


def _assert_valid_at_venue(venue: ForeignVenue, version: str) -> None:
    """Everything the venue received and sent is well-formed `version` (see the module doc)."""
    begin = BEGIN_STRINGS[version]
    assert venue.received, "the venue received no application message"
    for m in venue.inbound + venue.sent:
        assert m.get(8) == begin, m
        assert undefined_fields(m, version) == [], (f"35={m.get(35)} carries tags {version} does not define "
                                                   f"for it: {undefined_fields(m, version)}", m)
    rejects = [m for m in venue.sent if m.get(35) == "3"]
    assert not rejects, f"the venue's engine refused the gateway's messages: {rejects}"
    assert not venue.errors, venue.errors
    for m in venue.received:
        if version == "FIX.4.2" and m.get(35) in ("D", "G"):
            assert m.get(21) in ("1", "2", "3"), m  # HandlInst, required in 4.2
    if version == "FIX.5.0SP2":
        logon = venue.wait_for(lambda m: m.get(35) == "A", admin=True)
        assert logon.get(1137) == "9", logon  # DefaultApplVerID FIX.5.0SP2
    if version == "FIX.4.2":
        for m in venue.sent:
            if m.get(35) == "8":
                assert m.get(20) == "0" and m.get(150) not in ("F", "G", "H", "I"), m


def _check_no_rejects(oms: Any) -> None:
    bad = [m for m in oms.received if m.get(150) == "8" or m.get(35) in ("9", "j", "3")]
    assert not bad, bad


def test_order_is_acked_and_filled_through_the_venue(stack: Any, venues: list, version: str) -> None:
    venue, oms = _up(stack, venues, version)
    assert oms.new_order("VV-1", "ACC1", "AAPL", "1", 100, 190.0)
    fill = _er(oms, "VV-1", FILL, "2")
    ack = _er(oms, "VV-1", ACK, "0")
    assert oms.received.index(ack) < oms.received.index(fill)
    assert (fill[32], float(fill[31]), fill[14], fill[151], float(fill[6])) == ("100", 190.0, "100", "0", 190.0)
    assert (fill[1], fill[55], fill[54], fill[8]) == ("ACC1", "AAPL", "1", "FIX.4.4")
    assert 20 not in fill and 20 not in ack  # no 4.2 ExecTransType leaks to the 4.4 client
    new = venue.wait_for(lambda m: m.get(35) == "D")
    assert new[11] != "VV-1" and (new[1], new[55], new[54], new[38], new[40]) == ("ACC1", "AAPL", "1", "100", "2")
    assert float(new[44]) == 190.0
    assert fill[37] == next(m for m in venue.sent if m.get(35) == "8" and m.get(39) == "2")[37]
    _check_no_rejects(oms)
    _assert_valid_at_venue(venue, version)


def test_partial_fills_reach_the_client_as_trades(stack: Any, venues: list, version: str) -> None:
    venue, oms = _up(stack, venues, version, AckFill(fix_version=version, partial=("AAPL",)))
    oms.new_order("VV-P1", "ACC1", "AAPL", "2", 100, 190.0)
    last = _er(oms, "VV-P1", FILL, "2")
    part = _er(oms, "VV-P1", FILL, "1")
    assert (part[32], part[14], part[151]) == ("50", "50", "50")
    assert (last[32], last[14], last[151]) == ("50", "100", "0")
    if version == "FIX.4.2":
        assert [m[150] for m in venue.sent if m.get(35) == "8"] == ["0", "1", "2"]
    _check_no_rejects(oms)
    _assert_valid_at_venue(venue, version)


def test_resting_order_is_replaced_and_cancelled(stack: Any, venues: list, version: str) -> None:
    venue, oms = _up(stack, venues, version)
    oms.new_order("VV-J1", "ACC2", "JPM", "1", 300, 200.0)  # JPM rests at AckFill
    _er(oms, "VV-J1", ACK, "0")
    oms.replace("VV-J2", "VV-J1", "JPM", "1", 400, 201.0, "ACC2")
    rep = _er(oms, "VV-J2", "5")
    # FIX 4.2's OrdStatus 5 (Replaced) does not exist in 4.4: nothing filled yet, so the order is New.
    assert (rep[41], rep[38], float(rep[44]), rep[39], rep[151], rep[14]) == ("VV-J1", "400", 201.0, "0", "400",
                                                                               "0")
    oms.cancel("VV-J3", "VV-J2", "JPM", "1", "ACC2")
    cxl = _er(oms, "VV-J3", "4", "4")
    assert (cxl[41], cxl[151]) == ("VV-J2", "0")
    g = venue.wait_for(lambda m: m.get(35) == "G")
    f = venue.wait_for(lambda m: m.get(35) == "F")
    d = venue.wait_for(lambda m: m.get(35) == "D")
    assert g[41] == d[11] and f[41] == g[11]  # the venue sees the gateway's own chain of ClOrdIDs
    assert (g[38], float(g[44])) == ("400", 201.0)
    if version == "FIX.4.2":
        assert next(m for m in venue.sent if m.get(150) == "5")[39] == "5"
    _check_no_rejects(oms)
    _assert_valid_at_venue(venue, version)


def test_cancel_of_a_filled_order_is_refused_by_the_venue(stack: Any, venues: list, version: str) -> None:
    venue, oms = _up(stack, venues, version)
    oms.new_order("VV-C1", "ACC1", "AAPL", "1", 10, 190.0)
    _er(oms, "VV-C1", FILL, "2")
    oms.cancel("VV-C2", "VV-C1", "AAPL", "1", "ACC1")
    # The gateway may refuse a cancel of a filled order itself or pass it on; either way the client hears 35=9.
    rej = oms.wait_for(lambda m: m.get(35) == "9" and m.get(11) == "VV-C2")
    assert (rej[41], rej[434]) == ("VV-C1", "1")
    _assert_valid_at_venue(venue, version)


def test_venue_reject_reaches_the_client(stack: Any, venues: list, version: str) -> None:
    def script(f: Fields) -> list[Reply]:
        return [execution_report(f, "8", "8", order_id="NONE", cum_qty=0, leaves_qty=0, avg_px=0,
                                 ord_rej_reason=2, text="exchange closed", fix_version=version)]

    venue, oms = _up(stack, venues, version, script)
    oms.new_order("VV-R1", "ACC1", "AAPL", "1", 100, 190.0)
    rej = _er(oms, "VV-R1", "8", "8")
    assert rej.get(103) == "2", rej
    assert "exchange closed" in rej.get(58, ""), rej
    assert (rej[55], rej[54]) == ("AAPL", "1")
    # The venue still trades after the reject.
    venue.on_message = AckFill(fix_version=version)
    oms.new_order("VV-R2", "ACC1", "AAPL", "1", 100, 190.0)
    _er(oms, "VV-R2", FILL, "2")
    _assert_valid_at_venue(venue, version)


def test_order_without_handlinst_gets_one_and_44_only_fields_are_dropped(stack: Any, venues: list,
                                                                          version: str) -> None:
    venue, oms = _up(stack, venues, version)
    m = fix.Message()
    m.getHeader().setField(35, "D")
    for tag, val in ((11, "VV-H1"), (1, "ACC1"), (55, "AAPL"), (54, "1"), (60, "20260101-00:00:00.000"),
                     (38, "10"), (40, "2"), (44, "190"), (528, "A")):  # no HandlInst; OrderCapacity agency
        m.setField(tag, val)
    assert oms.send(m)
    _er(oms, "VV-H1", FILL, "2")
    d = venue.wait_for(lambda m: m.get(35) == "D")
    if version == "FIX.4.2":
        assert d.get(21) == "1" and 528 not in d and d.get(47) == "A"  # OrderCapacity A -> Rule80A A
    else:
        assert d.get(528) == "A"
    _assert_valid_at_venue(venue, version)



@pytest.mark.parametrize("version", ["FIX.4.2"])  # FIX 5.0SP2 can express every request the gateway forwards
def test_a_request_the_venues_version_cannot_express_is_answered_and_never_sent(stack: Any, venues: list,
                                                                               version: str) -> None:
    venue, oms = _up(stack, venues, version)
    # ExecInst(18)=a (trailing stop peg) is FIX 4.4; FIX 4.2 has no such value, and sending the order without
    # it would be a different order.
    oms.new_order("XV1", "ACC1", "AAPL", "1", 10, 190.0, extra={18: "a"})
    rej = _er(oms, "XV1", "8", "8")
    assert rej[58].startswith("VENUE_VERSION_MISMATCH: ") and "tag 18" in rej[58], rej[58]
    assert not stack.gw.router.ledger.open_orders() and stack.gw.risk.engine.open_order_count() == 0
    assert not [m for m in venue.received if m.get(35) == "D"]
    oms.new_order("XV2", "ACC1", "AAPL", "1", 10, 190.0)
    _er(oms, "XV2", FILL, "2")
