"""FIX counterparties that are not QuickFIX, for the tests: an OMS initiator and a venue acceptor on
fixcore-engine, an independent pure-Python FIX engine on asyncio. They speak FIX 4.4 unless told otherwise;
`fix_version="FIX.4.2"` or `"FIX.5.0SP2"` (over FIXT.1.1, DefaultApplVerID 9) makes them speak another version.

Everything else in the suite talks QuickFIX to QuickFIX, so it cannot tell the gateway's own FIX behaviour from
what QuickFIX happens to do on both ends. These wrappers put a different session layer on the other side of the
wire (its own sequence-number store, heartbeats, resend and gap-fill handling, second-precision SendingTime).

The API follows `sim.oms_client.OmsClient`: synchronous and thread-friendly. Each wrapper runs the engine's
asyncio loop in a thread of its own; calls from the test thread are handed to that loop and waited for. Received
messages are kept as plain {tag: value} dicts (header fields included; a repeated tag keeps its last value, as
the engine decodes without a data dictionary), and `wait_for` blocks on a condition variable until a matching
message arrives.

fixcore takes its BeginString from the session's settings (one session per SessionID, BeginString included), and
by default (UseDataDictionary=N) neither validates nor parses groups. `validate=True` loads the data dictionary of
the session's version from the repository's fix_specs/ (FIXT11.xml + FIX50SP2.xml for FIXT.1.1) and turns on
fixcore's inbound validation: a message missing a field the dictionary requires, of an unknown MsgType, or with a
value outside a field's enumeration is answered with a session Reject (35=3) and not passed on. fixcore does not
check for fields the message type does not define; `undefined_fields` does that for the tests. This module does not import QuickFIX or the gateway on purpose: nothing of theirs may leak
into the foreign side.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, TypeVar

from fixcore import Application, SessionID
from fixcore.log.base import Log, LogFactory
from fixcore.message.message import Message
from fixcore.session.session import Session
from fixcore.session.session_settings import SessionSettings
from fixcore.transport.acceptor import SocketAcceptor
from fixcore.transport.initiator import SocketInitiator

Fields = dict[int, str]
Body = list[tuple[int, str]]
Reply = tuple[str, Body]  # (MsgType, body fields in order); the engine stamps the header
Script = Callable[[Fields], list[Reply]]

T = TypeVar("T")
BEGIN_STRING = "FIX.4.4"  # the default version, kept for the callers that name it
# The FIX version a session speaks -> its BeginString (FIX 5.0SP2 rides on the FIXT.1.1 session layer).
BEGIN_STRINGS = {"FIX.4.2": "FIX.4.2", "FIX.4.4": "FIX.4.4", "FIX.5.0SP2": "FIXT.1.1"}
FIX_SPECS = Path(__file__).resolve().parent.parent / "fix_specs"
_APP_SPECS = {"FIX.4.2": "FIX42.xml", "FIX.4.4": "FIX44.xml", "FIX.5.0SP2": "FIX50SP2.xml"}
log = logging.getLogger("tests.foreign_fix")


def fix_version_of(version: str) -> str:
    """"FIX.4.2" | "FIX.4.4" | "FIX.5.0SP2"; a BeginString is accepted too ("FIXT.1.1" means FIX.5.0SP2)."""
    if version == "FIXT.1.1":
        return "FIX.5.0SP2"
    if version not in BEGIN_STRINGS:
        raise ValueError(f"unsupported FIX version {version!r}: one of {', '.join(BEGIN_STRINGS)} or FIXT.1.1")
    return version


def spec_path(version: str) -> Path:
    """The application data dictionary of a FIX version, as the repository keeps it."""
    return FIX_SPECS / _APP_SPECS[fix_version_of(version)]


def undefined_fields(f: Fields, version: str) -> list[int]:
    """Tags of `f` (a flattened message) that `version`'s dictionary defines neither in the header, the
    trailer nor the body of f's MsgType (group fields included): what a strict engine of that version refuses
    with "Tag not defined for this message type". An unknown MsgType returns every body tag."""
    header, trailer, messages = _spec_tags(fix_version_of(version))
    allowed = header | trailer | messages.get(f.get(35, ""), frozenset())
    return sorted(t for t in f if t not in allowed)


def _spec_tags(version: str) -> tuple[frozenset[int], frozenset[int], dict[str, frozenset[int]]]:
    cached = _SPEC_TAGS.get(version)
    if cached is not None:
        return cached
    import xml.etree.ElementTree as ET

    def load(path: Path) -> ET.Element:
        return ET.parse(path).getroot()

    roots = [load(spec_path(version))]
    if version == "FIX.5.0SP2":
        roots.insert(0, load(FIX_SPECS / "FIXT11.xml"))
    names: dict[str, int] = {}
    comps: dict[str, ET.Element] = {}
    for root in roots:
        for fd in root.findall("fields/field"):
            names[fd.get("name", "")] = int(fd.get("number", "0"))
        for c in root.findall("components/component"):
            comps[c.get("name", "")] = c

    def tags(node: ET.Element | None) -> frozenset[int]:
        out: set[int] = set()

        def walk(n: ET.Element) -> None:
            for ch in n:
                if ch.tag == "component":
                    walk(comps[ch.get("name", "")])
                elif ch.tag in ("field", "group"):
                    out.add(names[ch.get("name", "")])
                    if ch.tag == "group":
                        walk(ch)

        if node is not None:
            walk(node)
        return frozenset(out)

    header = frozenset().union(*(tags(r.find("header")) for r in roots))
    trailer = frozenset().union(*(tags(r.find("trailer")) for r in roots))
    messages = {m.get("msgtype", ""): tags(m) for r in roots for m in r.findall("messages/message")}
    _SPEC_TAGS[version] = (header, trailer, messages)
    return _SPEC_TAGS[version]


_SPEC_TAGS: dict[str, tuple[frozenset[int], frozenset[int], dict[str, frozenset[int]]]] = {}


def utc_timestamp() -> str:
    # Second precision, as the engine stamps SendingTime: a foreign client must not look like QuickFIX.
    return datetime.now(tz=UTC).strftime("%Y%m%d-%H:%M:%S")


def fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def flatten(msg: Message) -> Fields:
    f: Fields = dict(msg.header.items())
    f.update(msg.body)
    for instances in msg.groups().values():
        for inst in instances:
            f.update(dict(inst.items()))
    f.update(msg.trailer.items())
    return f


def build(msg_type: str, body: Body) -> Message:
    m = Message()
    m.header.set(35, msg_type)
    for tag, val in body:
        m.set_field(tag, str(val))  # header tags (43, 97, 122 ...) are routed to the header by the engine
    return m


class _NullLog(Log):
    """Without a log folder the engine would print every message to stdout; the tests record them anyway."""

    def on_incoming(self, message: str) -> None:
        pass

    def on_outgoing(self, message: str) -> None:
        pass

    def on_event(self, text: str) -> None:
        log.debug("%s", text)


class _NullLogFactory(LogFactory):
    def create(self, session_id: SessionID) -> Log:
        return _NullLog()


class _LoopThread:
    """An asyncio loop in a daemon thread; `call` runs a coroutine there and waits for its result."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def cancel_rest() -> None:
            # Session timer tasks outlive a stopped transport by up to a tick; close them rather than leave
            # "Task was destroyed but it is pending" noise behind.
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        try:
            self.call(cancel_rest(), timeout=5.0)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5.0)
            if not self._thread.is_alive():
                self.loop.close()


