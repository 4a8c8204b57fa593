"""Trading-day rollover over real sessions on 127.0.0.1: a rollover in a flow of orders and fills, GTC orders that
carry over and fill later, DAY orders still open, restarts on the new day, a crash in the middle of the rollover,
start-of-day positions from a file, archive retention and the journal by day."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

import pytest

from config.errors import ConfigError
from gateway.orders import trading_day as td
from gateway.events.log import EventLog
from gateway.events.schema import Admin, CarriedOrder, DayStart, Position
from gateway.events.journal_query import query

S1 = "FIXGW->OMS1"


def _er(client, cl: str, exec_type: str, status: str | None = None, timeout: float = 10.0) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type
                           and (status is None or m.get(39) == status), timeout=timeout)


def _venue_positions(sim, account: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for f in sim.fills:
        if f.get("account", account) == account:
            out[f["symbol"]] = out.get(f["symbol"], 0.0) + (f["qty"] if f["side"] == "1" else -f["qty"])
    return {k: v for k, v in out.items() if v}


def _positions(gw, account: str) -> dict[str, float]:
    e = gw.risk.engine
    a = e.account_index(account)
    return {s: e.position(a, i) for i, s in enumerate(e.instrument_symbols) if e.position(a, i)}


def _with_risk(stack, **files: object) -> None:
    stack.cfg = stack.cfg.model_copy(update={"risk": stack.cfg.risk.model_copy(update=files)})


def _with_trading_day(stack, **settings: object) -> None:
    stack.cfg = stack.cfg.model_copy(update={"trading_day": stack.cfg.trading_day.model_copy(update=settings)})


def test_a_rollover_in_a_flow_of_orders_and_fills_loses_and_doubles_nothing(running) -> None:
    gw, sim = running.gw, running.sim
    c = running.client()
    day0 = gw.trading_day
    sent: list[str] = []
    half = threading.Event()

    def flow() -> None:  # AAPL fills at once, JPM rests; paced by sleeps under the 50/s order-rate limit
        for n in range(120):
            cl = f"R{n}"
            if n % 5 == 4:
                c.new_order(cl, "ACC1", "JPM", "1", 10, 200.0)
            else:
                c.new_order(cl, "ACC1", "AAPL", "1" if n % 2 else "2", 10 + n % 3, 190.0)
            sent.append(cl)
            if n == 60:
                half.set()
            time.sleep(0.025)

    sender = threading.Thread(target=flow)
    sender.start()
    assert half.wait(20)
    result = gw.rollover("tester", "rollover in the middle of the flow")
    sender.join(60)
    for cl in sent:  # every order accepted and answered, on either side of the boundary
        c.wait_for(lambda m, cl=cl: m.get(11) == cl and m.get(35) == "8" and m.get(150) in ("F", "0"), timeout=20)
    assert not [m for m in c.received if m.get(150) == "8"]
    exec_ids = {f["exec_id"] for f in sim.fills}
    for x in exec_ids:
        c.wait_for(lambda m, x=x: m.get(17) == x, timeout=20)
    assert result["previous_day"] == day0 and result["day"] == gw.trading_day != day0
    assert (gw.cfg.archive_dir / day0 / "events.log").is_file()
    assert _positions(gw, "ACC1") == pytest.approx(_venue_positions(sim, "ACC1"))
    venue_open = sorted(o.cl_ord_id for o in sim.orders.values() if o.leaves > 0)
    assert len(gw.router.ledger.open) == len(venue_open) == gw.risk.engine.open_order_count()
    # Memory holds what carried over and the new day's orders, not yesterday's done ones.
    segment = list(EventLog.read(gw.events.path))
    n0 = segment[0].next_number
    carried = {ev.number for ev in segment if isinstance(ev, CarriedOrder)}
    assert carried  # JPM orders rest across the boundary
    assert {o.number for o in gw.router.ledger.orders.values() if o.number < n0} == carried
    # The journal has every fill exactly once, across both days, and each day is queryable.
    gw.journal.flush()
    fills = query(gw.journal.path, "fills")
    assert sorted(f["exec_id"] for f in fills) == sorted(exec_ids)
    day_fills = query(gw.journal.path, "fills", day=day0) + query(gw.journal.path, "fills", day=gw.trading_day)
    assert sorted(f["exec_id"] for f in day_fills) == sorted(exec_ids)
    assert query(gw.journal.path, "admin", day=day0)[-1]["action"] == "rollover"

    # A restart on the new day replays its segment only and comes back to the same state.
    before = (_positions(gw, "ACC1"), sorted(gw.router.ledger.open), gw.risk.engine.open_order_count())
    running.stop_gateway()
    gw = running.start_gateway()
    assert (_positions(gw, "ACC1"), sorted(gw.router.ledger.open), gw.risk.engine.open_order_count()) == before
    assert gw.trading_day == result["day"]


def test_only_open_orders_carry_over_and_done_ones_leave_memory(running) -> None:
    gw, sim = running.gw, running.sim
    c = running.client()
    for n in range(20):
        c.new_order(f"F{n}", "ACC1", "AAPL", "1", 5, 190.0)
    c.new_order("REST", "ACC1", "JPM", "1", 7, 200.0, extra={59: "1"})
    for n in range(20):
        _er(c, f"F{n}", "F")
    _er(c, "REST", "0")
    assert len(gw.router.ledger.orders) == 21 and len(gw.router.ledger.fills) == 20
    gw.rollover("tester", "memory")
    led = gw.router.ledger
    assert [o.cl_ord_id for o in led.orders.values()] == ["REST"]
    assert not led.fills and list(led.by_venue) == [led.orders[21].venue_cl_ord_id]
    # Yesterday's done ClOrdIDs are still refused for a session whose sequence numbers run on (the default).
    c.new_order("F3", "ACC1", "AAPL", "1", 5, 190.0)
    rej = _er(c, "F3", "8")
    assert "DUPLICATE_CLORDID" in rej[58]
    # Daily counters restart: the new day's P&L starts at zero whatever yesterday made.
    e = gw.risk.engine
    assert e.daily_pnl(e.account_index("ACC1")) == pytest.approx(0.0, abs=1e-6)


def test_a_gtc_order_survives_the_rollover_and_its_later_fill_lands_on_the_position(running) -> None:
    gw, sim = running.gw, running.sim
    c = running.client()
    e = gw.risk.engine
    a, i = e.account_index("ACC1"), e.instrument_index("JPM")
    c.new_order("G1", "ACC1", "JPM", "1", 100, 200.0, extra={59: "1"})
    _er(c, "G1", "0")
    venue_cl = next(o.cl_ord_id for o in sim.orders.values() if o.symbol == "JPM")
    sim.fill_open(venue_cl, 30)
    _er(c, "G1", "F", "1")
    res = gw.rollover("tester", "GTC carry")
    assert res["open_orders"] == 1 and res["day_orders_open"] == []
    e = gw.risk.engine
    assert e.position(a, i) == 30 and e.open_exposure(a, i)[0] == 70
    # Restart on the new day, then the venue fills the rest: the fill routes to the client's ClOrdID and moves
    # the carried position; the reservation is released.
    running.stop_gateway()
    gw = running.start_gateway()
    e = gw.risk.engine
    assert e.position(a, i) == 30 and e.open_exposure(a, i)[0] == 70
    sim.fill_open(venue_cl)
    fill = _er(c, "G1", "F", "2")
    assert float(fill[32]) == 70
    _wait = time.monotonic() + 10
    while e.position(a, i) != 100 and time.monotonic() < _wait:
        time.sleep(0.01)
    assert e.position(a, i) == 100 and e.open_exposure(a, i)[0] == 0 and e.open_order_count() == 0
    assert not gw.router.ledger.open


def test_a_venue_using_a_carried_orders_exec_id_again_for_another_order_moves_the_position(running) -> None:
    # FIX makes an ExecID unique within a trading day or a multi-day order's life: on its new day a venue may
    # number them from 1 again, and one of the new day's fills then bears a carried GTC order's ExecID.
    gw, sim = running.gw, running.sim
    c = running.client()
    c.new_order("G1", "ACC1", "JPM", "1", 100, 200.0, extra={59: "1"})
    _er(c, "G1", "0")
    venue_cl = next(o.cl_ord_id for o in sim.orders.values() if o.symbol == "JPM")
    sim.fill_open(venue_cl, 30)
    carried_exec_id = _er(c, "G1", "F", "1")[17]
    gw.rollover("tester", "ExecIDs numbered afresh")
    sim.number_exec_ids_afresh()
    e = gw.risk.engine
    a, i = e.account_index("ACC1"), e.instrument_index("AAPL")
    for n in range(1, 4):  # ack and fill of each: one of the fills takes the carried fill's ExecID
        c.new_order(f"N{n}", "ACC1", "AAPL", "1", 10, 190.0)
        _er(c, f"N{n}", "F", "2")
    fills = [f for f in sim.fills if f["cl_ord_id"] != venue_cl]
    assert carried_exec_id in {f["exec_id"] for f in fills}
    assert e.position(a, i) == 30  # every one of the new day's fills counted, none taken for a resend
    gw.journal.flush()
    assert sorted(f["symbol"] for f in query(gw.journal.path, "fills") if f["exec_id"] == carried_exec_id) == [
        "AAPL", "JPM"]  # the carried order's fill yesterday, another order's today


def test_a_day_order_still_open_at_the_rollover_is_reported_and_carried(running) -> None:
    gw = running.gw
    c = running.client()
    c.new_order("D1", "ACC1", "JPM", "2", 10, 200.0)  # no TimeInForce: a DAY order
    c.new_order("D2", "ACC1", "JPM", "1", 10, 199.0, extra={59: "0"})
    c.new_order("G2", "ACC1", "JPM", "1", 10, 198.0, extra={59: "1"})
    for cl in ("D1", "D2", "G2"):
        _er(c, cl, "0")
    res = gw.rollover("tester", "DAY orders")
    assert sorted(d["cl_ord_id"] for d in res["day_orders_open"]) == ["D1", "D2"]
    assert res["open_orders"] == 3
    assert gw.metrics.alerts.labels("DAY_ORDER_CARRIED")._value.get() == 1


def test_a_crash_between_the_two_renames_of_a_rollover_is_finished_at_start(running, monkeypatch) -> None:
    gw = running.gw
    c = running.client()
    c.new_order("K1", "ACC1", "AAPL", "1", 10, 190.0)
    _er(c, "K1", "F")
    c.new_order("K2", "ACC1", "JPM", "1", 10, 200.0, extra={59: "1"})
    _er(c, "K2", "0")
    day0 = gw.trading_day
    real = os.replace
    calls = []

    def crash_after_first(src, dst):  # the process dies right after the old day is archived
        calls.append(dst)
        if len(calls) == 2:
            raise SystemExit("simulated crash")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", crash_after_first)
    with pytest.raises(SystemExit):
        gw.rollover("tester", "crash in the middle")
    monkeypatch.setattr(os, "replace", real)
    state = gw.cfg.state_dir
    assert not (state / "events.log").exists() and (state / "events.log.next").exists()
    assert (gw.cfg.archive_dir / day0 / "events.log").exists()
    running.gw.router.lock.release() if running.gw.router.lock.locked() else None
    running.gw.rollover_lock.release() if running.gw.rollover_lock.locked() else None
    running.stop_gateway()
    gw = running.start_gateway()
    assert (state / "events.log").exists() and not (state / "events.log.next").exists()
    assert gw.trading_day != day0
    assert [o.cl_ord_id for o in gw.router.ledger.open.values()] == ["K2"]
    assert _positions(gw, "ACC1") == {"AAPL": 10}


def test_a_roll_that_fails_after_archiving_the_old_day_fails_the_log(tmp_path, monkeypatch) -> None:
    # Appending on would write into the archived day, which no start reads: the log must refuse instead.
    log = EventLog(tmp_path / "events.log")
    log.append(DayStart(prefix="G1-", day="20261202", ts=1))
    real, calls = os.replace, []

    def fail_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(5, "simulated I/O error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", fail_second)
    with pytest.raises(OSError):
        log.roll([DayStart(prefix="G1-", day="20261203", ts=2)], tmp_path / "archive" / "events.log")
    assert log.failed is not None
    monkeypatch.setattr(os, "replace", real)
    again = EventLog(tmp_path / "events.log")  # the restart finishes the roll
    assert [e.day for e in again.read_today()] == ["20261203"]


def test_an_empty_archive_folder_left_by_a_failed_roll_does_not_block_the_next(running) -> None:
    gw = running.gw
    (gw.cfg.archive_dir / gw.trading_day).mkdir(parents=True)
    res = gw.rollover("tester", "after a failed roll")
    assert (gw.cfg.archive_dir / res["previous_day"] / "events.log").exists()


def test_a_crash_before_the_old_day_is_archived_discards_the_half_written_new_day(tmp_path) -> None:
    log = EventLog(tmp_path / "events.log")
    log.append(DayStart(prefix="G1-", day="20261202", ts=1))
    log.append(Admin(action="x", ts=2))
    log.close()
    (tmp_path / "events.log.next").write_text('{"e":"INIT","day":"20261203","q":3}\n{"e":"PO')
    again = EventLog(tmp_path / "events.log")
    assert not (tmp_path / "events.log.next").exists()
    assert [e.q for e in again.read_today()] == [1, 2] and again.seq == 2


def test_sequence_numbers_of_events_run_on_across_days(tmp_path) -> None:
    log = EventLog(tmp_path / "events.log")
    for n in range(5):
        log.append(Admin(action=f"a{n}"))
    last = log.roll([DayStart(prefix="G1-", day="20261203"), Position(account="A", symbol="S", qty=1.0, avg=1.0)],
                    tmp_path / "archive" / "d" / "events.log")
    assert last == 7
    log.append(Admin(action="b"))
    log.close()
    assert [e.q for e in EventLog(tmp_path / "events.log").read_today()] == [6, 7, 8]
    assert EventLog(tmp_path / "events.log").seq == 8


def test_archived_days_beyond_retention_are_deleted(running) -> None:
    gw = running.gw
    running.stop_gateway()
    _with_trading_day(running, retention_days=2)
    gw = running.start_gateway()
    days = [gw.trading_day]
    for n in range(4):
        days.append(gw.rollover("tester", f"day {n}")["day"])
    archived = sorted(p.name for p in gw.cfg.archive_dir.iterdir())
    assert archived == days[-3:-1]
    # The journal still knows every day.
    gw.journal.flush()
    for d in days:
        query(gw.journal.path, "admin", day=d)
    st_days = [r["day"] for r in _days(gw)]
    assert st_days == days


def _days(gw) -> list[dict]:
    import sqlite3

    db = sqlite3.connect(gw.journal.path)
    try:
        return [{"day": d} for (d,) in db.execute("SELECT day FROM trading_days ORDER BY q")]
    finally:
        db.close()


# ------------------------------------------------------------------------------- start-of-day positions
POSITIONS = """account,symbol,quantity,average_price
ACC1,AAPL,49990,180.00
ACC1,CASH,1500000,
ACC2,MSFT,-100,400.00
"""


def test_start_of_day_positions_count_from_the_first_order(stack, tmp_path) -> None:
    path = tmp_path / "positions.csv"
    path.write_text(POSITIONS)
    _with_risk(stack, positions=path)
    stack.start_sim()
    gw = stack.start_gateway()
    e = gw.risk.engine
    a1, aapl = e.account_index("ACC1"), e.instrument_index("AAPL")
    assert e.position(a1, aapl) == 49990 and e.avg_cost(a1, aapl) == 180.0 and e.cash(a1) == 1_500_000
    assert e.position(e.account_index("ACC2"), e.instrument_index("MSFT")) == -100
    c = stack.client()
    # position_max is 50,000: 49,990 held, so a buy of 20 would breach it, the first order of the day.
    c.new_order("P1", "ACC1", "AAPL", "1", 20, 190.0)
    rej = _er(c, "P1", "8")
    assert "POSITION_LIMIT" in rej[58]
    c.new_order("P2", "ACC1", "AAPL", "2", 20, 190.0)  # selling reduces it: accepted and filled
    _er(c, "P2", "F")
    # The positions file is not read again on a restart: the day's events carry it.
    path.write_text("account,symbol,quantity,average_price\n")
    stack.stop_gateway()
    gw = stack.start_gateway()
    assert gw.risk.engine.position(a1, aapl) == 49970


def test_start_of_day_positions_count_in_exposure_and_var(stack, tmp_path) -> None:
    path = tmp_path / "positions.csv"
    path.write_text("account,symbol,quantity,average_price\nACC2,NVDA,4000,120.00\n")
    _with_risk(stack, positions=path)
    stack.start_sim()
    gw = stack.start_gateway()
    e = gw.risk.engine
    a2 = e.account_index("ACC2")
    assert e.account_gross(a2) == pytest.approx(4000 * 120.0)
    var, _ = e.var_es(a2)
    assert var > 0  # the book's VaR is the position's, before any order
    flat = gw.risk.engine.fresh()
    assert flat.var_es(a2)[0] == 0 or flat.var_es(a2)[0] < var


def test_after_a_rollover_the_positions_file_is_compared_with_what_was_carried(stack, tmp_path) -> None:
    path = tmp_path / "positions.csv"
    path.write_text("account,symbol,quantity,average_price\nACC1,AAPL,100,180.00\n")
    _with_risk(stack, positions=path)
    stack.start_sim()
    gw = stack.start_gateway()
    c = stack.client()
    c.new_order("C1", "ACC1", "AAPL", "1", 10, 190.0)
    _er(c, "C1", "F")
    res = gw.rollover("tester", "compare")
    assert res["sod_differences"] == [{"account": "ACC1", "symbol": "AAPL", "gateway": 110.0, "file": 100.0,
                                       "diff": 10.0}]
    assert gw.metrics.alerts.labels("SOD_POSITION_MISMATCH")._value.get() == 1
    e = gw.risk.engine
    assert e.position(e.account_index("ACC1"), e.instrument_index("AAPL")) == 110  # the carried book stands
    path.write_text("account,symbol,quantity,average_price\nACC1,AAPL,110,180.00\n")
    assert gw.rollover("tester", "agree")["sod_differences"] == []


@pytest.mark.parametrize("text,where", [
    ("account,symbol,qty,average_price\n", "line 1"),
    ("account,symbol,quantity,average_price\nACC1,AAPL,100,180\nACC9,AAPL,1,1\n", "line 3.account"),
    ("account,symbol,quantity,average_price\nACC1,ZZZ,100,180\n", "line 2.symbol"),
    ("account,symbol,quantity,average_price\nACC1,AAPL,ten,180\n", "line 2.quantity"),
    ("account,symbol,quantity,average_price\nACC1,AAPL,10,-1\n", "line 2.average_price"),
    ("account,symbol,quantity,average_price\nACC1,AAPL,10\n", "line 2"),
    ("account,symbol,quantity,average_price\nACC3,JPM,10,200\n", "line 2.symbol"),
    ("account,symbol,quantity,average_price\nACC1,AAPL,10,190\nACC1,AAPL,5,190\n", "line 3.symbol"),
])
def test_a_malformed_positions_file_is_refused_with_its_line_and_field(stack, tmp_path, text, where) -> None:
    path = tmp_path / "positions.csv"
    path.write_text(text)
    _with_risk(stack, positions=path)
    with pytest.raises(ConfigError) as err:
        stack.start_gateway(wait_venue=False)
    assert err.value.path == str(path) and err.value.field == where


def test_a_malformed_positions_file_at_a_rollover_keeps_the_carried_book(stack, tmp_path) -> None:
    path = tmp_path / "positions.csv"
    path.write_text("account,symbol,quantity,average_price\nACC1,AAPL,100,180.00\n")
    _with_risk(stack, positions=path)
    stack.start_sim()
    gw = stack.start_gateway()
    path.write_text("account,symbol,quantity,average_price\nACC1,AAPL,lots,180.00\n")
    res = gw.rollover("tester", "bad file")
    assert "line 2.quantity" in res["sod_file_error"]
    e = gw.risk.engine
    assert e.position(e.account_index("ACC1"), e.instrument_index("AAPL")) == 100


# ------------------------------------------------------------------------------------------- calendar
def test_day_labels_skip_weekends_and_never_repeat() -> None:
    fri_evening = dt.datetime(2026, 12, 4, 22, 0, tzinfo=dt.timezone.utc)
    assert td.next_day("20261204", fri_evening, "UTC") == "20261207"
    wed = dt.datetime(2026, 12, 2, 22, 0, tzinfo=dt.timezone.utc)
    assert td.next_day("20261202", wed, "UTC") == "20261203"
    assert td.next_day("20261203", wed, "UTC") == "20261204"  # on demand twice in a day: the day after
    after_midnight = dt.datetime(2026, 12, 3, 0, 5, tzinfo=dt.timezone.utc)
    assert td.next_day("20261202", after_midnight, "UTC") == "20261203"
    assert td.next_day("20261130", wed, "UTC") == "20261202"  # down for a day: today


def test_the_rollover_time_is_local_to_its_time_zone() -> None:
    now = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.timezone.utc)
    due = td.next_rollover(now, "17:30", "America/New_York")  # EDT: UTC-4
    assert due == dt.datetime(2026, 7, 1, 21, 30, tzinfo=dt.timezone.utc)
    winter = td.next_rollover(dt.datetime(2026, 12, 1, 23, 0, tzinfo=dt.timezone.utc), "17:30", "America/New_York")
    assert winter == dt.datetime(2026, 12, 2, 22, 30, tzinfo=dt.timezone.utc)


def test_scheduled_rollovers_skip_the_weekend() -> None:
    utc = dt.timezone.utc
    fri = dt.datetime(2026, 12, 4, 12, 0, tzinfo=utc)  # a Friday
    assert td.next_rollover(fri, "17:30", "UTC") == dt.datetime(2026, 12, 4, 17, 30, tzinfo=utc)
    after = dt.datetime(2026, 12, 4, 18, 0, tzinfo=utc)
    assert td.next_rollover(after, "17:30", "UTC") == dt.datetime(2026, 12, 7, 17, 30, tzinfo=utc)  # Monday
    # Friday evening's rollover begins Monday; with no rollover at the weekend Monday's ends Monday evening.
    assert td.next_day("20261204", after, "UTC") == "20261207"
    sunday = dt.datetime(2026, 12, 6, 20, 0, tzinfo=utc)
    assert td.last_rollover(sunday, "17:30", "UTC") == dt.datetime(2026, 12, 4, 17, 30, tzinfo=utc)
    # A morning schedule: Monday 02:00 ends Friday's day and begins Monday's.
    assert td.next_rollover(dt.datetime(2026, 12, 5, 1, 0, tzinfo=utc), "02:00", "UTC") == \
        dt.datetime(2026, 12, 7, 2, 0, tzinfo=utc)
    assert td.next_day("20261204", dt.datetime(2026, 12, 7, 2, 0, tzinfo=utc), "UTC") == "20261207"


def test_a_rollover_needs_who_and_why(running) -> None:
    with pytest.raises(ValueError):
        running.gw.rollover("", "no one")
    with pytest.raises(ValueError):
        running.gw.rollover("someone", "")



def test_settled_fills_leave_the_reconciliation_and_do_not_come_back_at_a_restart(running) -> None:
    gw = running.gw
    c = running.client()
    for n in range(10):
        c.new_order(f"S{n}", "ACC1", "AAPL", "1" if n % 2 else "2", 5, 190.0)
    for n in range(10):
        _er(c, f"S{n}", "F")
    assert gw.recon_feed.wait_seen("dropcopy", 10) and gw.recon_feed.wait_seen("gateway", 10)
    trade_date = next(iter(gw.recon.store.trade_dates()))
    assert gw.recon.reconciler(trade_date).message_counts() == {"gateway": 10, "dropcopy": 10}
    res = gw.rollover("tester", "recon memory")
    assert res["recon_pairs_forgotten"] == 10
    assert gw.recon.reconciler(trade_date).message_counts() == {"gateway": 0, "dropcopy": 0}
    running.stop_gateway()
    gw = running.start_gateway()
    assert gw.recon.reconciler(trade_date).message_counts() == {"gateway": 0, "dropcopy": 0}
    report = gw.recon.report(trade_date)  # reports are recomputed from the store: every fill is in them
    assert report.matched == 10 and report.open_breaks == 0


def test_a_session_that_starts_each_day_at_one_may_reuse_yesterdays_clordids(stack) -> None:
    acc = stack.cfg.acceptor
    clients = [c.model_copy(update={"reset_on_logon": True}) if c.sender_comp_id == "OMS1" else c
               for c in acc.clients]
    stack.cfg = stack.cfg.model_copy(update={"acceptor": acc.model_copy(update={"clients": clients})})
    stack.start_sim()
    gw = stack.start_gateway()
    c = stack.client()
    c.new_order("X1", "ACC1", "AAPL", "1", 5, 190.0)
    _er(c, "X1", "F")
    gw.rollover("tester", "ids policy")
    assert not gw.router.ledger.prior_ids
    c.new_order("X1", "ACC1", "AAPL", "2", 5, 190.0)  # the new day's X1: a new order, not a duplicate
    fills = c.wait_for(lambda m: m.get(11) == "X1" and m.get(150) == "F" and m.get(54) == "2")
    assert float(fills[32]) == 5


def test_a_venue_session_that_restarts_at_one_each_day_is_reset_at_the_rollover(stack) -> None:
    stack.cfg = stack.cfg.model_copy(update={"venue": stack.cfg.venue.model_copy(update={"rollover_reset": True})})
    stack.sim_cfg = stack.sim_cfg.model_copy(update={"reset_on_logon": True})  # the venue's side of the agreement
    stack.start_sim()
    gw = stack.start_gateway()
    c = stack.client()
    c.new_order("V1", "ACC1", "JPM", "1", 5, 200.0, extra={59: "1"})
    _er(c, "V1", "0")
    for n in range(3):
        c.new_order(f"V{n + 2}", "ACC1", "AAPL", "1", 5, 190.0)
        _er(c, f"V{n + 2}", "F")
    day0 = gw.trading_day
    before = gw.session_states()["FIXGW->VENUE"]["next_sender"]
    res = gw.rollover("tester", "venue resets daily")
    assert res["engines_restarted"] == ["venue"]
    assert gw.venue_logged_on.wait(15)
    st = gw.session_states()["FIXGW->VENUE"]
    assert before > 5 and st["next_sender"] <= 3  # the logon (and maybe a heartbeat) of the new day
    logs = list((gw.cfg.archive_dir / day0 / "fixlog" / "venue").glob("FIX.4.4-FIXGW-VENUE.messages*"))
    assert logs and "\x0135=D\x01" in logs[0].read_text()  # yesterday's venue messages went with yesterday
    # The carried GTC order still routes: the venue fills it on the new session.
    venue_cl = next(o.cl_ord_id for o in stack.sim.orders.values() if o.symbol == "JPM")
    stack.sim.fill_open(venue_cl)
    _er(c, "V1", "F", "2")
    c.new_order("V9", "ACC1", "AAPL", "2", 5, 190.0)
    _er(c, "V9", "F")
