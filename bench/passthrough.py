"""The baseline: a bare QuickFIX pass-through proxy with no checks.

One acceptor for the client and one initiator to the venue, with the gateway's own QuickFIX settings
(gateway.fix.settings.render: file store, data dictionary validation, SocketNodelay, FileLog), the same engine
classes (ThreadedSocketAcceptor, SocketInitiator) and the same Python callbacks shape (gateway.fix.application.App). It
forwards NewOrderSingle/Cancel/Replace to the venue and ExecutionReports/CancelRejects back, copying each
message and nothing else: one client, so ClOrdIDs pass through unchanged, no ledger, no event log, no risk.

What the gateway costs on top of this is the cost of its own logic, since everything QuickFIX does is the same.

    python bench/passthrough.py --listen-port 5001 --venue-port 5002 --state-dir /tmp/pt

Flags change QuickFIX settings away from the gateway's (for the settings experiments in
docs/performance-order-path.md): --store memory|file|null, --no-message-log, --no-data-dictionary, --no-nodelay.
Prints a JSON line {"ready": true} on stdout once the venue session is logged on; SIGTERM logs out and stops.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import quickfix as fix  # noqa: E402

from gateway.fix import settings as qs  # noqa: E402
from gateway.fix.application import App  # noqa: E402


def tweak(text: str, a: argparse.Namespace) -> str:
    """Apply the experiment flags to rendered settings text (only [DEFAULT] keys are touched)."""
    repl = {}
    if a.no_data_dictionary:
        repl["UseDataDictionary"] = "N"
    if a.no_nodelay:
        repl["SocketNodelay"] = "N"
    if a.store == "null":
        repl["PersistMessages"] = "N"
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={repl[key]}" if key in repl else line)
    return "\n".join(lines) + "\n"


def store_factory(kind: str, settings: fix.SessionSettings) -> fix.MessageStoreFactory:
    if kind == "file":
        return fix.FileStoreFactory(settings)
    return fix.MemoryStoreFactory()  # "memory"; "null" is a memory store with PersistMessages=N


def log_factory(enabled: bool, settings: fix.SessionSettings) -> fix.LogFactory:
    if enabled:
        return fix.FileLogFactory(settings)
    return fix.ScreenLogFactory(False, False, False)


class PassThrough:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.client: fix.SessionID | None = None
        self.venue: fix.SessionID | None = None
        self.venue_up = threading.Event()
        self.forwarded = 0
        state = Path(a.state_dir)
        log_dir = None if a.no_message_log else state / "fixlog"
        ctext = qs.render("acceptor", [qs.SessionSpec(a.our_comp, a.client_comp, heartbeat_s=a.heartbeat)],
                          state / "store" / "clients", log_dir and log_dir / "clients", accept_port=a.listen_port,
                          allowed_remote=["127.0.0.1"])
        vtext = qs.render("initiator", [qs.SessionSpec(a.venue_sender, a.venue_comp, "127.0.0.1", a.venue_port,
                                                       a.heartbeat, 1)],
                          state / "store" / "venue", log_dir and log_dir / "venue")
        cset = qs.write_settings(state / "quickfix" / "clients.cfg", tweak(ctext, a))
        vset = qs.write_settings(state / "quickfix" / "venue.cfg", tweak(vtext, a))
        self.client_app = App("clients", self.from_client, self.client_logon)
        self.venue_app = App("venue", self.from_venue, self.venue_logon, self.venue_logout)
        self.acceptor = fix.ThreadedSocketAcceptor(self.client_app, store_factory(a.store, cset), cset,
                                                   log_factory(log_dir is not None, cset))
        self.initiator = fix.SocketInitiator(self.venue_app, store_factory(a.store, vset), vset,
                                             log_factory(log_dir is not None, vset))

    def client_logon(self, sid: fix.SessionID) -> None:
        self.client = fix.SessionID(sid.getBeginString().getValue(), sid.getSenderCompID().getValue(),
                                    sid.getTargetCompID().getValue())

    def venue_logon(self, sid: fix.SessionID) -> None:
        self.venue = fix.SessionID(sid.getBeginString().getValue(), sid.getSenderCompID().getValue(),
                                   sid.getTargetCompID().getValue())
        self.venue_up.set()

    def venue_logout(self, sid: fix.SessionID) -> None:
        self.venue_up.clear()

    def from_client(self, msg: fix.Message, sid: fix.SessionID) -> None:
        if msg.getHeader().getField(35) not in ("D", "F", "G"):
            raise fix.UnsupportedMessageType()
        fix.Session.sendToTarget(fix.Message(msg), self.venue)

    def from_venue(self, msg: fix.Message, sid: fix.SessionID) -> None:
        if self.client is not None:
            fix.Session.sendToTarget(fix.Message(msg), self.client)

    def start(self) -> None:
        self.acceptor.start()
        self.initiator.start()

    def stop(self) -> None:
        for app in (self.client_app, self.venue_app):
            app.logout_all(timeout=3)
        self.acceptor.stop()
        self.initiator.stop()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen-port", type=int, required=True)
    p.add_argument("--venue-port", type=int, required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--our-comp", default="FIXGW", help="CompID the client addresses us as")
    p.add_argument("--client-comp", default="BENCH")
    p.add_argument("--venue-sender", default="FIXGW", help="our CompID on the venue session")
    p.add_argument("--venue-comp", default="VENUE")
    p.add_argument("--heartbeat", type=int, default=30)
    p.add_argument("--store", choices=("file", "memory", "null"), default="file")
    p.add_argument("--no-message-log", action="store_true")
    p.add_argument("--no-data-dictionary", action="store_true")
    p.add_argument("--no-nodelay", action="store_true")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="bare QuickFIX pass-through proxy (benchmark baseline)")
    add_arguments(p)
    return serve(PassThrough(p.parse_args(argv)))


def serve(pt: PassThrough) -> int:
    """Run until SIGINT/SIGTERM, after saying on stdout whether the venue session came up."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    pt.start()
    if pt.venue_up.wait(30):
        print(json.dumps({"ready": True}), flush=True)
    else:
        print(json.dumps({"ready": False, "error": "venue session did not log on in 30 s"}), flush=True)
        stop.set()
    stop.wait()
    pt.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