class _Endpoint(Application):
    """What the OMS and the venue share: recording, waiting, sending, and the loop thread."""

    role = "endpoint"

    def __init__(self, sender_comp_id: str, target_comp_id: str, state_dir: Path | None, heartbeat_s: int,
                 reset_on_logon: bool, fix_version: str = "FIX.4.4", validate: bool = False) -> None:
        self.fix_version = fix_version_of(fix_version)
        self.begin_string = BEGIN_STRINGS[self.fix_version]
        self.validate = validate
        self.sid = SessionID(self.begin_string, sender_comp_id, target_comp_id)
        self.received: list[Fields] = []  # application messages, in arrival order
        self.admin_received: list[Fields] = []  # session messages (Logon, Heartbeat, Reject 35=3, Logout, ...)
        self.inbound: list[Fields] = []  # both, in arrival order
        self.sent: list[Fields] = []  # everything this side put on the wire, as stamped by the engine
        self.errors: list[str] = []  # exceptions of callbacks, which the engine would only log
        self.logged_on = False
        self.logons = 0
        self.logouts = 0
        self._cond = threading.Condition()
        self._state_dir = state_dir
        self._heartbeat_s = heartbeat_s
        self._reset_on_logon = reset_on_logon
        self._loop = _LoopThread(f"fixcore-{self.role}-{sender_comp_id}")
        self._started = False

    # ---------------------------------------------------------------- settings
    def _settings_text(self, connection: list[str]) -> str:
        lines = ["[DEFAULT]", f"HeartBtInt={self._heartbeat_s}", "LogonTimeout=10", "LogoutTimeout=5",
                 f"ResetOnLogon={'Y' if self._reset_on_logon else 'N'}", "", "[SESSION]",
                 f"BeginString={self.begin_string}", f"SenderCompID={self.sid.sender_comp_id}",
                 f"TargetCompID={self.sid.target_comp_id}", *connection]
        if self.begin_string == "FIXT.1.1":
            lines.append("DefaultApplVerID=FIX.5.0SP2")  # stamped as 1137=9 on the Logon
        if self.validate:
            lines += ["UseDataDictionary=Y", "ValidateIncomingMessage=Y", "ValidateFieldsOutOfRange=Y",
                      "ValidateFieldsHaveValues=Y"]
            if self.begin_string == "FIXT.1.1":
                lines += [f"TransportDataDictionary={FIX_SPECS / 'FIXT11.xml'}",
                          f"AppDataDictionary={spec_path(self.fix_version)}"]
            else:
                lines.append(f"DataDictionary={spec_path(self.fix_version)}")
        if self._state_dir is not None:
            # A file store keeps sequence numbers across restarts of the wrapper, as a real OMS would.
            self._state_dir.mkdir(parents=True, exist_ok=True)
            lines += [f"FileStorePath={self._state_dir / 'store'}", f"FileLogPath={self._state_dir / 'fixlog'}"]
        return "\n".join(lines) + "\n"

    def _log_factory(self) -> LogFactory | None:
        return None if self._state_dir is not None else _NullLogFactory()

    # ---------------------------------------------------------------- engine callbacks (loop thread)
    def on_logon(self, session_id: SessionID) -> None:
        with self._cond:
            self.logged_on = True
            self.logons += 1
            self._cond.notify_all()

    def on_logout(self, session_id: SessionID) -> None:
        with self._cond:
            self.logged_on = False
            self.logouts += 1
            self._cond.notify_all()

    def from_admin(self, message: Message, session_id: SessionID) -> None:
        f = flatten(message)
        with self._cond:
            self.admin_received.append(f)
            self.inbound.append(f)
            self._cond.notify_all()

    def from_app(self, message: Message, session_id: SessionID) -> None:
        f = flatten(message)
        with self._cond:
            self.received.append(f)
            self.inbound.append(f)
            self._cond.notify_all()

    def to_admin(self, message: Message, session_id: SessionID) -> None:
        self._record_sent(message)

    def to_app(self, message: Message, session_id: SessionID) -> None:
        self._record_sent(message)

    def _record_sent(self, message: Message) -> None:
        with self._cond:
            self.sent.append(flatten(message))

    # ---------------------------------------------------------------- waiting
    def wait_logon(self, timeout: float = 15.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.logged_on, timeout)

    def wait_logout(self, timeout: float = 15.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self.logged_on, timeout)

    def wait_for(self, pred: Callable[[Fields], bool], timeout: float = 10.0, start: int = 0,
                 admin: bool = False) -> Fields:
        """The first received message from index `start` on that satisfies `pred`; TimeoutError if none comes.

        `admin=True` searches the session-level messages instead of the application ones.
        """
        with self._cond:
            found: list[Fields] = []

            def match() -> bool:
                for f in (self.admin_received if admin else self.received)[start:]:
                    if pred(f):
                        found.append(f)
                        return True
                return False

            if not self._cond.wait_for(match, timeout):
                raise TimeoutError(f"{self.sid}: no matching message within {timeout}s; received "
                                   f"{len(self.received)} application and {len(self.admin_received)} session "
                                   f"messages")
            return found[0]

    def reports(self, cl: str) -> list[Fields]:
        with self._cond:
            return [f for f in self.received if f.get(11) == cl]

    # ---------------------------------------------------------------- sending
    def _session(self) -> Session | None:
        raise NotImplementedError

    async def _send_async(self, msg_type: str, body: Body) -> bool:
        s = self._session()
        if s is None or not s.is_logged_on:
            return False
        await s.send_app(build(msg_type, body))
        return True

    def send(self, msg_type: str, body: Body) -> bool:
        """Any message, body fields in the given order; the engine stamps the header and sequence number.

        Session-level types (35=3 ...) go out through the application path: sequenced and stored, and gap-filled
        rather than resent on a ResendRequest, as the engine does with its own session messages.
        False when the session is not logged on.
        """
        return self._loop.call(self._send_async(msg_type, body))

    def skip_outgoing(self, n: int) -> int:
        """Leave the next `n` outgoing MsgSeqNums unused, as if those messages were lost on the way: the next
        message sent opens a gap the counterparty must ask to have resent. Returns the next MsgSeqNum.

        The engine has no public call for it, so this moves its store's counter, under its send lock so that
        no heartbeat is stamped meanwhile.
        """
        async def skip() -> int:
            s = self._session()
            assert s is not None, "no session"
            async with s._send_lock:
                store = s._store
                store.set_next_sender_msg_seq_num(store.next_sender_msg_seq_num() + n)
                return store.next_sender_msg_seq_num()

        return self._loop.call(skip())

    # ---------------------------------------------------------------- orders
    def new_order(self, cl: str, account: str, symbol: str, side: str, qty: float, price: float | None = None,
                  extra: dict[int, str] | None = None) -> bool:
        body: Body = [(11, cl)]
        if account:
            body.append((1, account))
        body += [(21, "1"), (55, symbol), (54, side), (60, utc_timestamp()), (38, fmt_num(qty)),
                 (40, "1" if price is None else "2")]
        if price is not None:
            body.append((44, repr(float(price))))
        body += [(tag, val) for tag, val in (extra or {}).items()]
        return self.send("D", body)

    def cancel(self, cl: str, orig: str, symbol: str, side: str, account: str = "", qty: float | None = None,
               extra: dict[int, str] | None = None) -> bool:
        body: Body = [(41, orig), (11, cl)]
        if account:
            body.append((1, account))
        body += [(55, symbol), (54, side), (60, utc_timestamp())]
        if qty is not None:
            body.append((38, fmt_num(qty)))
        body += [(tag, val) for tag, val in (extra or {}).items()]
        return self.send("F", body)

    def replace(self, cl: str, orig: str, symbol: str, side: str, qty: float, price: float | None,
                account: str = "", extra: dict[int, str] | None = None) -> bool:
        body: Body = [(41, orig), (11, cl)]
        if account:
            body.append((1, account))
        body += [(21, "1"), (55, symbol), (54, side), (60, utc_timestamp()), (38, fmt_num(qty)),
                 (40, "1" if price is None else "2")]
        if price is not None:
            body.append((44, repr(float(price))))
        body += [(tag, val) for tag, val in (extra or {}).items()]
        return self.send("G", body)

    # ---------------------------------------------------------------- lifecycle
    def _stop_loop(self) -> None:
        self._loop.stop()
        with self._cond:
            self.logged_on = False
            self._cond.notify_all()


