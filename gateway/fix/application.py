"""QuickFIX Application adapters: each forwards the engine's callbacks to the object that owns the logic."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import quickfix as fix

from gateway.fix.sessions import sid_key

log = logging.getLogger("fixgw.fix")

Handler = Callable[[fix.Message, fix.SessionID], None]
SessionHook = Callable[[fix.SessionID], None]


def _noop(_: fix.SessionID) -> None:
    return None


class App(fix.Application):
    """Routes application messages to `on_message`; admin traffic stays with QuickFIX.

    `on_message` may raise fix.UnsupportedMessageType (QuickFIX answers with BusinessMessageReject) or any other
    QuickFIX reject exception; an unexpected exception is logged and swallowed so that one bad message never
    takes a session down.
    """

    def __init__(self, name: str, on_message: Handler, on_logon: SessionHook = _noop,
                 on_logout: SessionHook = _noop, on_to_app: Handler | None = None,
                 on_admin: Handler | None = None) -> None:
        super().__init__()
        self.name = name
        self._on_message = on_message
        self._on_logon = on_logon
        self._on_logout = on_logout
        self._on_to_app = on_to_app
        self._on_admin = on_admin
        self._sessions: dict[str, fix.SessionID] = {}
        self._cond = threading.Condition()
        # SessionID string -> time.time() of the last message received; kept only when the operator console,
        # which shows it, is configured (the gateway sets a dict)
        self.last_received: dict[str, float] | None = None

    @property
    def logged_on(self) -> list[str]:
        with self._cond:
            return sorted(self._sessions)

    def session_keys(self) -> set[str]:
        """The logged-on sessions by the gateway's key ("FIXGW->OMS1"): the one record of who is logged on."""
        with self._cond:
            return {sid_key(sid) for sid in self._sessions.values()}

    def logout_all(self, timeout: float = 5.0, reason: str = "") -> bool:
        """Send Logout on every logged-on session and wait for the counterparties' answers.

        Engines' own stop() polls in whole seconds; logging out first makes a clean stop take milliseconds.
        """
        with self._cond:
            sids = list(self._sessions.values())
        for sid in sids:
            session = fix.Session.lookupSession(sid)
            if session is not None:
                session.logout(reason) if reason else session.logout()
        with self._cond:
            return self._cond.wait_for(lambda: not self._sessions, timeout)

    def onCreate(self, sid: fix.SessionID) -> None:
        log.debug("session created", extra={"app": self.name, "session": sid.toString()})

    def onLogon(self, sid: fix.SessionID) -> None:
        with self._cond:
            self._sessions[sid.toString()] = fix.SessionID(sid.getBeginString().getValue(),
                                                           sid.getSenderCompID().getValue(),
                                                           sid.getTargetCompID().getValue())
            self._cond.notify_all()
        self._guard(self._on_logon, sid)

    def onLogout(self, sid: fix.SessionID) -> None:
        with self._cond:
            self._sessions.pop(sid.toString(), None)
            self._cond.notify_all()
        self._guard(self._on_logout, sid)

    def _guard(self, fn: SessionHook, sid: fix.SessionID) -> None:
        # An exception escaping a SWIG director callback aborts the whole process (std::terminate).
        try:
            fn(sid)
        except Exception:
            log.exception("session callback failed", extra={"app": self.name, "session": sid.toString()})

    def toAdmin(self, msg: fix.Message, sid: fix.SessionID) -> None:
        return None

    def fromAdmin(self, msg: fix.Message, sid: fix.SessionID) -> None:
        if self.last_received is not None:
            self.last_received[sid.toString()] = time.time()
        if self._on_admin is None:
            return
        try:
            self._on_admin(msg, sid)
        except Exception:
            log.exception("admin message handler failed", extra={"app": self.name, "session": sid.toString()})

    def toApp(self, msg: fix.Message, sid: fix.SessionID) -> None:
        if self._on_to_app is None:
            return
        try:
            self._on_to_app(msg, sid)
        except fix.DoNotSend:
            raise
        except Exception:
            log.exception("outgoing hook failed", extra={"app": self.name, "session": sid.toString()})

    def fromApp(self, msg: fix.Message, sid: fix.SessionID) -> None:
        if self.last_received is not None:
            self.last_received[sid.toString()] = time.time()
        try:
            self._on_message(msg, sid)
        except (fix.UnsupportedMessageType, fix.FieldNotFound, fix.IncorrectTagValue, fix.IncorrectDataFormat):
            raise
        except Exception:
            log.exception("message handler failed", extra={"app": self.name, "session": sid.toString(),
                                                            "fix": msg.toString().replace("\x01", "|")})
