"""The gateway's half of session schedules (config.schedule): what QuickFIX's StartTime/EndTime cannot express.

QuickFIX C++ 1.16 knows one daily time range, or one weekly range, in UTC. A daily schedule on Monday to
Friday only, or the nightly close of a weekly or never-resetting one, is enforced here: `ScheduleKeeper.tick()`
(once a second, from the gateway's housekeeping) disables a session outside its schedule with
Session.logout(reason) — an acceptor session then refuses Logons, an initiator stops logging on — and enables
it again with Session.logon() when its window opens.

The keeper only lifts what it imposed: a session an operator (`fixgw admin logout`) or a rollover holds out
stays out until they release it. Sessions are looked up on every tick, so an engine restarted by a rollover is
picked up.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any, Callable

import quickfix as fix

from config.schedule import Schedule, describe, in_session, next_start, quickfix_settings

log = logging.getLogger("fixgw.schedule")

OUTSIDE = "outside the session schedule"
# A daily schedule's window is gated by QuickFIX itself (StartTime): the keeper lifts its hold this much early,
# so the window opens on QuickFIX's second and not up to a tick later. Weekly and never: exactly at the start.
LEAD_S = 1.5


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def qs_schedule_settings(schedule: Schedule | None, now: dt.datetime | None = None) -> dict[str, str] | None:
    """The QuickFIX keys of a session's schedule (gateway.fix.settings.SessionSpec.schedule); None: non-stop."""
    if schedule is None:
        return None
    return quickfix_settings(schedule, now or _utc_now())


def scheduled_sessions(cfg: Any, session_ids: dict[str, tuple[str, fix.SessionID]]
                       ) -> dict[str, tuple[Schedule, fix.SessionID]]:
    """The sessions of `session_ids` (Gateway.session_ids()) whose policy in `cfg` has a schedule."""
    out: dict[str, tuple[Schedule, fix.SessionID]] = {}
    for key, (role, sid) in session_ids.items():
        if role == "client":
            policy = cfg.client(sid.getTargetCompID().getValue(), sid.getSenderCompID().getValue())
        elif role == "venue":
            policy = cfg.venue
        elif role == "marketdata":
            policy = cfg.marketdata
        else:
            policy = cfg.dropcopy
        schedule = getattr(policy, "schedule", None)
        if schedule is not None:
            out[key] = (schedule, sid)
    return out


class ScheduleKeeper:
    def __init__(self, sessions: dict[str, tuple[Schedule, fix.SessionID]],
                 clock: Callable[[], dt.datetime] = _utc_now, lead_s: float = LEAD_S) -> None:
        self.sessions = dict(sessions)
        self.clock = clock  # replaceable: tests move the keeper's idea of time
        self.lead = dt.timedelta(seconds=lead_s)
        self._held: set[str] = set()  # sessions this keeper disabled, and only those it enables again
        self._lock = threading.Lock()

    def tick(self) -> list[tuple[str, bool]]:
        """Enable or disable each session as its schedule says now; returns the changes (key, enabled)."""
        if not self.sessions:
            return []
        now = self.clock()
        changes: list[tuple[str, bool]] = []
        with self._lock:
            for key, (schedule, sid) in self.sessions.items():
                try:
                    change = self._apply(key, schedule, sid, now)
                except Exception:  # never let one session's trouble stop the housekeeping loop
                    log.exception("session schedule check failed", extra={"session": key})
                    continue
                if change is not None:
                    changes.append((key, change))
        return changes

    def _apply(self, key: str, schedule: Schedule, sid: fix.SessionID, now: dt.datetime) -> bool | None:
        session = fix.Session.lookupSession(sid)
        if session is None:  # its engine is not running (yet, or stopped for a rollover)
            return None
        inside = in_session(schedule, now) or (
            schedule.sequence_reset == "daily" and next_start(schedule, now) - now <= self.lead)
        enabled = bool(session.isEnabled())
        if not inside and enabled:
            was_up = bool(session.isLoggedOn())
            self._held.add(key)  # before the logout: its callback asks holds() whether the logout was planned
            session.logout(OUTSIDE)
            log.warning("session closed: outside its schedule", extra={
                "session": key, "was_logged_on": was_up, **_boundaries(schedule, now)})
            return False
        if inside and not enabled and key in self._held:
            session.logon()
            self._held.discard(key)
            log.warning("session opened: its schedule starts", extra={"session": key, **_boundaries(schedule, now)})
            return True
        if inside and enabled:
            self._held.discard(key)  # someone else enabled it: nothing of ours to lift
        return None

    def holds(self, key: str) -> bool:
        """Whether this keeper closed the session (a logout then is its schedule's end, not a client gone)."""
        return key in self._held

    def status(self) -> dict[str, dict[str, Any]]:
        """Per scheduled session: describe() plus whether QuickFIX has it enabled and logged on."""
        now = self.clock()
        out: dict[str, dict[str, Any]] = {}
        for key, (schedule, sid) in self.sessions.items():
            row: dict[str, Any] = dict(describe(schedule, now))
            session = fix.Session.lookupSession(sid)
            row["enabled"] = bool(session.isEnabled()) if session is not None else None
            row["logged_on"] = bool(session.isLoggedOn()) if session is not None else False
            row["held_by_schedule"] = key in self._held
            out[key] = row
        return out


def _boundaries(schedule: Schedule, now: dt.datetime) -> dict[str, Any]:
    d = describe(schedule, now)
    return {"next_start": d["next_start"], "next_end": d["next_end"], "time_zone": d["time_zone"],
            "sequence_reset": d["sequence_reset"]}