class ForeignOms(_Endpoint):
    """An OMS on a fixcore initiator: logs on to `host:port` as `sender_comp_id` -> `target_comp_id`.

    `state_dir=None` keeps the sequence numbers in memory (a fresh session at 1 each time the wrapper is made);
    with a folder they survive a new wrapper on the same folder, and the engine's message log lands there too.
    """

    role = "oms"

    def __init__(self, sender_comp_id: str, target_comp_id: str, port: int, state_dir: Path | None = None,
                 host: str = "127.0.0.1", heartbeat_s: int = 30, reset_on_logon: bool = False,
                 reconnect_s: int = 1, fix_version: str = "FIX.4.4", validate: bool = False) -> None:
        super().__init__(sender_comp_id, target_comp_id, state_dir, heartbeat_s, reset_on_logon, fix_version,
                         validate)
        self._text = self._settings_text(["ConnectionType=initiator", f"SocketConnectHost={host}",
                                          f"SocketConnectPort={port}", f"ReconnectInterval={reconnect_s}"])
        self._initiator: SocketInitiator | None = None

    def _session(self) -> Session | None:
        return None if self._initiator is None else self._initiator.sessions.get(self.sid)

    def start(self) -> None:
        assert not self._started, "a stopped client cannot be restarted; make a new one"
        self._started = True
        self._loop.start()

        async def go() -> None:
            # The engine's objects bind to the running loop, so they are made on it.
            self._initiator = SocketInitiator(SessionSettings.from_string(self._text), self,
                                              log_factory=self._log_factory())
            await self._initiator.start()

        self._loop.call(go())

    def stop(self, timeout: float = 5.0) -> None:
        """Log out (waiting for the gateway's answer), stop the engine and its thread."""
        if self._initiator is None:
            return
        initiator = self._initiator
        try:
            self._loop.call(initiator.logout())  # also turns the engine's reconnect off
            self.wait_logout(timeout)
            self._loop.call(initiator.stop())
        finally:
            self._initiator = None
            self._stop_loop()


