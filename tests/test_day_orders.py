"""DAY orders expire at the venue's session end, as venues do, over real sessions on 127.0.0.1: the venue
simulator's end_of_day() and its session_end timer send ExecType C for the open DAY orders (and GTD orders that
are due), GTC orders stay open, and the gateway marks the expired orders done and releases their reservations.
The simulator forgets its done orders at the session end."""

from __future__ import annotations

import datetime as dt

from sim.venue import Rule, SimConfig, SimOrder, next_session_end

S1 = "FIXGW->OMS1"


def _er(client, cl: str, exec_type: str, status: str | None = None, timeout: float = 10.0) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type
                           and (status is None or m.get(39) == status), timeout=timeout)


def _with_sim(stack, *rules: Rule, **sim: object) -> None:
    stack.sim_cfg = stack.sim_cfg.model_copy(update={"rules": list(rules) + list(stack.sim_cfg.rules), **sim})


def _venue(stack, cl: str):
    """The venue's copy of the client order `cl` (the venue knows it by the gateway's ClOrdID)."""
    return stack.sim.orders.get(stack.gw.router.ledger.find(S1, cl).venue_cl_ord_id)


def _open(gw) -> list[str]:
    return sorted(o.cl_ord_id for o in gw.router.ledger.open_orders())


REST = Rule(symbol="AAPL", action="ack")  # AAPL orders rest at the venue (the demo rules fill them)


def _resting_aapl(stack):
    """Simulator (AAPL rests), gateway and a client up: (gateway, client, risk engine, ACC1, AAPL)."""
    _with_sim(stack, REST)
    stack.start_sim()
    gw = stack.start_gateway()
    e = gw.risk.engine
    return gw, stack.client(), e, e.account_index("ACC1"), e.instrument_index("AAPL")


def _rest(c, cl: str, side: str, qty: float, **kw: object) -> None:
    """An AAPL limit order that the venue acknowledges and leaves resting."""
    c.new_order(cl, "ACC1", "AAPL", side, qty, 190.0, **kw)
    _er(c, cl, "0")


def test_end_of_day_expires_the_day_order_and_the_gtc_order_stays_open(stack) -> None:
    gw, c, e, a, aapl = _resting_aapl(stack)
    _rest(c, "DAY1", "1", 100, tif="0")
    _rest(c, "GTC1", "1", 30, tif="1")
    assert _open(gw) == ["DAY1", "GTC1"]
    assert e.open_exposure(a, aapl) == (130.0, 0.0)
    count = e.open_order_count()
    start = len(c.received)

    assert stack.sim.end_of_day() == 1
    x = _er(c, "DAY1", "C", "C")
    assert (x[151], x[14], x[6], x[38]) == ("0", "0", "0.0", "100")
    assert x[17] not in {m.get(17) for m in c.reports("DAY1") if m is not x}  # a fresh ExecID
    # The gateway: DAY1 is done and its reservation released; GTC1 is still open and reserved.
    assert gw.router.ledger.find(S1, "DAY1").status == "C"
    assert _open(gw) == ["GTC1"]
    assert e.open_exposure(a, aapl) == (30.0, 0.0)
    assert e.open_order_count() == count - 1
    # A round trip after the expiry: had the venue expired the GTC order too, its report would be here by now.
    c.new_order("AFTER", "ACC1", "AAPL", "1", 1, 190.0, tif="1")
    _er(c, "AFTER", "0")
    assert not [m for m in c.received[start:] if m.get(150) == "C" and m.get(11) != "DAY1"]
    assert _open(gw) == ["AFTER", "GTC1"] and e.open_exposure(a, aapl) == (31.0, 0.0)
    # The venue: the GTC order rests on; the expired one is forgotten.
    gtc = _venue(stack, "GTC1")
    assert gtc is not None and gtc.status == "0" and gtc.leaves == 30
    assert _venue(stack, "DAY1") is None
    # The GTC order trades on after the session end.
    stack.sim.fill_open(gtc.cl_ord_id)
    _er(c, "GTC1", "F", "2")
    assert _open(gw) == ["AFTER"] and e.open_exposure(a, aapl) == (1.0, 0.0)


def test_the_risk_reservation_count_drops_by_one(stack) -> None:
    gw, c, e, a, aapl = _resting_aapl(stack)
    _rest(c, "D1", "2", 40, tif="0")
    _rest(c, "G1", "2", 25, tif="1")
    before = e.open_order_count()
    assert e.open_exposure(a, aapl) == (0.0, 65.0)
    assert stack.sim.end_of_day() == 1
    _er(c, "D1", "C", "C")
    assert e.open_order_count() == before - 1
    assert e.open_exposure(a, aapl) == (0.0, 25.0)
    assert _open(gw) == ["G1"]


def test_an_order_without_time_in_force_is_a_day_order(stack) -> None:
    gw, c, e, a, aapl = _resting_aapl(stack)
    _rest(c, "N1", "1", 10)  # no 59
    _rest(c, "G1", "1", 20, extra={59: "1"})
    assert _venue(stack, "N1").tif == ""
    assert stack.sim.end_of_day() == 1
    x = _er(c, "N1", "C", "C")
    assert x[151] == "0"
    assert _open(gw) == ["G1"] and e.open_exposure(a, aapl) == (20.0, 0.0)


