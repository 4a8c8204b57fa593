"""Session identity and live sessions: the one place session keys are built and sessions are looked up.

A session key is "OURS->THEIRS" (our CompID first, whichever side initiated): the gateway's own name for a
session in the event log, the journal, status and admin commands.
"""

from __future__ import annotations

import quickfix as fix

SessionID = fix.SessionID
Session = fix.Session


def session_key(our_comp_id: str, their_comp_id: str) -> str:
    return f"{our_comp_id}->{their_comp_id}"


_keys: dict[str, str] = {}


def sid_key(sid: fix.SessionID) -> str:
    """The session's key, from one SWIG call for a session seen before: every SWIG call releases and retakes
    the GIL, a hand-off to whichever QuickFIX thread is waiting (four calls build the key afresh)."""
    text = sid.toString()
    key = _keys.get(text)
    if key is None:
        key = _keys[text] = session_key(sid.getSenderCompID().getValue(), sid.getTargetCompID().getValue())
    return key


def copy_sid(sid: fix.SessionID) -> fix.SessionID:
    """QuickFIX reuses the SessionID it hands to callbacks; keep our own copy."""
    return fix.SessionID(sid.getBeginString().getValue(), sid.getSenderCompID().getValue(),
                         sid.getTargetCompID().getValue())


def session_id(begin_string: str, our_comp_id: str, their_comp_id: str) -> fix.SessionID:
    return fix.SessionID(begin_string, our_comp_id, their_comp_id)


def lookup(sid: fix.SessionID) -> fix.Session | None:
    """The live session of this id (None when its engine is not running)."""
    return fix.Session.lookupSession(sid)


def logged_on(sid: fix.SessionID) -> bool:
    s = fix.Session.lookupSession(sid)
    return s is not None and s.isLoggedOn()


def send(msg: fix.Message, sid: fix.SessionID) -> bool:
    """Send on this session from the calling thread; False when no such session exists (its engine is down) or
    QuickFIX refused to send (the session is not logged on: the message is still stored for a resend)."""
    try:
        return bool(fix.Session.sendToTarget(msg, sid))
    except fix.SessionNotFound:
        return False
