"""Client -> gateway -> venue -> gateway -> client over real QuickFIX sessions on 127.0.0.1."""

from __future__ import annotations


def _er(client, cl: str, exec_type: str, status: str | None = None) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type
                           and (status is None or m.get(39) == status))


def test_new_order_is_acked_and_fully_filled(running) -> None:
    oms = running.client()
    oms.new_order("A1", "ACC1", "AAPL", "1", 100, 190.0)
    ack = _er(oms, "A1", "0")
    fill = _er(oms, "A1", "F", "2")
    assert ack[39] == "0"
    assert (fill[32], fill[31], fill[14], fill[151]) == ("100", "190.0", "100", "0")
    # The venue saw the gateway's own ClOrdID, never the client's.
    venue_ids = list(running.sim.orders)
    assert venue_ids and all(v != "A1" for v in venue_ids)


def test_partial_fill_leaves_the_rest_open(running) -> None:
    oms = running.client()
    oms.new_order("M1", "ACC1", "MSFT", "2", 200, 410.0)
    f = _er(oms, "M1", "F", "1")
    assert (f[32], f[14], f[151]) == ("100", "100", "100")
    order = running.gw.router.ledger.find("FIXGW->OMS1", "M1")
    assert order is not None and order.cum_qty == 100 and order.leaves_qty == 100


def test_replace_then_cancel_carry_the_clients_ids(running) -> None:
    oms = running.client()
    oms.new_order("I1", "ACC2", "JPM", "1", 300, 200.0)
    _er(oms, "I1", "0")
    oms.replace("I2", "I1", "JPM", "1", 400, 201.0, "ACC2")
    rep = _er(oms, "I2", "5")
    assert (rep[41], rep[38], rep[44]) == ("I1", "400", "201.0")
    oms.cancel("I3", "I2", "JPM", "1", "ACC2")
    can = _er(oms, "I3", "4", "4")
    assert can[41] == "I2"
    assert not running.gw.router.ledger.open_orders()


def test_venue_reject_reaches_the_client(running) -> None:
    oms = running.client()
    oms.new_order("T1", "ACC2", "XOM", "1", 10, 110.0)
    rej = _er(oms, "T1", "8", "8")
    assert rej[58] == "venue: instrument halted"


def test_two_clients_with_the_same_clordid_do_not_collide(running) -> None:
    oms1 = running.client("OMS1")
    oms2 = running.client("OMS2")
    oms1.new_order("SAME", "ACC1", "JPM", "1", 10, 200.0)  # rests at the venue
    oms2.new_order("SAME", "ACC3", "AAPL", "2", 20, 191.0)  # fills at once
    _er(oms1, "SAME", "0")
    f2 = _er(oms2, "SAME", "F", "2")
    assert (f2[54], f2[32]) == ("2", "20")
    # OMS1 cancels its own SAME: only its order goes, OMS2 hears nothing of it.
    oms1.cancel("SAME-X", "SAME", "JPM", "1", "ACC1")
    _er(oms1, "SAME-X", "4")
    assert all(m.get(54) == "1" for m in oms1.reports("SAME"))
    assert all(m.get(54) == "2" for m in oms2.reports("SAME"))
    assert not any(m.get(11) == "SAME-X" for m in oms2.received)


def test_cancel_of_an_unknown_order_gets_a_cancel_reject(running) -> None:
    oms = running.client()
    oms.cancel("C9", "NOPE", "JPM", "1", "ACC1")
    rej = oms.wait_for(lambda m: m.get(35) == "9" and m.get(11) == "C9")
    assert (rej[434], rej[41], rej[102]) == ("1", "NOPE", "1")
    assert rej[58].startswith("UNKNOWN_ORDER")


def test_unsupported_message_gets_a_business_message_reject(running) -> None:
    from gateway.fix import messages as fm

    oms = running.client()
    m = fm.new_message("H")
    for tag, val in ((11, "A1"), (55, "AAPL"), (54, "1")):
        m.setField(tag, val)
    oms.send(m)
    bmr = oms.wait_for(lambda f: f.get(35) == "j")
    assert (bmr[372], bmr[380]) == ("H", "3")
    # The session stays up: the next order still goes through.
    oms.new_order("A2", "ACC1", "AAPL", "1", 1, 190.0)
    _er(oms, "A2", "F", "2")


def test_account_outside_the_sessions_entitlement_is_rejected(running) -> None:
    oms = running.client("OMS1")
    oms.new_order("X1", "ACC3", "AAPL", "1", 10, 190.0)
    rej = _er(oms, "X1", "8", "8")
    assert rej[58].startswith("ACCOUNT_NOT_PERMITTED")
    assert "docs/runbooks/ACCOUNT_NOT_PERMITTED.md" in rej[58]
    assert not running.sim.orders
