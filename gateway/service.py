"""The gateway process: QuickFIX engines for the client, venue and drop-copy sides around one Router."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import quickfix as fix

from config.settings import GatewayConfig
from gateway import qf_settings as qs
from gateway.apps import App
from gateway.eventlog import EventLog
from gateway.ledger import Ledger
from gateway.router import Router, replay

log = logging.getLogger("fixgw.service")


class Gateway:
    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg
        state = cfg.state_dir
        state.mkdir(parents=True, exist_ok=True)
        self.events = EventLog(state / "events.log")
        prefix = self._id_prefix()
        ledger = Ledger()
        replayed = replay(self.events, ledger)
        self.router = Router(cfg, self.events, ledger, id_prefix=prefix)
        log.info("state rebuilt from the event log",
                 extra={"events": replayed, "open_orders": len(ledger.open_orders())})
        self._acceptor: fix.ThreadedSocketAcceptor | None = None
        self._initiator: fix.SocketInitiator | None = None
        self._apps: list[App] = []
        self.venue_logged_on = threading.Event()

    def _id_prefix(self) -> str:
        """Venue ClOrdIDs must never repeat, even after the state folder is wiped: stamp the log's birth."""
        for ev in self.events.replay():
            if ev.get("e") == "INIT":
                return str(ev["prefix"])
            break
        prefix = "G" + format(time.time_ns() // 1_000_000, "x").upper() + "-"
        self.events.append({"e": "INIT", "prefix": prefix, "ts": time.time_ns()})
        return prefix

    # ------------------------------------------------------------------ engines
    def start(self) -> None:
        cfg, state = self.cfg, self.cfg.state_dir
        r = self.router
        acc = cfg.acceptor
        client_app = App("clients", r.from_client, r.client_logon, r.client_logout)
        sessions = [qs.SessionSpec(c.target_comp_id, c.sender_comp_id, heartbeat_s=acc.heartbeat_s)
                    for c in acc.clients]
        log_dir = state / "fixlog" if cfg.gateway.fix_message_log else None
        text = qs.render("acceptor", sessions, state / "store" / "clients", log_dir and log_dir / "clients",
                         accept_port=acc.port, allowed_remote=acc.allowed_remote_addresses)
        settings = qs.write_settings(state / "quickfix" / "clients.cfg", text)
        self._acceptor = fix.ThreadedSocketAcceptor(client_app, fix.FileStoreFactory(settings), settings,
                                            _log_factory(settings, log_dir))

        v = cfg.venue

        def venue_logon(sid: fix.SessionID) -> None:
            r.venue_logon(sid)
            self.venue_logged_on.set()

        def venue_logout(sid: fix.SessionID) -> None:
            self.venue_logged_on.clear()
            r.venue_logout(sid)

        venue_app = App("venue", r.from_venue, venue_logon, venue_logout, on_to_app=self._venue_to_app)
        vtext = qs.render("initiator", [qs.SessionSpec(v.sender_comp_id, v.target_comp_id, v.host, v.port,
                                                      v.heartbeat_s, v.reconnect_s)],
                          state / "store" / "venue", log_dir and log_dir / "venue")
        vsettings = qs.write_settings(state / "quickfix" / "venue.cfg", vtext)
        self._initiator = fix.SocketInitiator(venue_app, fix.FileStoreFactory(vsettings), vsettings,
                                              _log_factory(vsettings, log_dir))
        self._apps = [client_app, venue_app]
        self._acceptor.start()
        self._initiator.start()
        log.info("gateway started", extra={"client_port": acc.port, "venue": f"{v.host}:{v.port}",
                                           "clients": [c.sender_comp_id for c in acc.clients]})

    def _venue_to_app(self, msg: fix.Message, sid: fix.SessionID) -> None:
        """Never let QuickFIX resend an old order to the venue after a reconnect: gap-fill it instead.

        A request the venue did not get before the session dropped is answered to the client as undelivered
        (drain_undelivered), so that nothing reaches the market late and unasked.
        """
        hdr = msg.getHeader()
        if hdr.isSetField(43) and hdr.getField(43) == "Y" and hdr.getField(35) in ("D", "G", "F"):
            self.router.undelivered.append(msg.getField(11))
            raise fix.DoNotSend()

    def housekeeping(self) -> None:
        self.router.drain_undelivered()

    def stop(self) -> None:
        """Stop taking orders, log every session out, close the event log."""
        self.router.stopping = True
        for app in self._apps:
            app.logout_all(reason="gateway stopping")
        for engine in (self._acceptor, self._initiator):
            if engine is not None:
                engine.stop()
        self._acceptor = self._initiator = None
        self.events.close()
        log.info("gateway stopped")


def _log_factory(settings: fix.SessionSettings, log_dir: Path | None) -> fix.LogFactory:
    if log_dir is None:
        return fix.NullLogFactory() if hasattr(fix, "NullLogFactory") else fix.ScreenLogFactory(False, False, False)
    return fix.FileLogFactory(settings)
