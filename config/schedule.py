"""When a FIX session may be up: a daily window in a time zone, on trading days, and when MsgSeqNum restarts.

A `Schedule` is part of a session's counterparty agreement (`schedule` under a client, `[venue]` or `[dropcopy]`):

    [acceptor.clients.schedule]
    start = "08:00"                  # local time in time_zone, HH:MM or HH:MM:SS
    end = "17:30"                    # end < start: the window runs over midnight (it belongs to the day it starts)
    days = ["mon", "tue", "wed", "thu", "fri"]   # trading days: the days a window *starts* on
    time_zone = "Europe/London"      # IANA name
    sequence_reset = "daily"         # daily | weekly | never

Two parts enforce it. QuickFIX gets StartTime/EndTime (and StartDay/EndDay) from `quickfix_settings`: it logs
the session out outside that range, refuses a Logon outside it, and resets the store (MsgSeqNum 1, store files
reset) when a new range begins. The gateway's `ScheduleKeeper` (gateway.fix.schedule) enforces what QuickFIX
cannot express: the trading days of a daily schedule, and the daily window of a weekly or never-resetting one.

Everything here is a pure function of the schedule and a time: no clocks, no I/O.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
QF_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # QuickFIX reads the first two letters
WEEKDAYS: list[Day] = ["mon", "tue", "wed", "thu", "fri"]


def _known_zone(v: str) -> str:
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r} (an IANA name such as Europe/London)") from None
    return v


TimeZone = Annotated[str, AfterValidator(_known_zone)]  # an IANA zone name, checked when the config loads


def _parse_time(v: str) -> dt.time:
    parts = v.split(":")
    return dt.time(*(int(p) for p in parts))


class Schedule(BaseModel):
    """A session's daily window on trading days, in a time zone, and its sequence-number reset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str
    end: str
    days: Annotated[list[Day], Field(min_length=1)] = Field(default_factory=lambda: list(WEEKDAYS))
    time_zone: TimeZone = "UTC"
    sequence_reset: Literal["daily", "weekly", "never"] = "daily"

    @field_validator("start", "end")
    @classmethod
    def _time_of_day(cls, v: str) -> str:
        parts = v.split(":")
        ok = len(parts) in (2, 3) and all(len(p) == 2 and p.isdigit() for p in parts)
        if ok:
            h, m, s = (int(p) for p in (parts + ["00"])[:3])
            ok = h < 24 and m < 60 and s < 60
        if not ok:
            raise ValueError(f"{v!r} is not a time of day: use HH:MM or HH:MM:SS (24-hour, e.g. 08:00 or 17:30:00)")
        return v

    @field_validator("days")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        repeated = sorted({d for d in v if v.count(d) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once")
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> "Schedule":
        if self.start_time == self.end_time:
            raise ValueError(f"start and end are both {self.start}: a window needs an end (for a session that "
                             "never closes, give no schedule)")
        return self

    @property
    def start_time(self) -> dt.time:
        return _parse_time(self.start)

    @property
    def end_time(self) -> dt.time:
        return _parse_time(self.end)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def overnight(self) -> bool:
        """The window runs over midnight: it starts on a trading day and ends the next morning."""
        return self.end_time < self.start_time

    @property
    def weekdays(self) -> frozenset[int]:
        return frozenset(DAYS.index(d) for d in self.days)


# ------------------------------------------------------------------------------------------------ periods
def _utc(t: dt.datetime) -> dt.datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{t!r} is a naive datetime: give an aware one (UTC)")
    return t.astimezone(dt.timezone.utc)


def _at(s: Schedule, day: dt.date, t: dt.time) -> dt.datetime:
    """`t` on local date `day` in the schedule's zone, as UTC (a wall time skipped by DST moves forward)."""
    return dt.datetime.combine(day, t, tzinfo=s.zone).astimezone(dt.timezone.utc)


def _windows(s: Schedule, now_utc: dt.datetime, back: int = 2, ahead: int = 9) -> list[tuple[dt.datetime, dt.datetime]]:
    """The daily windows (start, end) in UTC of the trading days around `now_utc`, in order."""
    today = now_utc.astimezone(s.zone).date()
    out = []
    for k in range(-back, ahead):
        d = today + dt.timedelta(days=k)
        if d.weekday() in s.weekdays:
            end_day = d + dt.timedelta(days=1) if s.overnight else d
            out.append((_at(s, d, s.start_time), _at(s, end_day, s.end_time)))
    return out


def current_window(s: Schedule, now_utc: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The open window (start, end) in UTC, or None when the session is outside its schedule."""
    now = _utc(now_utc)
    for start, end in _windows(s, now):
        if start <= now < end:
            return start, end
    return None


def in_session(s: Schedule, now_utc: dt.datetime) -> bool:
    """Is the daily window open at `now_utc`, on a trading day (the day the window started on)?

    Local wall times are compared in the schedule's zone, so the window follows DST. The start is inside the
    window, the end is not.
    """
    now = _utc(now_utc)
    local = now.astimezone(s.zone)
    t, day = local.time().replace(tzinfo=None), local.weekday()
    start, end = s.start_time, s.end_time
    if not s.overnight:
        return day in s.weekdays and start <= t < end
    return (day in s.weekdays and t >= start) or ((day - 1) % 7 in s.weekdays and t < end)


def next_start(s: Schedule, now_utc: dt.datetime) -> dt.datetime:
    """The next time (UTC, after `now_utc`) a window opens."""
    now = _utc(now_utc)
    return next(start for start, _ in _windows(s, now) if start > now)


def next_end(s: Schedule, now_utc: dt.datetime) -> dt.datetime:
    """The end (UTC) of the open window, or of the next one when the session is outside its schedule."""
    now = _utc(now_utc)
    return next(end for _, end in _windows(s, now) if end > now)


def describe(s: Schedule, now_utc: dt.datetime) -> dict[str, object]:
    """The schedule's state for `status`: open or not, the next boundaries (ISO UTC), the agreement."""
    return {"open": in_session(s, now_utc),
            "next_start": next_start(s, now_utc).isoformat(),
            "next_end": next_end(s, now_utc).isoformat(),
            "window": f"{s.start}-{s.end}", "days": list(s.days),
            "time_zone": s.time_zone, "sequence_reset": s.sequence_reset}


# ------------------------------------------------------------------------------------------------ QuickFIX
def _week_span(s: Schedule) -> tuple[int, int]:
    """(first trading day, days from it to the last one) of the week: the week starts after its longest gap."""
    days = sorted(s.weekdays)
    if len(days) == 7:
        return 0, 6
    gaps = [((days[(i + 1) % len(days)] - d) % 7 or 7, i) for i, d in enumerate(days)]
    _, i = max(gaps)  # the longest run of non-trading days follows days[i]
    first = days[(i + 1) % len(days)]
    return first, (days[i] - first) % 7


def _hms(t: dt.datetime) -> str:
    return t.strftime("%H:%M:%S")


def quickfix_settings(s: Schedule, now: dt.datetime) -> dict[str, str]:
    """The QuickFIX session settings for `s`, in UTC (QuickFIX C++ 1.16 has no time zone setting).

    * daily: StartTime/EndTime. QuickFIX logs the session out outside the window, refuses Logons outside it and
      resets the store (MsgSeqNum 1) when a new window begins. It cannot skip non-trading days: the gateway
      keeps the session disabled on those.
    * weekly: StartDay/StartTime to EndDay/EndTime, from the first to the last trading day (the week is one
      period: sequence numbers carry across nights; the gateway closes the session between daily windows).
    * never: NonStopSession=Y: no reset ever; the gateway enforces the window and the trading days.

    The local times are converted at the UTC offsets of the window open at `now` (or the next one). DST: the
    generated UTC times are right until the zone's offset changes; QuickFIX then opens, closes and resets an
    hour off until the gateway restarts and regenerates them. The gateway's keeper always follows the zone.
    """
    if s.sequence_reset == "never":
        return {"NonStopSession": "Y"}
    now = _utc(now)
    if s.sequence_reset == "daily":
        start, end = current_window(s, now) or (next_start(s, now), next_end(s, now))
        if _hms(start) == _hms(end):  # a DST night made the window exactly 24 hours: QuickFIX would never close it
            end -= dt.timedelta(seconds=1)
        return {"StartTime": _hms(start), "EndTime": _hms(end)}
    first, span = _week_span(s)
    end_offset = span + (1 if s.overnight else 0)
    today = now.astimezone(s.zone).date()
    for k in range(-8, 9):
        d = today + dt.timedelta(days=k)
        if d.weekday() != first:
            continue
        start, end = _at(s, d, s.start_time), _at(s, d + dt.timedelta(days=end_offset), s.end_time)
        if end > now:
            break
    return {"StartDay": QF_DAYS[start.weekday()], "StartTime": _hms(start),
            "EndDay": QF_DAYS[end.weekday()], "EndTime": _hms(end)}