def test_a_partly_filled_day_order_expires_with_its_fills_as_they_stand(stack) -> None:
    stack.start_sim()  # the demo rules: MSFT fills half and rests the rest
    gw = stack.start_gateway()
    c = stack.client()
    e = gw.risk.engine
    a, msft = e.account_index("ACC1"), e.instrument_index("MSFT")
    c.new_order("P1", "ACC1", "MSFT", "1", 200, 410.0, tif="0")
    _er(c, "P1", "F", "1")
    assert e.open_exposure(a, msft) == (100.0, 0.0)
    assert stack.sim.end_of_day() == 1
    x = _er(c, "P1", "C", "C")
    assert (x[151], x[14], float(x[6])) == ("0", "100", 410.0)
    assert e.open_exposure(a, msft) == (0.0, 0.0) and e.position(a, msft) == 100
    assert not _open(gw) and gw.router.ledger.find(S1, "P1").cum_qty == 100


def test_a_gtd_order_expires_at_the_session_end_of_its_expire_date(stack) -> None:
    _with_sim(stack, REST)
    stack.start_sim()
    gw = stack.start_gateway()
    c = stack.client()
    today = dt.datetime.now(dt.timezone.utc)
    tomorrow = (today + dt.timedelta(days=1)).strftime("%Y%m%d")
    c.new_order("GT1", "ACC1", "AAPL", "1", 10, 190.0, tif="6", expire_date=today.strftime("%Y%m%d"))
    c.new_order("GT2", "ACC1", "AAPL", "1", 10, 190.0, tif="6", expire_date=tomorrow)
    _er(c, "GT1", "0")
    _er(c, "GT2", "0")
    assert (_venue(stack, "GT2").tif, _venue(stack, "GT2").expire_date) == ("6", tomorrow)
    assert stack.sim.end_of_day() == 1
    _er(c, "GT1", "C", "C")
    assert _open(gw) == ["GT2"]
    # Tomorrow's session end (the clock stood in for) ends GT2.
    gt2_venue = _venue(stack, "GT2")
    assert stack.sim.end_of_day(now=today + dt.timedelta(days=1)) == 1
    _er(c, "GT2", "C", "C")
    assert not _open(gw) and gt2_venue.status == "C"


def test_the_session_end_timer_expires_day_orders_without_a_call(stack) -> None:
    # The sim's clock fires a few seconds from now (whole seconds, UTC); the order rests well before that.
    due = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=5)
    _with_sim(stack, REST, session_end=due.strftime("%H:%M:%S"))
    stack.start_sim()
    gw = stack.start_gateway()
    c = stack.client()
    c.new_order("TD1", "ACC1", "AAPL", "1", 10, 190.0)
    c.new_order("TG1", "ACC1", "AAPL", "1", 10, 190.0, tif="1")
    _er(c, "TD1", "0")
    _er(c, "TG1", "0")
    assert dt.datetime.now(dt.timezone.utc) < due, "the stack took too long to start: the timer went off first"
    x = _er(c, "TD1", "C", "C", timeout=15)
    assert dt.datetime.now(dt.timezone.utc) >= due
    assert x[151] == "0"
    assert _open(gw) == ["TG1"]
    assert _venue(stack, "TG1").status == "0"


def test_done_orders_are_forgotten_at_the_session_end_not_before(running) -> None:
    sim, c = running.sim, running.client()
    c.new_order("F1", "ACC1", "AAPL", "1", 5, 190.0)  # the demo rules fill AAPL
    fill = _er(c, "F1", "F", "2")
    venue_cl = running.gw.router.ledger.find(S1, "F1").venue_cl_ord_id
    assert venue_cl in sim.orders and [f["exec_id"] for f in sim.fills] == [fill[17]]  # a bust could still come
    assert sim.end_of_day() == 0
    assert sim.orders == {} and sim.fills == []


# ------------------------------------------------------------------ the simulator's memory, without sessions
class _Wire:
    """Stands in for QuickFIX's sendToTarget: what the simulator sends, as {tag: value} dicts."""

    def __init__(self, monkeypatch) -> None:
        import quickfix as fix

        from gateway.fix import messages as fm

        self.sent: list[dict[int, str]] = []
        monkeypatch.setattr(fix.Session, "sendToTarget", lambda m, sid: self.sent.append(fm.to_dict(m)) or True)


def _bare_sim(tmp_path, **cfg: object):
    import quickfix as fix

    from sim.venue import SimSession, VenueSim

    sim = VenueSim(SimConfig(port=1, state_dir=tmp_path, sessions=[SimSession(sender_comp_id="VENUE",
                                                                              target_comp_id="FIXGW")], **cfg))
    return sim, fix.SessionID("FIX.4.4", "VENUE", "FIXGW")


def _msg(msg_type: str, **fields: object):
    from gateway.fix import messages as fm

    m = fm.new_message(msg_type)
    for tag, val in fields.items():
        m.setField(int(tag.lstrip("t")), str(val))
    return m