class ForeignVenue(_Endpoint):
    """A venue on a fixcore acceptor: accepts one session on 127.0.0.1:`port`, FIX 4.4 unless `fix_version`
    says "FIX.4.2" or "FIX.5.0SP2" (BeginString FIXT.1.1, DefaultApplVerID 9 on its Logon).

    `on_message(fields)` is called for every application message the venue receives, on the engine's loop, and
    returns the replies to send, in order, as (MsgType, body fields). `AckFill(fix_version=...)` of the venue's
    version is the default script; see `session_reject`, `business_reject`, `cancel_reject` and
    `execution_report` for building other answers. `reset_on_logon` starts every logon at MsgSeqNum 1 on both
    sides' streams, as a venue with ResetOnLogon or an in-memory store does. `validate=True` has the engine check
    what it receives against the version's data dictionary (see the module doc): a failure is answered with a
    session Reject (35=3) that shows in `sent`, and the message never reaches `received` or the script.
    """

    role = "venue"

    def __init__(self, port: int, sender_comp_id: str = "VENUE", target_comp_id: str = "FIXGW",
                 on_message: Script | None = None, reset_on_logon: bool = False,
                 state_dir: Path | None = None, heartbeat_s: int = 30, host: str = "127.0.0.1",
                 fix_version: str = "FIX.4.4", validate: bool = False) -> None:
        super().__init__(sender_comp_id, target_comp_id, state_dir, heartbeat_s, reset_on_logon, fix_version,
                         validate)
        self.on_message: Script = (on_message if on_message is not None
                                   else AckFill(fix_version=self.fix_version))
        self._text = self._settings_text(["ConnectionType=acceptor", f"SocketAcceptHost={host}",
                                          f"SocketAcceptPort={port}"])
        self._acceptor: SocketAcceptor | None = None
        self._reply_lock: asyncio.Lock | None = None

    def _session(self) -> Session | None:
        return None if self._acceptor is None else self._acceptor.sessions.get(self.sid)

    def from_app(self, message: Message, session_id: SessionID) -> None:
        super().from_app(message, session_id)
        f = flatten(message)
        try:
            replies = self.on_message(f)
        except Exception as e:  # a broken script must fail the test, not vanish into the engine's log
            with self._cond:
                self.errors.append(f"on_message({f.get(35)} 34={f.get(34)}): {e!r}")
                self._cond.notify_all()
            return
        if replies:
            # One task per incoming message, serialised on a FIFO lock: replies leave in the order the
            # requests came in, and a message's replies are never interleaved with another's.
            asyncio.get_running_loop().create_task(self._send_replies(replies))

    async def _send_replies(self, replies: list[Reply]) -> None:
        assert self._reply_lock is not None
        async with self._reply_lock:
            for msg_type, body in replies:
                try:
                    if not await self._send_async(msg_type, body):
                        raise RuntimeError("session not logged on")
                except Exception as e:
                    with self._cond:
                        self.errors.append(f"reply {msg_type}: {e!r}")
                        self._cond.notify_all()
                    return

    def start(self) -> None:
        assert not self._started, "a stopped venue cannot be restarted; make a new one"
        self._started = True
        self._loop.start()

        async def go() -> None:
            self._reply_lock = asyncio.Lock()
            self._acceptor = SocketAcceptor(SessionSettings.from_string(self._text), self,
                                            log_factory=self._log_factory())
            await self._acceptor.start()  # listening once this returns

        self._loop.call(go())

    def logout(self, text: str = "", timeout: float = 5.0) -> bool:
        """Log the session out from the venue's side; True once the gateway has answered or dropped."""
        s = self._session()
        if s is None or not s.is_logged_on:
            return True
        self._loop.call(s.send_logout(text))
        return self.wait_logout(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if self._acceptor is None:
            return
        acceptor = self._acceptor
        try:
            self.logout(timeout=timeout)
            self._loop.call(acceptor.stop())
        finally:
            self._acceptor = None
            self._stop_loop()


# -------------------------------------------------------------------- venue scripts and reply builders
def session_reject(req: Fields, reason: int, text: str = "", ref_tag: int | None = None) -> Reply:
    """Reject (35=3) of `req`: RefSeqNum is its MsgSeqNum, RefMsgType its MsgType."""
    body: Body = [(45, req[34])]
    if ref_tag is not None:
        body.append((371, str(ref_tag)))
    body += [(372, req[35]), (373, str(reason))]
    if text:
        body.append((58, text))
    return "3", body


def business_reject(req: Fields, reason: int = 3, text: str = "") -> Reply:
    """BusinessMessageReject (35=j) of `req`: BusinessRejectRefID is its ClOrdID when it has one.
    Reasons: 0 other, 1 unknown ID, 2 unknown security, 3 unsupported message type, 4 application not
    available, 5 conditionally required field missing."""
    body: Body = [(45, req[34]), (372, req[35])]
    if req.get(11):
        body.append((379, req[11]))
    body.append((380, str(reason)))
    if text:
        body.append((58, text))
    return "j", body


_ids = itertools.count(1)
_boot = format(time.time_ns() // 1_000_000, "x").upper()


def next_id(prefix: str) -> str:
    return f"{prefix}{_boot}-{next(_ids)}"


# ExecType(150) values FIX 4.2 does not have: 4.3 folded partial fill / fill (1 / 2) into Trade (F), and
# G/H/I (trade correct / cancel, order status) are ExecTransType 2 / 1 / 3 in 4.2.
_NOT_42_EXEC_TYPES = frozenset("FGHIJKLMN")


def execution_report(req: Fields, exec_type: str, ord_status: str, *, order_id: str, cum_qty: float,
                     leaves_qty: float, avg_px: float, last_qty: float | None = None,
                     last_px: float | None = None, orig: str | None = None, text: str = "",
                     ord_rej_reason: int | None = None, extra: Body | None = None,
                     fix_version: str = "FIX.4.4", exec_trans_type: str = "0") -> Reply:
    """ExecutionReport (35=8) answering `req` (a 35=D/F/G): its ClOrdID, Symbol, Side, OrderQty, OrdType, Price
    and Account are echoed, with every field the version's dictionary requires of the report (FIX 4.4 by
    default; 5.0SP2 requires a subset of those).

    FIX 4.2: ExecTransType(20) is added (`exec_trans_type`, 0 new by default) and `exec_type` must be a 4.2
    ExecType (0 new, 1 partial fill, 2 fill, 4 canceled, 5 replaced, 8 rejected ...): 4.4's F/G/H/I raise
    ValueError, so a 4.2 script cannot slip a 4.4 report onto the wire. LastShares(32)/LastPx(31) are the
    same tags in every version."""
    version = fix_version_of(fix_version)
    if version == "FIX.4.2" and exec_type in _NOT_42_EXEC_TYPES:
        raise ValueError(f"ExecType {exec_type!r} does not exist in FIX 4.2 (use 1/2 with ExecTransType 0)")
    body: Body = [(37, order_id), (11, req[11])]
    if orig:
        body.append((41, orig))
    body.append((17, next_id("FX")))
    if version == "FIX.4.2":
        body.append((20, exec_trans_type))
    body += [(150, exec_type), (39, ord_status)]
    if ord_rej_reason is not None:
        body.append((103, str(ord_rej_reason)))
    if req.get(1):
        body.append((1, req[1]))
    body += [(55, req[55]), (54, req[54])]
    for tag in (38, 40, 44):
        if req.get(tag):
            body.append((tag, req[tag]))
    if last_qty is not None:
        body += [(32, fmt_num(last_qty)), (31, repr(float(last_px if last_px is not None else 0.0)))]
    body += [(151, fmt_num(leaves_qty)), (14, fmt_num(cum_qty)), (6, repr(float(avg_px))),
             (60, utc_timestamp())]
    if text:
        body.append((58, text))
    return "8", body + list(extra or [])


def cancel_reject(req: Fields, order_id: str, ord_status: str, response_to: str, reason: str | None = None,
                  text: str = "") -> Reply:
    """OrderCancelReject (35=9) of `req` (a 35=F/G): every field FIX 4.2, 4.4 and 5.0SP2 require (OrderID,
    ClOrdID, OrigClOrdID, OrdStatus, CxlRejResponseTo 1 cancel / 2 replace), CxlRejReason(102) when given
    (0 too late, 1 unknown order: values all three versions have)."""
    body: Body = [(37, order_id), (11, req[11]), (41, req.get(41, "")), (39, ord_status), (434, response_to)]
    if reason is not None:
        body.append((102, reason))
    if text:
        body.append((58, text))
    return "9", body


class AckFill:
    """A small order book as a venue script: a new order is acknowledged, then filled in full at its limit
    price (or `market_price` when it has none) unless its symbol is in `rest`, where it stays open, or in
    `partial`, where it is filled in two executions (half, then the rest). Cancels and replaces of open orders
    are confirmed (150=4 / 150=5), of unknown or closed ones refused with 35=9. Anything else is answered with
    BusinessMessageReject 380=3 (unsupported message type).

    The reports are in `fix_version`'s form. FIX 4.4 and 5.0SP2: fills are 150=F. FIX 4.2: every report
    carries ExecTransType 20=0, fills are 150=1 (partial) / 150=2 (filled), and a replace is confirmed with
    150=5 39=5 (Replaced, an OrdStatus 4.2 still has).
    """

    def __init__(self, rest: tuple[str, ...] = ("JPM",), market_price: float = 100.0,
                 fix_version: str = "FIX.4.4", partial: tuple[str, ...] = ()) -> None:
        self.rest = set(rest)
        self.partial = set(partial)
        self.market_price = market_price
        self.fix_version = fix_version_of(fix_version)
        self.orders: dict[str, dict[str, Any]] = {}  # by current ClOrdID
        self._lock = threading.Lock()

    def _er(self, req: Fields, exec_type: str, ord_status: str, **kw: Any) -> Reply:
        return execution_report(req, exec_type, ord_status, fix_version=self.fix_version, **kw)

    def _fill_type(self, ord_status: str) -> str:
        """The ExecType of a fill: F (Trade) from 4.3 on, 1 / 2 (partial fill / fill) in 4.2."""
        if self.fix_version != "FIX.4.2":
            return "F"
        return "2" if ord_status == "2" else "1"

    def __call__(self, f: Fields) -> list[Reply]:
        with self._lock:
            t = f.get(35)
            if t == "D":
                return self.new(f)
            if t == "F":
                return self.cancel(f)
            if t == "G":
                return self.replace(f)
            return [business_reject(f, 3, f"unsupported message type {t}")]

    def new(self, f: Fields) -> list[Reply]:
        o: dict[str, Any] = {"order_id": next_id("FO"), "req": f, "qty": float(f[38]), "cum": 0.0,
                             "notional": 0.0}
        self.orders[f[11]] = o
        out = [self._er(f, "0", "0", order_id=o["order_id"], cum_qty=0, leaves_qty=o["qty"], avg_px=0)]
        if f[55] not in self.rest:
            px = float(f[44]) if f.get(44) else self.market_price
            lots = [o["qty"]]
            if f[55] in self.partial and o["qty"] >= 2:
                first = float(int(o["qty"] // 2))
                lots = [first, o["qty"] - first]
            for lot in lots:
                o["cum"] += lot
                o["notional"] += lot * px
                status = "2" if o["cum"] >= o["qty"] else "1"
                out.append(self._er(f, self._fill_type(status), status, order_id=o["order_id"],
                                    cum_qty=o["cum"], leaves_qty=o["qty"] - o["cum"], avg_px=px, last_qty=lot,
                                    last_px=px))
        return out

    def _open(self, f: Fields) -> dict[str, Any] | None:
        o = self.orders.get(f.get(41, ""))
        return o if o is not None and o["cum"] < o["qty"] else None

    def _cancel_reject(self, f: Fields, response_to: str) -> list[Reply]:
        known = self.orders.get(f.get(41, ""))
        return [cancel_reject(f, known["order_id"] if known else "NONE", "2" if known else "8", response_to,
                              "0" if known else "1",
                              "too late to cancel or replace" if known else "unknown order")]

    def cancel(self, f: Fields) -> list[Reply]:
        o = self._open(f)
        if o is None:
            return self._cancel_reject(f, "1")
        del self.orders[f[41]]
        self.orders[f[11]] = o
        req = {**o["req"], 11: f[11]}
        avg = o["notional"] / o["cum"] if o["cum"] else 0.0
        o["qty"] = o["cum"]  # nothing left to fill
        return [self._er(req, "4", "4", order_id=o["order_id"], cum_qty=o["cum"], leaves_qty=0, avg_px=avg,
                         orig=f[41])]

    def replace(self, f: Fields) -> list[Reply]:
        o = self._open(f)
        if o is None or float(f[38]) <= o["cum"]:
            return self._cancel_reject(f, "2")
        del self.orders[f[41]]
        self.orders[f[11]] = o
        o["req"], o["qty"] = f, float(f[38])
        avg = o["notional"] / o["cum"] if o["cum"] else 0.0
        # 4.4 dropped OrdStatus 5 (Replaced): the order's state after the replace stands in for it.
        status = "5" if self.fix_version == "FIX.4.2" else ("1" if o["cum"] else "0")
        return [self._er(f, "5", status, order_id=o["order_id"], cum_qty=o["cum"],
                         leaves_qty=o["qty"] - o["cum"], avg_px=avg, orig=f[41])]
