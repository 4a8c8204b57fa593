"""A scripted OMS client on a real QuickFIX initiator: the demo drives it, and so do the tests.

Received application messages are kept as plain {tag: value} dicts; `wait_for` blocks on a condition variable
until a matching message arrives, so callers synchronise on events rather than sleeps.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import quickfix as fix

from gateway.fix import messages as fm
from gateway.fix import settings as qs
from gateway.fix.application import App

Fields = dict[int, str]


parse = fm.to_dict
# Standard header tags an order may carry (SenderSubID(50) names the trader, ...): they go in the header.
HEADER_TAGS = frozenset({50, 57, 115, 116, 128, 129, 142, 143, 144, 145})


class OmsClient:
    def __init__(self, sender_comp_id: str, target_comp_id: str, port: int, state_dir: Path,
                 host: str = "127.0.0.1", heartbeat_s: int = 30, fix_version: str = "FIX.4.4",
                 reset_on_logon: bool = False) -> None:
        self.fix_version = fix_version
        self.sid = fix.SessionID(qs.begin_string(fix_version), sender_comp_id, target_comp_id)
        self.received: list[Fields] = []
        self.admin_received: list[Fields] = []
        self._cond = threading.Condition()
        self.logged_on = False
        self.logouts = 0
        text = qs.render("initiator", [qs.SessionSpec(sender_comp_id, target_comp_id, host, port, heartbeat_s, 1,
                                                      fix_version=fix_version, reset_on_logon=reset_on_logon)],
                         state_dir / "store", state_dir / "fixlog")
        self._settings = qs.write_settings(state_dir / "client.cfg", text)
        self._app = _ClientApp(self)
        self._initiator: fix.SocketInitiator | None = fix.SocketInitiator(self._app, fix.FileStoreFactory(self._settings), self._settings,
                                              fix.FileLogFactory(self._settings))

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        assert self._initiator is not None, "a stopped client cannot be restarted; make a new one"
        self._initiator.start()

    def stop(self) -> None:
        """Log out and destroy the engine: QuickFIX keeps a process-wide session registry, and a stopped but
        living engine would keep this SessionID registered and swallow the next client's messages."""
        if self._initiator is not None:
            self._app.logout_all()
            self._initiator.stop()
            self._initiator = None
        with self._cond:
            self.logged_on = False
            self._cond.notify_all()

    def wait_logon(self, timeout: float = 15.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.logged_on, timeout)

    def session(self) -> fix.Session:
        return fix.Session.lookupSession(self.sid)

    # ---------------------------------------------------------------- sending
    def send(self, msg: fix.Message) -> bool:
        return bool(fix.Session.sendToTarget(msg, self.sid))

    def new_order(self, cl: str, account: str, symbol: str, side: str, qty: float, price: float | None = None,
                  extra: dict[int, str] | None = None, tif: str | None = None, expire_date: str | None = None,
                  expire_time: str | None = None) -> bool:
        """A NewOrderSingle: a limit order at `price`, a market order without one.

        `tif` is TimeInForce(59) ("0" DAY, "1" GTC, "6" GTD, ...; None sends none, which venues take as DAY);
        a GTD order carries `expire_date` (ExpireDate 432, YYYYMMDD) or `expire_time` (ExpireTime 126,
        UTCTimestamp). `extra` fields are set last and win.
        """
        m = fm.new_message("D")
        m.setField(fm.CL_ORD_ID, cl)
        if account:
            m.setField(fm.ACCOUNT, account)
        m.setField(fm.SYMBOL, symbol)
        m.setField(fm.SIDE, side)
        m.setField(fm.TRANSACT_TIME, fm.utc_timestamp())
        m.setField(fm.ORDER_QTY, fm.fmt_num(qty))
        m.setField(fm.ORD_TYPE, "1" if price is None else "2")
        if price is not None:
            m.setField(fm.PRICE, repr(price))
        m.setField(21, "1")  # HandlInst: automated, private
        if tif is not None:
            m.setField(fm.TIME_IN_FORCE, tif)
        if expire_date is not None:
            m.setField(432, expire_date)
        if expire_time is not None:
            m.setField(126, expire_time)
        for tag, val in (extra or {}).items():
            (m.getHeader() if tag in HEADER_TAGS else m).setField(tag, val)
        return self.send(m)

    def cancel(self, cl: str, orig: str, symbol: str, side: str, account: str = "") -> bool:
        m = fm.new_message("F")
        for tag, val in ((fm.CL_ORD_ID, cl), (fm.ORIG_CL_ORD_ID, orig), (fm.SYMBOL, symbol), (fm.SIDE, side),
                         (fm.TRANSACT_TIME, fm.utc_timestamp())):
            m.setField(tag, val)
        if account:
            m.setField(fm.ACCOUNT, account)
        return self.send(m)

    def replace(self, cl: str, orig: str, symbol: str, side: str, qty: float, price: float | None,
                account: str = "") -> bool:
        m = fm.new_message("G")
        for tag, val in ((fm.CL_ORD_ID, cl), (fm.ORIG_CL_ORD_ID, orig), (fm.SYMBOL, symbol), (fm.SIDE, side),
                         (fm.TRANSACT_TIME, fm.utc_timestamp()), (fm.ORDER_QTY, fm.fmt_num(qty)),
                         (fm.ORD_TYPE, "1" if price is None else "2"), (21, "1")):
            m.setField(tag, val)
        if price is not None:
            m.setField(fm.PRICE, repr(price))
        if account:
            m.setField(fm.ACCOUNT, account)
        return self.send(m)

    # ---------------------------------------------------------------- receiving
    def _on_message(self, msg: fix.Message, sid: fix.SessionID) -> None:
        f = parse(msg)
        with self._cond:
            self.received.append(f)
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[Fields], bool], timeout: float = 10.0, start: int = 0,
                 admin: bool = False) -> Fields:
        """The first received message from index `start` on that satisfies `pred`; TimeoutError if none comes.

        `admin=True` searches the session-level messages (Reject, Logout, ...) instead of application ones.
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
                raise TimeoutError(f"{self.sid.toString()}: no matching message within {timeout}s; "
                                   f"received {len(self.received)} messages")
            return found[0]

    def reports(self, cl: str) -> list[Fields]:
        with self._cond:
            return [f for f in self.received if f.get(fm.CL_ORD_ID) == cl]


class _ClientApp(App):
    def __init__(self, client: OmsClient) -> None:
        super().__init__("oms", client._on_message, self._logon, self._logout)
        self.client = client

    def _logon(self, sid: fix.SessionID) -> None:
        with self.client._cond:
            self.client.logged_on = True
            self.client._cond.notify_all()

    def _logout(self, sid: fix.SessionID) -> None:
        with self.client._cond:
            self.client.logged_on = False
            self.client.logouts += 1
            self.client._cond.notify_all()

    def fromAdmin(self, msg: fix.Message, sid: fix.SessionID) -> None:
        with self.client._cond:
            self.client.admin_received.append(parse(msg))
            self.client._cond.notify_all()
