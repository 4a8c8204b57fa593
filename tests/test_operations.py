"""Operations on a live gateway: reloads under load, cancel on disconnect, status requests after a crash."""

from __future__ import annotations

import threading

from gateway.orders.ledger import PENDING_NEW


def _answered(client, cl: str) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(11) == cl and m.get(35) == "8" and m.get(150) in ("0", "8", "F"),
                           timeout=30)


def test_a_reload_under_load_drops_no_session_and_no_order(running) -> None:
    c = running.client()
    gw = running.gw
    n_orders = 300
    reloads: list[str] = []
    errors: list[BaseException] = []

    def reload_loop() -> None:
        try:
            for _ in range(10):
                reloads.append(gw.reload_risk("test", "reload under load"))
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    t = threading.Thread(target=reload_loop)
    t.start()
    for n in range(n_orders):
        c.new_order(f"L{n}", "ACC1", "AAPL", "1" if n % 2 else "2", 1, 190.0)
    t.join(timeout=120)
    assert not errors and len(reloads) == 10
    answers = [_answered(c, f"L{n}") for n in range(n_orders)]
    codes = {a[58].split(":")[0] for a in answers if a[150] == "8"}
    assert codes <= {"ORDER_RATE", "MESSAGE_RATE"}, codes  # only throttled, never lost
    assert c.logged_on and c.logouts == 0
    assert running.gw.router.logged_on == {"FIXGW->OMS1"}
    accepted = sum(1 for a in answers if a[150] != "8")
    assert len(running.sim.fills) == accepted


def test_cancel_on_disconnect_cancels_the_sessions_open_orders(stack) -> None:
    clients = [c.model_copy(update={"cancel_on_disconnect": c.sender_comp_id == "OMS1"})
               for c in stack.cfg.acceptor.clients]
    stack.cfg = stack.cfg.model_copy(update={"acceptor": stack.cfg.acceptor.model_copy(update={"clients": clients})})
    stack.start_sim()
    gw = stack.start_gateway()
    oms1, oms2 = stack.client("OMS1"), stack.client("OMS2")
    oms1.new_order("J1", "ACC1", "JPM", "1", 10, 200.0)  # rests
    oms2.new_order("M1", "ACC3", "MSFT", "2", 200, 410.0)  # half rests
    oms1.wait_for(lambda m: m.get(11) == "J1" and m.get(150) == "0")
    oms2.wait_for(lambda m: m.get(11) == "M1" and m.get(150) == "F")
    stack.stop_client(oms1)
    gw.housekeeping()  # what the daemon's loop does every 200 ms
    oms1 = stack.client("OMS1", name="oms1")
    # The cancel report waited for OMS1 in the gateway's store and arrives with the resend.
    oms1.wait_for(lambda m: m.get(11) == "J1" and m.get(150) == "4", timeout=20)
    assert [o.cl_ord_id for o in gw.router.ledger.open_orders()] == ["M1"]  # OMS2's order stands


def test_orders_left_pending_by_a_crash_are_settled_by_a_status_request(running) -> None:
    """A crash between logging an order and sending it leaves an order the venue never had: the event log
    holds it, the venue does not. After the restart the gateway asks the venue and settles it."""
    import json
    import time

    from gateway import service

    c = running.client()
    c.new_order("A1", "ACC1", "AAPL", "1", 10, 190.0)  # a normal order first: the session is in use
    c.wait_for(lambda m: m.get(11) == "A1" and m.get(150) == "F")
    running.stop_client(c)
    gw = running.gw
    prefix, last = gw.router.id_prefix, gw.router.ledger.next_request
    running.stop_gateway()
    with open(running.cfg.state_dir / "events.log", "a") as f:  # what the crash left behind
        for n, cl in enumerate(("P1", "P2"), start=1):
            f.write(json.dumps({"e": "N", "r": last + n, "s": "FIXGW->OMS1", "cl": cl, "v": f"{prefix}{last + n}",
                                "n": 1 + n, "a": "ACC1", "sym": "AAPL", "side": "1", "t": "2", "qty": 10.0,
                                "px": 190.0, "w": [], "lv": "", "ts": time.time_ns()}) + "\n")
    gw = running.start_gateway()
    assert [o.status for o in gw.router.ledger.open_orders()] == [PENDING_NEW, PENDING_NEW]
    e = gw.risk.engine
    a, i = e.account_index("ACC1"), e.instrument_index("AAPL")
    assert e.open_exposure(a, i) == (20.0, 0.0)  # reserved while their fate is unknown
    c = running.client(name="oms1")
    old_delay = service.STATUS_REQUEST_DELAY_S
    service.STATUS_REQUEST_DELAY_S = 0.0  # the daemon waits 2 s for the venue's resends first
    try:
        gw.housekeeping()
    finally:
        service.STATUS_REQUEST_DELAY_S = old_delay
    for cl in ("P1", "P2"):
        st = c.wait_for(lambda m, cl=cl: m.get(11) == cl and m.get(150) == "I", timeout=20)
        assert (st[39], st[103]) == ("8", "5")  # rejected: unknown order at the venue
    assert gw.router.ledger.open_orders() == []
    assert e.open_exposure(a, i) == (0.0, 0.0)


def test_a_dying_control_plane_task_is_restarted_and_counted(stack) -> None:
    import asyncio

    from gateway.control import daemon
    from gateway.service import Gateway

    gw = Gateway(stack.cfg)  # not started: the supervisor needs only its metrics
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("task died")

    async def main() -> None:
        old = daemon.BACKOFF_S
        daemon.BACKOFF_S = (0.0,)
        try:
            sup = daemon.Supervisor(gw)
            sup.spawn("flaky", flaky)
            await sup.tasks["flaky"]
        finally:
            daemon.BACKOFF_S = old

    try:
        asyncio.run(main())
    finally:
        gw.stop()
    assert len(runs) == 3
    assert gw.metrics.task_restarts.labels("flaky")._value.get() == 2
