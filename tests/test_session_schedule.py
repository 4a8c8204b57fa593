"""Session schedules over real QuickFIX sessions on 127.0.0.1: a client session closes at the end of its
window, its Logons are refused until the next window starts, and it then logs on with sequence numbers reset
to 1; the gateway's ScheduleKeeper (with an injected clock) keeps a session down on a non-trading day, leaves an
operator's logout alone, and holds the venue session out of hours."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import threading
from typing import Iterator

import pytest
import quickfix as fix

from config.schedule import Schedule, in_session, quickfix_settings
from gateway.fix import settings as qs
from gateway.fix.application import App
from gateway.fix.schedule import OUTSIDE, ScheduleKeeper
from tests.gwtest import wait_until
from tests.rawfix import RawSession

S1 = "FIXGW->OMS1"
UTC = dt.timezone.utc
ALL = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _hms(t: dt.datetime) -> str:
    return t.strftime("%H:%M:%S")


def _with_schedule(stack, schedule: Schedule, client: str = "OMS1") -> None:
    acc = stack.cfg.acceptor
    clients = [c.model_copy(update={"schedule": schedule}) if c.sender_comp_id == client else c for c in acc.clients]
    stack.cfg = stack.cfg.model_copy(update={"acceptor": acc.model_copy(update={"clients": clients})})


@contextlib.contextmanager
def _housekeeping(gw) -> Iterator[None]:
    """What the daemon's loop does: gw.housekeeping() every 200 ms (it ticks the keeper once a second)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.2):
            gw.housekeeping()

    t = threading.Thread(target=loop, name="housekeeping", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(10)


class Clock:
    """The keeper's idea of the time, moved by the test."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def _event_log(stack, key_file: str) -> str:
    p = stack.cfg.state_dir / "fixlog" / "clients" / key_file
    return p.read_text() if p.exists() else ""


def _scheduled_client(stack, monkeypatch, keys: dict[str, str], **kw):
    """An OMS whose own QuickFIX runs the same schedule: the agreement binds both sides, so it too starts the
    new window at MsgSeqNum 1 (OmsClient builds its SessionSpec itself: give it the schedule keys)."""
    with monkeypatch.context() as m:
        m.setattr(qs, "SessionSpec", functools.partial(qs.SessionSpec, schedule=keys))
        return stack.client(**kw)


# ------------------------------------------------------------------------------------------ QuickFIX's window
def test_a_client_window_ends_refuses_logons_and_starts_again_at_seq_1(stack, monkeypatch) -> None:
    """Daily, every day, UTC: the window ends ~5 s from now and the next one starts ~9 s from now (over midnight
    by the clock: start > end), so the session is inside it now."""
    stack.start_sim()
    now = dt.datetime.now(UTC)
    end = dt.datetime.fromtimestamp(math.ceil(now.timestamp()) + 5, UTC)
    start = end + dt.timedelta(seconds=4)
    schedule = Schedule(start=_hms(start), end=_hms(end), days=ALL)
    assert in_session(schedule, now) and not in_session(schedule, end) and in_session(schedule, start)
    _with_schedule(stack, schedule)
    gw = stack.start_gateway()
    text = (stack.cfg.state_dir / "quickfix" / "clients.cfg").read_text()
    assert f"StartTime={_hms(start)}\nEndTime={_hms(end)}" in text
    with _housekeeping(gw):
        oms = _scheduled_client(stack, monkeypatch, quickfix_settings(schedule, now))
        oms.new_order("SC1", "ACC1", "AAPL", "1", 10, 190.0)
        oms.wait_for(lambda m: m.get(35) == "8" and m.get(11) == "SC1" and m.get(150) == "F")
        before = gw.session_states()[S1]
        assert before["logged_on"] and before["next_target"] > 2 and before["next_sender"] > 2
        assert before["schedule"]["open"] is True and before["schedule"]["enabled"] is True

        # The end: logged out, by QuickFIX's time range or the keeper, whichever sees it first.
        with oms._cond:
            assert oms._cond.wait_for(lambda: not oms.logged_on, (end - dt.datetime.now(UTC)).total_seconds() + 3)
        assert dt.datetime.now(UTC) >= end - dt.timedelta(milliseconds=50), "logged out before the window ended"

        # Outside the window: the gateway's session is disabled, its store reset, and a Logon is refused,
        # even one asking for a sequence reset.
        wait_until(lambda: gw.session_states()[S1]["schedule"]["enabled"] is False, 3, "keeper disabled S1")
        # QuickFIX resets the store on its next timer tick after the end: within a second.
        wait_until(lambda: (gw.session_states()[S1]["next_sender"], gw.session_states()[S1]["next_target"]) == (1, 1),
                   3, "the store reset at the window's end")
        raw = RawSession(stack.cfg.acceptor.port, "OMS1")
        try:
            with pytest.raises(ConnectionError):
                raw.logon(reset=True)
        finally:
            raw.sock.close()
        assert not any(m.get(35) == b"A" for m in raw.received)
        assert dt.datetime.now(UTC) < start, "the probe ran too late to prove anything"
        closed = gw.session_states()[S1]
        assert closed["schedule"]["open"] is False and not closed["logged_on"]
        # (The refused Logon's ResetSeqNumFlag may have cost a Logout at MsgSeqNum 1 since: the new window resets.)
        assert not oms.logged_on

        # The start: the keeper enables the session and the client logs on again, both sides at MsgSeqNum 1.
        n_admin = len(oms.admin_received)
        assert oms.wait_logon((start - dt.datetime.now(UTC)).total_seconds() + 6)
        assert dt.datetime.now(UTC) >= start
        logon = oms.wait_for(lambda m: m.get(35) == "A", start=n_admin, admin=True, timeout=1)
        assert logon[34] == "1"
        after = gw.session_states()[S1]
        assert after["logged_on"] and after["schedule"]["open"] is True and after["schedule"]["enabled"] is True
        assert (after["next_sender"], after["next_target"]) == (2, 2)
        oms.new_order("SC2", "ACC1", "AAPL", "1", 10, 190.0)
        oms.wait_for(lambda m: m.get(35) == "8" and m.get(11) == "SC2" and m.get(150) == "F")
        assert gw.session_states()["FIXGW->OMS2"].get("schedule") is None  # only OMS1 has a schedule


# ------------------------------------------------------------------------------------------ the gateway's keeper
def _all_day_today(days: list[str], sequence_reset: str = "daily") -> Schedule:
    """A window around the real time of day (QuickFIX lets it be), on `days` only."""
    now = dt.datetime.now(UTC)
    return Schedule(start=_hms(now - dt.timedelta(hours=1)), end=_hms(now + dt.timedelta(hours=1)), days=days,
                    sequence_reset=sequence_reset)


def _on(weekday: int) -> dt.datetime:
    """The real time of day on a past date with that weekday (0 Monday ... 6 Sunday)."""
    now = dt.datetime.now(UTC)
    return now - dt.timedelta(days=7 + (now.weekday() - weekday) % 7)


def test_the_keeper_keeps_a_session_down_on_a_non_trading_day(stack) -> None:
    stack.start_sim()
    _with_schedule(stack, _all_day_today(["mon", "tue", "wed", "thu", "fri"]))
    gw = stack.start_gateway()
    clock = Clock(_on(6))  # a Sunday: the window's time, not its day (nor Saturday's, were it over midnight)
    gw.schedules.clock = clock
    assert gw.schedules.tick() == [(S1, False)]
    assert gw.schedules.tick() == []  # once is enough
    status = gw.session_states()[S1]["schedule"]
    assert status["open"] is False and status["enabled"] is False and status["held_by_schedule"] is True

    oms = stack.client(logon=False)  # it keeps trying (ReconnectInterval=1)
    log_file = "FIX.4.4-FIXGW-OMS1.event.current.log"
    wait_until(lambda: "Session is not enabled for logon" in _event_log(stack, log_file), 6, "a refused logon")
    assert not oms.logged_on

    clock.now = _on(2)  # a Wednesday
    assert gw.schedules.tick() == [(S1, True)]
    assert oms.wait_logon(10)
    status = gw.session_states()[S1]["schedule"]
    assert status["open"] is True and status["enabled"] is True and status["logged_on"] is True
    other = stack.client("OMS2")  # sessions without a schedule never notice
    assert other.logged_on

    # Back to Sunday while logged on: the client is logged out with the reason, and stays out.
    clock.now = _on(6)
    n_admin = len(oms.admin_received)
    assert gw.schedules.tick() == [(S1, False)]
    bye = oms.wait_for(lambda m: m.get(35) == "5", start=n_admin, admin=True)
    assert bye.get(58) == OUTSIDE
    with oms._cond:
        assert oms._cond.wait_for(lambda: not oms.logged_on, 5)
    assert other.logged_on


def test_the_keeper_leaves_an_operators_logout_alone(stack) -> None:
    stack.start_sim()
    _with_schedule(stack, _all_day_today(ALL, sequence_reset="never"))
    gw = stack.start_gateway()
    clock = Clock(dt.datetime.now(UTC))
    gw.schedules.clock = clock
    oms = stack.client()
    assert gw.schedules.tick() == []  # inside, enabled: nothing to do
    from gateway.control.admin import session_switch

    session_switch(gw, "logout", S1, "alice", "client asked for a break")
    with oms._cond:
        assert oms._cond.wait_for(lambda: not oms.logged_on, 5)
    assert gw.schedules.tick() == []  # not the keeper's to lift
    assert gw.session_states()[S1]["schedule"]["held_by_schedule"] is False
    clock.now = clock.now + dt.timedelta(hours=12)  # out of hours: already down, nothing to do
    assert gw.schedules.tick() == []
    clock.now = clock.now + dt.timedelta(hours=12)  # the next window: still the operator's hold
    assert gw.schedules.tick() == []
    assert fix.Session.lookupSession(gw.session_ids()[S1][1]).isEnabled() is False
    session_switch(gw, "logon", S1, "alice", "break over")
    assert oms.wait_logon(10)


def test_the_keeper_holds_the_venue_session_out_of_hours(stack) -> None:
    """An initiator: disabled, QuickFIX stops logging on; enabled, it reconnects (the venue's daily window of a
    weekly agreement)."""
    stack.start_sim()
    now = dt.datetime.now(UTC)
    schedule = Schedule(start=_hms(now - dt.timedelta(hours=1)), end=_hms(now + dt.timedelta(hours=1)), days=ALL,
                        sequence_reset="never")
    stack.cfg = stack.cfg.model_copy(update={"venue": stack.cfg.venue.model_copy(update={"schedule": schedule})})
    gw = stack.start_gateway()
    venue_key = f"{stack.cfg.venue.sender_comp_id}->{stack.cfg.venue.target_comp_id}"
    assert set(gw.schedules.sessions) == {venue_key}
    clock = Clock(now + dt.timedelta(hours=12))
    gw.schedules.clock = clock
    assert gw.schedules.tick() == [(venue_key, False)]
    wait_until(lambda: not gw.venue_logged_on.is_set(), 10, "venue logged out")
    clock.now = now
    assert gw.schedules.tick() == [(venue_key, True)]
    assert gw.venue_logged_on.wait(15), "the venue session did not log on again"


def test_a_keeper_survives_a_session_that_is_not_running() -> None:
    """No engine (yet, or stopped for a rollover): nothing to do, and no exception for the housekeeping loop."""
    s = Schedule(start="08:00", end="17:00")
    keeper = ScheduleKeeper({"X->Y": (s, fix.SessionID("FIX.4.4", "X", "Y"))},
                            clock=lambda: dt.datetime(2026, 1, 10, 12, tzinfo=UTC))
    assert keeper.tick() == []
    row = keeper.status()["X->Y"]
    assert row["open"] is False and row["enabled"] is None and row["logged_on"] is False
