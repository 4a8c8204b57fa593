"""Session-level behaviour: venue down, restart with sequence numbers kept, unknown CompIDs, malformed input."""

from __future__ import annotations

import socket
import time

import simplefix

from risk.reasons import CATALOGUE


def _er(client, cl: str, exec_type: str, status: str | None = None) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type
                           and (status is None or m.get(39) == status))


def test_orders_are_rejected_at_once_while_the_venue_is_down(stack) -> None:
    stack.start_gateway(wait_venue=False)  # no venue simulator listening
    oms = stack.client()
    oms.new_order("D1", "ACC1", "AAPL", "1", 100, 190.0)
    rej = _er(oms, "D1", "8", "8")
    assert rej[58].startswith("VENUE_DOWN")
    expected = CATALOGUE["VENUE_DOWN"].ord_rej_reason
    assert rej[103] == str(99 if expected is None else expected)
    assert "docs/runbooks/VENUE_DOWN.md" in rej[58]
    assert not stack.gw.router.ledger.orders  # nothing queued


def test_venue_coming_back_takes_orders_again_and_does_not_replay_rejected_ones(stack) -> None:
    stack.start_gateway(wait_venue=False)
    oms = stack.client()
    oms.new_order("D1", "ACC1", "AAPL", "1", 100, 190.0)
    _er(oms, "D1", "8", "8")
    stack.start_sim()
    assert stack.gw.venue_logged_on.wait(15)
    oms.new_order("D2", "ACC1", "AAPL", "1", 100, 190.0)
    _er(oms, "D2", "F", "2")
    assert [o.cl_ord_id for o in stack.sim.orders.values()] != []
    assert all(o.qty == 100 for o in stack.sim.orders.values()) and len(stack.sim.orders) == 1


def test_restart_keeps_sequence_numbers_and_the_ledger(running) -> None:
    oms = running.client()
    oms.new_order("R1", "ACC2", "JPM", "1", 300, 200.0)  # rests at the venue
    _er(oms, "R1", "0")
    session = oms.session()
    sent_before, expected_before = session.getExpectedSenderNum(), session.getExpectedTargetNum()
    running.stop_client(oms)
    running.stop_gateway()

    running.start_gateway()  # same state folder: file store and event log
    oms2 = running.client(name="oms1")  # same client store too
    s2 = oms2.session()
    # Neither side reset: both continue where they were (the logout and the new logon take numbers too).
    assert s2.getExpectedSenderNum() >= sent_before + 2
    logon = [m for m in oms2.admin_received if m.get(35) == "A"][-1]
    assert int(logon[34]) >= expected_before + 1
    assert not any(m.get(35) == "4" and m.get(123) != "Y" for m in oms2.admin_received)  # no SequenceReset-Reset
    # The order placed before the restart is still known: its cancel is routed and answered with the client's ids.
    oms2.cancel("R2", "R1", "JPM", "1", "ACC2")
    can = _er(oms2, "R2", "4", "4")
    assert can[41] == "R1"


def test_unknown_comp_id_cannot_log_on(running) -> None:
    """A raw socket speaking FIX: the gateway drops the connection without answering the Logon."""
    logon = simplefix.FixMessage()
    for tag, val in ((8, "FIX.4.4"), (35, "A"), (49, "INTRUDER"), (56, "FIXGW"), (34, 1),
                     (52, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime())), (98, 0), (108, 30)):
        logon.append_pair(tag, val)
    with socket.create_connection(("127.0.0.1", running.cfg.acceptor.port), timeout=10) as s:
        s.sendall(logon.encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break  # the gateway closed the connection
            data += chunk
    parser = simplefix.FixParser()
    parser.append_buffer(data)
    msg = parser.get_message()
    assert msg is None or msg.get(35) != b"A"
    assert running.gw.router.logged_on == set()


def test_malformed_order_gets_a_session_reject_and_the_session_stays_up(running) -> None:
    from gateway.fix import messages as fm

    oms = running.client()
    m = fm.new_message("D")  # no Symbol, Side, OrderQty or OrdType
    m.setField(11, "BAD1")
    m.setField(60, fm.utc_timestamp())
    oms.send(m)
    rej = oms.wait_for(lambda f: f.get(35) == "3", admin=True)
    assert rej.get(373) == "1"  # SessionRejectReason: required tag missing
    oms.new_order("OK1", "ACC1", "AAPL", "1", 5, 190.0)
    _er(oms, "OK1", "F", "2")
    assert not running.gw.router.ledger.is_duplicate("FIXGW->OMS1", "BAD1")


def test_non_positive_quantity_is_rejected_by_the_gateway(running) -> None:
    oms = running.client()
    oms.new_order("Q0", "ACC1", "AAPL", "1", 0, 190.0)
    rej = _er(oms, "Q0", "8", "8")
    assert rej[58].startswith("INVALID_QTY")
    assert not running.sim.orders
