"""Session schedules as pure functions (config.schedule): windows over midnight, trading days, time zones with
DST, the QuickFIX keys generated for each sequence_reset, and bad values named in the error."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.schedule import Schedule, describe, in_session, next_end, next_start, quickfix_settings
from config.settings import load_config, parse_config
from gateway.fix import settings as qs

UTC = dt.timezone.utc
ALL = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


# 2026-01-05 is a Monday; 2026-01-10 a Saturday.
MON, TUE, FRI, SAT, SUN = 5, 6, 9, 10, 11


def test_a_day_window_on_trading_days() -> None:
    s = Schedule(start="08:00", end="17:00")
    assert s.days == ["mon", "tue", "wed", "thu", "fri"]
    assert in_session(s, utc(2026, 1, MON, 8, 0))  # the start is inside
    assert in_session(s, utc(2026, 1, FRI, 16, 59, 59))
    assert not in_session(s, utc(2026, 1, FRI, 17, 0))  # the end is not
    assert not in_session(s, utc(2026, 1, MON, 7, 59, 59))
    assert not in_session(s, utc(2026, 1, SAT, 12, 0))  # not a trading day
    assert next_start(s, utc(2026, 1, FRI, 17, 0)) == utc(2026, 1, MON + 7, 8, 0)  # over the weekend
    assert next_end(s, utc(2026, 1, MON, 9, 0)) == utc(2026, 1, MON, 17, 0)  # the open window's end
    assert next_end(s, utc(2026, 1, SAT, 9, 0)) == utc(2026, 1, MON + 7, 17, 0)  # the next window's


def test_a_window_over_midnight_belongs_to_the_day_it_starts_on() -> None:
    s = Schedule(start="22:00", end="06:00")  # Monday to Friday nights
    assert in_session(s, utc(2026, 1, MON, 23, 0))
    assert in_session(s, utc(2026, 1, TUE, 5, 59, 59))  # Monday's window, on Tuesday morning
    assert not in_session(s, utc(2026, 1, TUE, 6, 0))
    assert not in_session(s, utc(2026, 1, MON, 5, 0))  # that would be Sunday's window
    assert in_session(s, utc(2026, 1, SAT, 5, 0))  # Friday's window runs into Saturday
    assert not in_session(s, utc(2026, 1, SAT, 22, 30))
    assert not in_session(s, utc(2026, 1, SUN, 23, 0))
    assert next_end(s, utc(2026, 1, MON, 23, 0)) == utc(2026, 1, TUE, 6, 0)
    assert next_start(s, utc(2026, 1, TUE, 5, 0)) == utc(2026, 1, TUE, 22, 0)
    assert next_start(s, utc(2026, 1, SAT, 5, 0)) == utc(2026, 1, MON + 7, 22, 0)


def test_times_are_local_to_the_zone_and_follow_dst() -> None:
    s = Schedule(start="08:00", end="16:30", time_zone="Europe/London")
    # Winter: GMT = UTC. Summer: BST = UTC+1, so 08:00 London is 07:00 UTC.
    assert not in_session(s, utc(2026, 1, MON, 7, 30))
    assert in_session(s, utc(2026, 7, 15, 7, 30))  # a Wednesday
    assert not in_session(s, utc(2026, 7, 15, 15, 45))
    # The clocks go forward on Sunday 29 March 2026: Friday's window ends in GMT, Monday's starts in BST.
    assert next_end(s, utc(2026, 3, 27, 12, 0)) == utc(2026, 3, 27, 16, 30)
    assert next_start(s, utc(2026, 3, 27, 17, 0)) == utc(2026, 3, 30, 7, 0)
    ny = Schedule(start="09:30", end="16:00", time_zone="America/New_York")  # DST from Sunday 8 March 2026
    assert next_start(ny, utc(2026, 3, 6, 22, 0)) == utc(2026, 3, 9, 13, 30)
    assert next_end(ny, utc(2026, 3, 6, 15, 0)) == utc(2026, 3, 6, 21, 0)


def test_an_over_midnight_window_in_a_zone_far_from_utc() -> None:
    # Sunday 17:00 to Friday 17:00 New York, one window a day, each ending at 16:59 the next day (FX style).
    s = Schedule(start="17:00", end="16:59", days=["sun", "mon", "tue", "wed", "thu"], time_zone="America/New_York")
    assert in_session(s, utc(2026, 1, SUN, 22, 30))  # Sunday 17:30 New York
    assert in_session(s, utc(2026, 1, FRI, 21, 58))  # Friday 16:58: Thursday's window
    assert not in_session(s, utc(2026, 1, FRI, 22, 0))  # Friday 17:00: Friday is not a trading day
    assert not in_session(s, utc(2026, 1, SAT, 12, 0))


def test_describe_gives_the_state_for_status() -> None:
    s = Schedule(start="22:00", end="06:00", days=ALL, sequence_reset="weekly")
    d = describe(s, utc(2026, 1, MON, 23, 0))
    assert d["open"] is True
    assert d["next_end"] == "2026-01-06T06:00:00+00:00" and d["next_start"] == "2026-01-06T22:00:00+00:00"
    assert (d["time_zone"], d["sequence_reset"]) == ("UTC", "weekly")


# ------------------------------------------------------------------------------------------ QuickFIX keys
def test_daily_gives_start_and_end_times_in_utc() -> None:
    assert quickfix_settings(Schedule(start="08:00", end="17:00:30"), utc(2026, 1, MON, 12)) == {
        "StartTime": "08:00:00", "EndTime": "17:00:30"}
    london = Schedule(start="08:00", end="16:30", time_zone="Europe/London")
    assert quickfix_settings(london, utc(2026, 1, MON, 12)) == {"StartTime": "08:00:00", "EndTime": "16:30:00"}
    assert quickfix_settings(london, utc(2026, 7, 15, 12)) == {"StartTime": "07:00:00", "EndTime": "15:30:00"}
    # Generated on the Friday before the clocks change, outside the window: the offsets of Monday's window.
    assert quickfix_settings(london, utc(2026, 3, 27, 18)) == {"StartTime": "07:00:00", "EndTime": "15:30:00"}
    tokyo = Schedule(start="08:00", end="15:00", time_zone="Asia/Tokyo")
    assert quickfix_settings(tokyo, utc(2026, 1, MON, 3)) == {"StartTime": "23:00:00", "EndTime": "06:00:00"}


def test_weekly_spans_first_to_last_trading_day() -> None:
    s = Schedule(start="08:00", end="17:00", time_zone="America/New_York", sequence_reset="weekly")
    assert quickfix_settings(s, utc(2026, 1, TUE, 12)) == {
        "StartDay": "Mon", "StartTime": "13:00:00", "EndDay": "Fri", "EndTime": "22:00:00"}
    # Nights Sunday to Thursday: the week starts Sunday evening and its last window ends on Friday.
    fx = Schedule(start="22:00", end="21:00", days=["sun", "mon", "tue", "wed", "thu"], sequence_reset="weekly")
    assert quickfix_settings(fx, utc(2026, 1, TUE, 12)) == {
        "StartDay": "Sun", "StartTime": "22:00:00", "EndDay": "Fri", "EndTime": "21:00:00"}
    # Every day, in Tokyo: Monday 08:00 JST is Sunday 23:00 UTC, Sunday 17:00 JST is Sunday 08:00 UTC.
    tokyo = Schedule(start="08:00", end="17:00", days=ALL, time_zone="Asia/Tokyo", sequence_reset="weekly")
    assert quickfix_settings(tokyo, utc(2026, 1, TUE, 12)) == {
        "StartDay": "Sun", "StartTime": "23:00:00", "EndDay": "Sun", "EndTime": "08:00:00"}


def test_never_is_a_non_stop_session() -> None:
    s = Schedule(start="08:00", end="17:00", sequence_reset="never")
    assert quickfix_settings(s, utc(2026, 1, SAT, 12)) == {"NonStopSession": "Y"}


def test_render_writes_the_schedule_instead_of_non_stop() -> None:
    keys = quickfix_settings(Schedule(start="08:00", end="17:00"), utc(2026, 1, MON, 12))
    text = qs.render("acceptor", [qs.SessionSpec("FIXGW", "OMS1", schedule=keys), qs.SessionSpec("FIXGW", "OMS2")],
                     Path("/tmp/store"), None, accept_port=9000)
    blocks = text.split("[SESSION]")
    assert "NonStopSession=Y" in blocks[0]  # [DEFAULT]: every session without a schedule
    assert "NonStopSession=N\nStartTime=08:00:00\nEndTime=17:00:00\n" in blocks[1]
    assert "NonStopSession" not in blocks[2] and "StartTime" not in blocks[2]
    never = qs.render("acceptor", [qs.SessionSpec("FIXGW", "OMS1", schedule={"NonStopSession": "Y"})],
                      Path("/tmp/store"), None).split("[SESSION]")[1]
    assert "NonStopSession=Y" in never and "StartTime" not in never


# ------------------------------------------------------------------------------------------ configuration
BASE = {"acceptor": {"port": 9000, "clients": [{"sender_comp_id": "OMS1", "accounts": ["A"]}]},
        "venue": {"port": 9001, "sender_comp_id": "FIXGW", "target_comp_id": "VENUE"}}


def _with(schedule: dict) -> dict:
    client = {**BASE["acceptor"]["clients"][0], "schedule": schedule}  # type: ignore[index]
    return {**BASE, "acceptor": {**BASE["acceptor"], "clients": [client]}}  # type: ignore[dict-item]


@pytest.mark.parametrize("schedule, field, reason", [
    ({"start": "25:00", "end": "17:00"}, "acceptor.clients[0].schedule.start", "'25:00' is not a time of day"),
    ({"start": "08:00", "end": "5pm"}, "acceptor.clients[0].schedule.end", "'5pm' is not a time of day"),
    ({"start": "08:00", "end": "17:00", "days": ["mon", "funday"]}, "acceptor.clients[0].schedule.days[1]",
     "'mon'"),
    ({"start": "08:00", "end": "17:00", "days": []}, "acceptor.clients[0].schedule.days", "at least 1"),
    ({"start": "08:00", "end": "17:00", "days": ["mon", "mon"]}, "acceptor.clients[0].schedule.days",
     "mon listed more than once"),
    ({"start": "08:00", "end": "17:00", "time_zone": "Mars/Olympus"}, "acceptor.clients[0].schedule.time_zone",
     "unknown time zone 'Mars/Olympus'"),
    ({"start": "08:00", "end": "17:00", "sequence_reset": "hourly"},
     "acceptor.clients[0].schedule.sequence_reset", "'daily', 'weekly' or 'never'"),
    ({"start": "08:00", "end": "08:00:00"}, "acceptor.clients[0].schedule", "start and end are both 08:00"),
    ({"start": "08:00", "end": "17:00", "timezone": "UTC"}, "acceptor.clients[0].schedule.timezone",
     "unknown setting"),
    ({"end": "17:00"}, "acceptor.clients[0].schedule.start", "Field required"),
])
def test_bad_schedules_name_the_field_and_why(tmp_path: Path, schedule: dict, field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(_with(schedule), tmp_path / "gw.toml")
    text = str(e.value)
    assert f"{field}:" in text and reason in text, text


def test_the_trading_days_zone_is_checked_the_same_way(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({**BASE, "trading_day": {"time_zone": "Europe/Atlantis"}}, tmp_path / "gw.toml")
    assert "trading_day.time_zone:" in str(e.value) and "unknown time zone 'Europe/Atlantis'" in str(e.value)


def test_the_documented_toml_loads(tmp_path: Path) -> None:
    p = tmp_path / "gw.toml"
    p.write_text('''
[acceptor]
port = 9000

[[acceptor.clients]]
sender_comp_id = "OMS1"
accounts = ["ACC1"]
schedule = { start = "07:30", end = "17:30", time_zone = "Europe/London" }

[venue]
port = 9001
sender_comp_id = "FIXGW"
target_comp_id = "VENUE"

[venue.schedule]
start = "22:00"
end = "21:00"
days = ["sun", "mon", "tue", "wed", "thu"]
time_zone = "America/New_York"
sequence_reset = "weekly"
''')
    cfg = load_config(p)
    c = cfg.acceptor.clients[0].schedule
    assert c is not None and (c.start, c.days, c.sequence_reset) == ("07:30", ["mon", "tue", "wed", "thu", "fri"],
                                                                     "daily")
    v = cfg.venue.schedule
    assert v is not None and v.overnight and v.time_zone == "America/New_York" and v.sequence_reset == "weekly"
    assert cfg.dropcopy is None or cfg.dropcopy.schedule is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        in_session(Schedule(start="08:00", end="17:00"), dt.datetime(2026, 1, 5, 9))
