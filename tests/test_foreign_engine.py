"""The gateway against FIX engines that are not QuickFIX (fixcore-engine, tests/foreign_fix.py): a foreign OMS
on the client port, and a foreign venue in place of the QuickFIX simulator, all on 127.0.0.1.

QuickFIX on both ends of a session hides whatever both ends happen to agree on; these tests put another session
layer on the far side: its own sequence-number store, heartbeat timing, resend and gap-fill answers, and
second-precision timestamps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from foreign_fix import AckFill, Fields, ForeignOms, ForeignVenue, Reply, business_reject, session_reject

ACK, FILL = "0", "F"


def _er(client: Any, cl: str, exec_type: str, status: str | None = None, timeout: float = 10.0) -> Fields:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type
                           and (status is None or m.get(39) == status), timeout)


# ------------------------------------------------------------------------------------------ foreign OMS
@pytest.fixture
def foreign(running: Any) -> Iterator[list[ForeignOms]]:
    """Foreign OMS clients made by a test; stopped before the gateway (this fixture is torn down first)."""
    made: list[ForeignOms] = []
    try:
        yield made
    finally:
        for c in made:
            c.stop()


def _oms(stack: Any, made: list[ForeignOms], state_dir: Path | None = None, logon: bool = True,
         **kw: Any) -> ForeignOms:
    c = ForeignOms("OMS1", "FIXGW", stack.cfg.acceptor.port, state_dir, **kw)
    made.append(c)
    c.start()
    if logon:
        assert c.wait_logon(15), "foreign OMS1 did not log on"
    return c


def test_foreign_oms_order_is_acknowledged_and_filled_with_its_own_clordid(running: Any, foreign: list) -> None:
    oms = _oms(running, foreign)
    logon = oms.wait_for(lambda m: m.get(35) == "A", admin=True)
    assert (logon[49], logon[56]) == ("FIXGW", "OMS1")

    assert oms.new_order("FX-A1", "ACC1", "AAPL", "1", 100, 190.0)
    fill = _er(oms, "FX-A1", FILL, "2")
    ack = _er(oms, "FX-A1", ACK)
    assert oms.received.index(ack) < oms.received.index(fill)
    assert (fill[32], float(fill[31]), fill[14], fill[151]) == ("100", 190.0, "100", "0")
    assert (fill[1], fill[55], fill[54]) == ("ACC1", "AAPL", "1")
    # The venue saw the gateway's own ClOrdID, never the client's.
    assert all(o.cl_ord_id != "FX-A1" for o in running.sim.orders.values())
    assert len(running.sim.orders) == 1
    assert not oms.errors and not any(m.get(35) == "3" for m in oms.admin_received)


def test_foreign_oms_replaces_and_cancels_a_resting_order(running: Any, foreign: list) -> None:
    oms = _oms(running, foreign)
    oms.new_order("FX-J1", "ACC2", "JPM", "1", 300, 200.0)  # JPM rests at the simulator
    _er(oms, "FX-J1", ACK, "0")
    oms.replace("FX-J2", "FX-J1", "JPM", "1", 400, 201.0, "ACC2")
    rep = _er(oms, "FX-J2", "5")
    assert (rep[41], rep[38], float(rep[44])) == ("FX-J1", "400", 201.0)
    oms.cancel("FX-J3", "FX-J2", "JPM", "1", "ACC2")
    cxl = _er(oms, "FX-J3", "4", "4")
    assert cxl[41] == "FX-J2" and cxl[151] == "0"
    assert not [m for m in oms.received if m.get(150) == "8" or m.get(35) == "9"]


def test_foreign_oms_heartbeats_keep_the_session_up(running: Any, foreign: list) -> None:
    # The acceptor takes the initiator's HeartBtInt: 1 s makes several intervals pass in a short test.
    oms = _oms(running, foreign, heartbeat_s=1)
    logon = oms.wait_for(lambda m: m.get(35) == "A", admin=True)
    assert logon[108] == "1"
    start = 0
    for _ in range(3):  # three heartbeats of the gateway's own, one after the other
        hb = oms.wait_for(lambda m: m.get(35) == "0" and 112 not in m, timeout=5, start=start, admin=True)
        start = oms.admin_received.index(hb) + 1
    # Any TestRequest of the gateway was answered by the engine with its TestReqID, and nobody logged out.
    for tr in (m for m in oms.admin_received if m.get(35) == "1"):
        assert any(s.get(35) == "0" and s.get(112) == tr[112] for s in oms.sent)
    assert oms.logged_on and oms.logouts == 0
    oms.new_order("FX-H1", "ACC1", "AAPL", "1", 10, 190.0)
    _er(oms, "FX-H1", FILL, "2")


def test_gap_in_the_foreign_oms_sequence_is_resent_and_the_order_decided_once(running: Any,
                                                                               foreign: list) -> None:
    oms = _oms(running, foreign)
    oms.new_order("FX-G0", "ACC1", "AAPL", "1", 10, 190.0)
    _er(oms, "FX-G0", FILL, "2")
    first_gap = oms.skip_outgoing(3) - 3
    # This order arrives with MsgSeqNum 3 too high: the gateway asks for the gap, the engine gap-fills the
    # three numbers it never sent and resends the order itself (PossDupFlag=Y), which must not count twice.
    oms.new_order("FX-G1", "ACC1", "AAPL", "1", 10, 190.0)
    rr = oms.wait_for(lambda m: m.get(35) == "2", admin=True)
    assert int(rr[7]) == first_gap
    _er(oms, "FX-G1", FILL, "2")
    gap_fill = next(m for m in oms.sent if m.get(35) == "4")
    assert (gap_fill.get(123), int(gap_fill[34]), int(gap_fill[36])) == ("Y", first_gap, first_gap + 3)
    oms.new_order("FX-G2", "ACC1", "AAPL", "1", 10, 190.0)  # the session goes on in sequence
    _er(oms, "FX-G2", FILL, "2")
    assert len(oms.reports("FX-G1")) == 2  # one ack, one fill
    assert not [m for m in oms.received if m.get(150) == "8"]
    assert sum(1 for o in running.sim.orders.values() if o.qty == 10) == 3
    assert oms.logouts == 0


def test_foreign_oms_resumes_its_sequence_numbers_after_a_restart(running: Any, foreign: list,
                                                                  tmp_path: Path) -> None:
    state = tmp_path / "foreign-oms1"
    oms = _oms(running, foreign, state)
    oms.new_order("FX-S1", "ACC1", "AAPL", "1", 10, 190.0)
    _er(oms, "FX-S1", FILL, "2")
    oms.stop()
    last_sent = max(int(m[34]) for m in oms.sent)  # its Logout included
    foreign.remove(oms)

    oms2 = _oms(running, foreign, state)  # same file store: a real OMS coming back, no reset on either side
    logon_sent = next(m for m in oms2.sent if m.get(35) == "A")
    assert int(logon_sent[34]) == last_sent + 1 and logon_sent.get(141) != "Y"
    oms2.new_order("FX-S2", "ACC1", "AAPL", "1", 10, 190.0)
    _er(oms2, "FX-S2", FILL, "2")
    assert not any(m.get(35) in ("2", "3") or (m.get(35) == "4" and m.get(123) != "Y")
                   for m in oms2.admin_received)


def test_foreign_oms_order_without_account_trades_on_the_session_default(stack: Any) -> None:
    # Many OMSes send no Account(1) at all; the session's default_account stands in for it, still checked.
    clients = [c.model_copy(update={"default_account": "ACC1"}) if c.sender_comp_id == "OMS1" else c
               for c in stack.cfg.acceptor.clients]
    stack.cfg = stack.cfg.model_copy(update={"acceptor": stack.cfg.acceptor.model_copy(update={"clients": clients})})
    stack.start_sim()
    stack.start_gateway()
    made: list[ForeignOms] = []
    try:
        oms = _oms(stack, made)
        assert oms.new_order("FX-NA1", "", "AAPL", "1", 100, 190.0)
        assert 1 not in next(m for m in oms.sent if m.get(35) == "D")
        fill = _er(oms, "FX-NA1", FILL, "2")
        assert fill[32] == "100"
        assert [o.account for o in stack.sim.orders.values()] == ["ACC1"]
    finally:
        for c in made:
            c.stop()


# ------------------------------------------------------------------------------------------ foreign venue
@pytest.fixture
def venues(stack: Any) -> Iterator[list[ForeignVenue]]:
    """Foreign venues made by a test. The gateway goes first, so that its Logout still finds the venue."""
    # No drop copy here: the foreign venue has none.
    stack.cfg = stack.cfg.model_copy(update={"dropcopy": None})
    made: list[ForeignVenue] = []
    try:
        yield made
    finally:
        stack.close()
        for v in made:
            v.stop()


def _venue(stack: Any, made: list[ForeignVenue], script: Any = None, **kw: Any) -> ForeignVenue:
    v = ForeignVenue(stack.cfg.venue.port, stack.cfg.venue.target_comp_id, stack.cfg.venue.sender_comp_id,
                     on_message=script, **kw)
    made.append(v)
    v.start()
    return v


def test_quickfix_client_gets_ack_and_fill_through_a_foreign_venue(stack: Any, venues: list) -> None:
    venue = _venue(stack, venues)
    stack.start_gateway()
    assert venue.wait_logon(5)
    oms = stack.client()
    oms.new_order("QV-1", "ACC1", "AAPL", "1", 100, 190.0)
    fill = _er(oms, "QV-1", FILL, "2")
    _er(oms, "QV-1", ACK, "0")
    assert (fill[32], float(fill[31]), fill[14]) == ("100", 190.0, "100")
    new = venue.wait_for(lambda m: m.get(35) == "D")
    assert new[11] != "QV-1" and (new[1], new[55], new[38]) == ("ACC1", "AAPL", "100")
    assert fill[37] == venue.sent[-1][37]  # the venue's OrderID reaches the client
    assert not venue.errors


def test_venue_session_reject_reaches_the_client_as_an_order_reject(stack: Any, venues: list) -> None:
    def script(f: Fields) -> list[Reply]:
        return [session_reject(f, 5, "value is incorrect for this tag", ref_tag=55)]

    venue = _venue(stack, venues, script)
    stack.start_gateway()
    oms = stack.client()
    oms.new_order("QV-R1", "ACC1", "AAPL", "1", 100, 190.0)
    rej = _er(oms, "QV-R1", "8", "8")
    assert rej[58].startswith("VENUE_SESSION_REJECT"), rej[58]
    assert "value is incorrect for this tag" in rej[58]
    sent = venue.wait_for(lambda m: m.get(35) == "D")
    assert next(m for m in venue.sent if m.get(35) == "3")[45] == sent[34]
    assert stack.gw.venue_logged_on.is_set() and venue.logouts == 0  # a Reject does not end the session


def test_venue_business_reject_reaches_the_client_as_an_order_reject(stack: Any, venues: list) -> None:
    def script(f: Fields) -> list[Reply]:
        return [business_reject(f, 4, "application not available")]

    venue = _venue(stack, venues, script)
    stack.start_gateway()
    oms = stack.client()
    oms.new_order("QV-B1", "ACC1", "AAPL", "1", 100, 190.0)
    rej = _er(oms, "QV-B1", "8", "8")
    assert rej[58].startswith("VENUE_BUSINESS_REJECT"), rej[58]
    assert "application not available" in rej[58]
    j = next(m for m in venue.sent if m.get(35) == "j")
    assert j[379] == venue.wait_for(lambda m: m.get(35) == "D")[11]  # BusinessRejectRefID: the gateway's ID
    # The venue is still usable: the next order (another script answer) goes through the same session.
    venue.on_message = AckFill()
    oms.new_order("QV-B2", "ACC1", "AAPL", "1", 100, 190.0)
    _er(oms, "QV-B2", FILL, "2")


def test_gateway_with_reset_on_logon_trades_with_a_venue_that_restarts_at_one(stack: Any, venues: list) -> None:
    stack.cfg = stack.cfg.model_copy(update={"venue": stack.cfg.venue.model_copy(update={"reset_on_logon": True})})
    venue = _venue(stack, venues, reset_on_logon=True)
    stack.start_gateway()
    oms = stack.client()
    oms.new_order("QV-Z1", "ACC1", "AAPL", "1", 10, 190.0)
    _er(oms, "QV-Z1", FILL, "2")
    venue.stop()  # a venue with an in-memory store: it comes back knowing nothing

    venue2 = _venue(stack, venues, reset_on_logon=True)
    assert venue2.wait_logon(15), "the gateway did not log on to the restarted venue"
    logon = venue2.wait_for(lambda m: m.get(35) == "A", admin=True)
    assert (logon[34], logon.get(141)) == ("1", "Y")
    assert stack.gw.venue_logged_on.wait(15)
    oms.new_order("QV-Z2", "ACC1", "AAPL", "1", 10, 190.0)
    _er(oms, "QV-Z2", FILL, "2")
    assert not any(m.get(35) in ("2", "3") for m in venue2.admin_received)