def _nos(cl: str, symbol: str = "AAPL", qty: int = 1, tif: str = ""):
    m = _msg("D", t11=cl, t1="ACC1", t55=symbol, t54="1", t38=qty, t40="2", t44="190.0")
    if tif:
        m.setField(59, tif)
    return m


def test_filled_orders_over_several_sessions_do_not_grow_the_simulator_without_bound(tmp_path,
                                                                                    monkeypatch) -> None:
    wire = _Wire(monkeypatch)
    sim, sid = _bare_sim(tmp_path, done_orders_kept=500, rules=[Rule(symbol="JPM", action="ack"), Rule()])
    sim._on_message(_nos("REST", symbol="JPM", tif="1"), sid)  # a GTC order open all along
    n = 0
    for day in range(3):  # 3 sessions of 5,000 filled orders; a million is more of the same
        for _ in range(5_000):
            sim._on_message(_nos(f"O{n}"), sid)
            n += 1
            assert len(sim.orders) <= 501 and len(sim.fills) <= 500
        wire.sent.clear()
        assert sim.end_of_day() == 0
        assert list(sim.orders) == ["REST"] and sim.fills == [] and not sim._done and not wire.sent
    assert sim.orders["REST"].leaves == 1


def test_a_resting_gtc_order_survives_the_bound_and_sessions(tmp_path, monkeypatch) -> None:
    wire = _Wire(monkeypatch)
    sim, sid = _bare_sim(tmp_path, done_orders_kept=10,
                         rules=[Rule(symbol="JPM", action="ack"), Rule(symbol="*", action="fill")])
    sim._on_message(_nos("G", symbol="JPM", tif="1"), sid)
    sim._on_message(_nos("D", symbol="JPM"), sid)
    for n in range(100):
        sim._on_message(_nos(f"F{n}"), sid)
    assert {"G", "D"} <= set(sim.orders) and len(sim.orders) <= 12
    assert sim.end_of_day() == 1
    assert list(sim.orders) == ["G"]
    (expiry,) = [m for m in wire.sent if m.get(150) == "C"]
    assert (expiry[11], expiry[39], expiry[151]) == ("D", "C", "0")
    sim._on_message(_msg("G", t11="G2", t41="G", t55="JPM", t54="1", t38=3, t40="2", t44="201.0"), sid)
    assert sim.orders["G2"].tif == "1" and sim.end_of_day() == 0  # a replace without 59 keeps GTC


def test_a_forgotten_done_order_is_answered_as_an_unknown_one(tmp_path, monkeypatch) -> None:
    wire = _Wire(monkeypatch)
    sim, sid = _bare_sim(tmp_path)
    sim._on_message(_nos("K1"), sid)  # the default rule fills it
    sim.end_of_day()

    def answers(cl: str) -> list[dict[int, str]]:
        wire.sent.clear()
        sim._on_message(_msg("H", t11=cl, t55="AAPL", t54="1"), sid)
        sim._on_message(_msg("F", t11="X" + cl, t41=cl, t55="AAPL", t54="1"), sid)
        sim._on_message(_msg("G", t11="Y" + cl, t41=cl, t55="AAPL", t54="1", t38=9, t40="2", t44="1.0"), sid)
        volatile = (9, 10, 11, 17, 41, 60)  # IDs, stamps, length and checksum differ; nothing else may
        return [{k: v for k, v in m.items() if k not in volatile} for m in wire.sent]

    assert answers("K1") == answers("NEVER")
    assert [(m[35], m.get(58)) for m in answers("K1")] == [("8", "unknown order"), ("9", "unknown order"),
                                                           ("9", "unknown order")]


def test_next_session_end_is_today_or_tomorrow_and_seconds_count() -> None:
    now = dt.datetime(2026, 3, 2, 21, 0, 30, tzinfo=dt.timezone.utc)
    assert next_session_end(now, "21:00:31") == dt.datetime(2026, 3, 2, 21, 0, 31, tzinfo=dt.timezone.utc)
    assert next_session_end(now, "21:00:30") == dt.datetime(2026, 3, 3, 21, 0, 30, tzinfo=dt.timezone.utc)
    assert next_session_end(now, "21:00") == dt.datetime(2026, 3, 3, 21, 0, tzinfo=dt.timezone.utc)
    assert next_session_end(now, "22:00") == dt.datetime(2026, 3, 2, 22, 0, tzinfo=dt.timezone.utc)


def test_gtd_by_expire_time() -> None:
    import quickfix as fix

    o = SimOrder("V1", "C1", fix.SessionID("FIX.4.4", "A", "B"), "ACC1", "AAPL", "1", "2", 1, 1.0, tif="6",
                 expire_time="20260302-20:00:00.000")
    assert not o.expires_at_session_end(dt.datetime(2026, 3, 2, 19, 59, tzinfo=dt.timezone.utc))
    assert o.expires_at_session_end(dt.datetime(2026, 3, 2, 20, 0, tzinfo=dt.timezone.utc))
