"""What a rollover does to the FIX sessions it resets, over real sessions on 127.0.0.1: its logout is the day's
end, not a client going away (no cancel-on-disconnect), and a session an operator held out stays out."""

from __future__ import annotations

import quickfix as fix

from gateway.control.admin import session_switch
from tests.gwtest import wait_until


def _clients(stack, **per_client: dict[str, object]) -> None:
    acc = stack.cfg.acceptor
    clients = [c.model_copy(update=per_client.get(c.sender_comp_id, {})) for c in acc.clients]
    stack.cfg = stack.cfg.model_copy(update={"acceptor": acc.model_copy(update={"clients": clients})})


def _session(gw, key: str):
    return fix.Session.lookupSession(gw.session_ids()[key][1])


def test_a_rollover_does_not_cancel_the_orders_of_a_cancel_on_disconnect_session(stack) -> None:
    # OMS1 starts each day at MsgSeqNum 1, so the rollover logs it out; OMS2 runs on.
    _clients(stack, OMS1={"cancel_on_disconnect": True, "rollover_reset": True, "reset_on_logon": True})
    stack.start_sim()
    gw = stack.start_gateway()
    c = stack.client("OMS1", reset_on_logon=True)  # its side of the agreement
    c.new_order("G1", "ACC1", "JPM", "1", 10, 200.0, tif="1")  # JPM rests at the venue
    c.wait_for(lambda m: m.get(11) == "G1" and m.get(150) == "0")
    res = gw.rollover("tester", "end of day")
    assert res["sessions_reset"] == ["FIXGW->OMS1"]
    gw.housekeeping()  # where cancel-on-disconnect would send its cancels
    assert [o.cl_ord_id for o in gw.router.ledger.open_orders()] == ["G1"]
    venue_cl = gw.router.ledger.find("FIXGW->OMS1", "G1").venue_cl_ord_id
    venue_order = stack.sim.orders[venue_cl]
    assert venue_order.status == "0"
    assert not [m for m in c.received if m.get(150) == "4"]
    # A real disconnect after the rollover still cancels.
    assert c.wait_logon(15)  # the new day's session
    stack.stop_client(c)
    gw.housekeeping()
    wait_until(lambda: not gw.router.ledger.open_orders(), 10, "the venue's cancel of G1")
    assert venue_order.status == "4"


def test_a_session_an_operator_logged_out_stays_out_after_the_rollover(stack) -> None:
    _clients(stack, OMS1={"rollover_reset": True, "reset_on_logon": True},
             OMS2={"rollover_reset": True, "reset_on_logon": True})  # the whole acceptor restarts
    stack.start_sim()
    gw = stack.start_gateway()
    stack.client("OMS1", reset_on_logon=True)
    session_switch(gw, "logout", "FIXGW->OMS2", "alice", "desk closed for an audit")
    assert not _session(gw, "FIXGW->OMS2").isEnabled()
    res = gw.rollover("tester", "end of day")
    assert res["engines_restarted"] == ["clients"]
    assert _session(gw, "FIXGW->OMS1").isEnabled()
    assert not _session(gw, "FIXGW->OMS2").isEnabled()  # a fresh engine enables every session: held again
    oms2 = stack.client("OMS2", logon=False, reset_on_logon=True)  # it keeps trying (ReconnectInterval=1)
    log = stack.cfg.state_dir / "fixlog" / "clients" / "FIX.4.4-FIXGW-OMS2.event.current.log"
    wait_until(lambda: log.exists() and "Session is not enabled for logon" in log.read_text(), 10, "a refused logon")
    assert not oms2.logged_on
    session_switch(gw, "logon", "FIXGW->OMS2", "alice", "audit over")
    assert oms2.wait_logon(15)


def test_a_fill_while_the_rollover_resets_a_client_reaches_it_on_the_new_day(stack, monkeypatch) -> None:
    from gateway.control import rollover

    _clients(stack, OMS1={"rollover_reset": True, "reset_on_logon": True})  # OMS2 runs on: OMS1 alone resets
    stack.start_sim()
    gw = stack.start_gateway()
    c = stack.client("OMS1", reset_on_logon=True)
    c.new_order("G1", "ACC1", "JPM", "1", 10, 200.0, tif="1")  # rests at the venue
    c.wait_for(lambda m: m.get(11) == "G1" and m.get(150) == "0")
    venue_cl = gw.router.ledger.find("FIXGW->OMS1", "G1").venue_cl_ord_id
    real_hold_out = rollover._hold_out

    def fill_while_out(sessions):  # the venue fills G1 after OMS1 is logged out, before its store is reset
        still = real_hold_out(sessions)
        stack.sim.fill_open(venue_cl)
        wait_until(lambda: gw.router.ledger.find("FIXGW->OMS1", "G1").status == "2", 10, "the fill booked")
        return still

    monkeypatch.setattr(rollover, "_hold_out", fill_while_out)
    res = gw.rollover("tester", "end of day")
    assert res["sessions_reset"] == ["FIXGW->OMS1"] and res["reports_held_for_reset_sessions"] == 1
    assert c.wait_logon(15)  # the new day's session, from MsgSeqNum 1
    wait_until(lambda: "FIXGW->OMS1" in gw.router.logged_on, 10, "the gateway sees OMS1 logged on")
    gw.housekeeping()  # what the daemon's loop does every 200 ms: the held report goes out
    fill = c.wait_for(lambda m: m.get(11) == "G1" and m.get(150) == "F", timeout=10)
    assert fill[39] == "2" and float(fill[32]) == 10
