"""The gateway process: QuickFIX engines for the client, venue and drop-copy sides around one Router,
with the risk stage, the audit journal, metrics and live reconciliation attached to the event log."""

from __future__ import annotations

import collections
import datetime as dt
import gc
import logging
import threading
import time
from pathlib import Path
from typing import Any

from config.positions import load_positions
from config.risk_models import RiskConfig, load_risk_config
from config.settings import FixSessionPolicy, GatewayConfig
from gateway.fix import market_data as mdfix
from gateway.fix import messages as fm
from gateway.fix import engines, sessions
from gateway.fix import settings as qs
from gateway.fix.application import App
from gateway.events import schema
from gateway.events.log import EventLog
from gateway.events.journal import Journal
from gateway.events.surveillance import Detector, owners_of
from gateway.events.surveillance_feed import SurveillanceFeed
from gateway.control import limits as limit_changes
from gateway.control import checkpoint
from gateway.orders.ledger import PENDING_NEW, Ledger
from gateway.orders.lifecycle import replay_log
from gateway.events.metrics import Metrics
from gateway.recon import BreakOpened, ReconService, ReconStore, UnknownFill
from gateway.recon.events import Event as ReconEvent
from gateway.recon.model import FillRecord
from gateway.recon.feed import ReconFeed, reconciliation_off_reason
from gateway.control import rollover as rollover_mod
from gateway.orders import trading_day as td
from gateway.orders.risk_stage import RiskStage
from risk.controls import BREAKER_CODES
from gateway.orders.router import Router
from gateway.fix.sessions import SessionID, session_key, sid_key
from gateway.fix.schedule import ScheduleKeeper, qs_schedule_settings, scheduled_sessions

log = logging.getLogger("fixgw.service")

STATUS_REQUEST_DELAY_S = 2.0


def load_risk(cfg: GatewayConfig) -> RiskConfig | None:
    """The limits in force: the last version approved under four eyes (gateway.control.limits), else the
    configured files."""
    r = cfg.risk
    if r is None:
        return None
    approved = limit_changes.current_version(cfg)
    if approved is not None:
        return limit_changes.load_version(cfg, approved)
    return load_risk_config(r.instruments, r.accounts, r.limits, r.scenarios, r.locates, r.kyc)


def client_sessions(cfg: GatewayConfig) -> list[str]:
    """The client sessions' keys in the order of the config: the risk engine numbers sessions by it."""
    return [session_key(c.target_comp_id, c.sender_comp_id) for c in cfg.acceptor.clients]


def session_spec(policy: FixSessionPolicy, sender: str, target: str, host: str | None = None,
                 port: int | None = None, heartbeat_s: int = 30, reconnect_s: int = 5,
                 strict: bool = False, more_tags: list[int] | None = None) -> qs.SessionSpec:
    return qs.SessionSpec(sender, target, host, port, heartbeat_s, reconnect_s, fix_version=policy.fix_version,
                          reset_on_logon=policy.reset_on_logon, reset_on_logout=policy.reset_on_logout,
                          reset_on_disconnect=policy.reset_on_disconnect,
                          timestamp_precision=policy.timestamp_precision, strict=strict,
                          max_latency_s=policy.max_latency_s,
                          extra_tags=tuple(sorted({*policy.extra_tags, *(more_tags or ())})),
                          schedule=qs_schedule_settings(policy.schedule))


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Gateway:
    def __init__(self, cfg: GatewayConfig, clock: Any = _utc_now) -> None:
        self.cfg = cfg
        self.clock = clock  # the trading-day calendar's clock (tests move it; QuickFIX keeps its own)
        state = cfg.state_dir
        state.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self.rollover_lock = threading.Lock()
        self.planned_logouts: set[str] = set()  # sessions a rollover is logging out and bringing back
        self.events = EventLog(state / "events.log")
        client_keys = client_sessions(cfg)
        risk_cfg = load_risk(cfg)
        t0 = time.monotonic()
        # Today's segment only, and of it only what follows the latest checkpoint (gateway.control.checkpoint) when
        # one still describes the log: the ledger, journal and reconciliation rebuild from these events.
        # Collections would rescan the growing ledger again and again (3x the decode's time) and find nothing.
        gc.disable()
        try:
            with open(self.events.path, "rb") as lf:
                fp = checkpoint.fingerprint(risk_cfg, client_keys, cfg.gateway.max_open_orders)
                cp = checkpoint.load(state, lf, fp)
                tail = checkpoint.read_events(lf, cp.offset)[0] if cp is not None else None
            self.checkpoint_seq = cp.seq if cp is not None else 0
            # head: the day's first events (INIT and what the previous day carried), which say what day this is
            head = td.day_head(self.events.path) if cp is not None else list(self.events.read_today())
            history = tail if tail is not None else head
            ledger = cp.ledger if cp is not None else Ledger()
            self.risk = (RiskStage(risk_cfg, client_keys, ledger.fills, cfg.gateway.max_open_orders,
                                   buffers=cp.risk if cp is not None else None, controls=cfg.controls,
                                   max_price_age_s=cfg.max_price_age_s)
                         if risk_cfg is not None else None)
            prefix = self._begin(head, risk_cfg)  # when it starts the day, history is head and has its events
            self.trading_day, self.day_started = self._day_of(head)
            replayed = replay_log(history, ledger, self.risk)
        finally:
            gc.enable()
        self.router = Router(cfg, self.events, ledger, risk=self.risk, id_prefix=prefix, alert=self.alert)
        # Orders logged as sent whose fate the venue never told us (a crash between log and send, or lost
        # reports): once the venue has logged on and replayed its resends, ask it about each.
        self._unconfirmed = [o.number for o in ledger.open_orders() if o.status == PENDING_NEW]
        self._venue_logon_at: float | None = None
        self._last_tick = 0.0
        log.info("state rebuilt from the event log", extra={
            "events": replayed, "from_checkpoint": self.checkpoint_seq or None,
            "open_orders": len(ledger.open_orders()), "seconds": round(time.monotonic() - t0, 3),
            "limits_version": self.risk.limits_version if self.risk else None})

        self.journal = Journal(state / "journal.sqlite")
        self._journal_previous_day(head)
        # The journal runs a moment behind the log: what it missed is normally after the checkpoint.
        self.journal.catch_up(history if self.journal.last_q() >= self.checkpoint_seq else self.events.read_today())
        rc = cfg.reconciliation
        self.recon = ReconService(ReconStore(state / "recon.sqlite"), int(rc.grace_s * 1e9),
                                  price_tolerance=rc.price_tolerance)
        self.recon_feed = ReconFeed(self.recon, self._mirror, self._recon_events,
                                    enabled=reconciliation_off_reason(cfg) is None)
        # The reconciliation rebuilds its day on its own thread once started (_rebuild_recon), off the start's
        # path; the order path needs only what it had mirrored into positions, read here from its breaks.
        self._recon_tail = [ev for ev in history if isinstance(ev, schema.Execution) and ev.is_fill]
        self._carried_mirrors = td.carried_mirrors(head)
        del history, head
        self._start_mirrors: dict[str, FillRecord] = {}
        if self.recon_feed.enabled:
            for rec in self.recon.store.open_unknown_fills():
                self._restore_mirror(rec)
        self.events.subscribers += [self.metrics.on_event, self.recon_feed.on_event]
        self.journal.follow(self.events)
        self.surveillance: SurveillanceFeed | None = None
        if cfg.surveillance.live:
            self.surveillance = SurveillanceFeed(Detector(cfg.surveillance, owners_of(cfg)), self.events.append,
                                                 self.events.read_today)
            self.surveillance.follow(self.events)

        self._engines: list[Any] = []
        self._roles: dict[str, tuple[Any, Any]] = {}  # engine role -> (engine, how to make a fresh one)
        self._apps: list[App] = []
        self._seen_sessions: dict[str, set[str]] = {}
        self._cancel_on_disconnect = {session_key(c.target_comp_id, c.sender_comp_id)
                                      for c in cfg.acceptor.clients if c.cancel_on_disconnect}
        self._disconnected: collections.deque[str] = collections.deque()
        self.venue_logged_on = threading.Event()
        self.dropcopy_logged_on = threading.Event()
        self.marketdata_logged_on = threading.Event()
        self._md_requests = 0
        # Session schedules: QuickFIX enforces the UTC window; this keeper the trading days and the daily window
        # of weekly/never-resetting schedules (housekeeping ticks it). Its clock is the gateway's.
        self.schedules = ScheduleKeeper(scheduled_sessions(cfg, self.session_ids()), clock=self.clock)

    def _begin(self, history: list[schema.AnyEvent], risk_cfg: RiskConfig | None) -> str:
        """The day's first events when the state folder is new: the venue ClOrdID prefix (venue ClOrdIDs must
        never repeat, even after the state folder is wiped: stamp the log's birth), the trading day, and the
        book from the start-of-day positions file. A bad file stops the start (ConfigError names its line)."""
        if history and isinstance(history[0], schema.DayStart):
            return history[0].prefix
        first: list[schema.Event] = []
        r = self.cfg.risk
        if r is not None and r.positions is not None and risk_cfg is not None:
            first = td.start_of_day_events(load_positions(r.positions, risk_cfg))
        prefix = "G" + format(time.time_ns() // 1_000_000, "x").upper() + "-"
        init = schema.DayStart(prefix=prefix, day=td.first_day(self.clock(), self.cfg.trading_day.time_zone),
                               ts=time.time_ns())
        for ev in [init, *first]:
            self.events.append(ev)
            history.append(ev)  # type: ignore[arg-type]
        return prefix

    def _day_of(self, history: list[schema.AnyEvent]) -> tuple[str, dt.datetime]:
        init = history[0] if history and isinstance(history[0], schema.DayStart) else None
        ts = init.ts if init is not None else 0
        started = dt.datetime.fromtimestamp((ts or time.time_ns()) / 1e9, dt.timezone.utc)
        day = (init.day if init is not None else "") or td.first_day(started, self.cfg.trading_day.time_zone)
        return day, started

    def _journal_previous_day(self, history: list[schema.AnyEvent]) -> None:
        """A crash right after a rollover can leave the old day's last rows unjournaled: take them from its archive."""
        first_q = history[0].q if history else 0
        previous = (history[0].previous or "") if history and isinstance(history[0], schema.DayStart) else ""
        if previous and self.journal.last_q() < first_q - 1:
            old = EventLog.read(self.cfg.archive_dir / previous / "events.log")
            self.journal.catch_up(old)

    def rollover(self, who: str, why: str, now: dt.datetime | None = None) -> dict[str, Any]:
        """End the trading day now (gateway.control.rollover): journaled with who and why; returns what it did."""
        return rollover_mod.run(self, who, why, now)

    # ------------------------------------------------------------------ engines
    def start(self) -> None:
        cfg, state = self.cfg, self.cfg.state_dir
        r = self.router
        acc = cfg.acceptor
        log_dir = state / "fixlog" if cfg.gateway.fix_message_log else None
        self.journal.start()
        self.recon_feed.start(self._rebuild_recon)
        if self.surveillance is not None:
            self.surveillance.start()

        client_app = App("clients", r.from_client, r.client_logon, self._client_logout)
        r.watch_logons(client_app.session_keys)
        dict_dir = state / "quickfix" / "dictionaries"
        # Client sessions validate as the FIX session layer prescribes: a malformed message is answered with a
        # session Reject and never reaches the order path, let alone the venue.
        # The tags the controls read (strategy, SMP ID, locate ID) are in every client's dictionary.
        specs = [session_spec(c, c.target_comp_id, c.sender_comp_id, heartbeat_s=acc.heartbeat_s, strict=True,
                              more_tags=cfg.controls.user_tags()) for c in acc.clients]
        text = qs.render("acceptor", specs, state / "store" / "clients", log_dir and log_dir / "clients",
                         accept_port=acc.port, allowed_remote=acc.allowed_remote_addresses, dict_dir=dict_dir)
        acceptor = self._engine("clients", "acceptor", client_app, state / "quickfix" / "clients.cfg",
                                text, log_dir)

        v = cfg.venue

        def venue_logon(sid: SessionID) -> None:
            r.venue_logon(sid)
            self._venue_logon_at = time.monotonic()
            self.venue_logged_on.set()

        def venue_logout(sid: SessionID) -> None:
            self.venue_logged_on.clear()
            r.venue_logout(sid)

        venue_app = App("venue", r.from_venue, venue_logon, venue_logout, on_to_app=r.venue_to_app,
                        on_admin=self._venue_admin)
        vtext = qs.render("initiator", [session_spec(v, v.sender_comp_id, v.target_comp_id, v.host, v.port,
                                                     v.heartbeat_s, v.reconnect_s)],
                          state / "store" / "venue", log_dir and log_dir / "venue", dict_dir=dict_dir)
        initiators = [self._engine("venue", "initiator", venue_app, state / "quickfix" / "venue.cfg", vtext,
                                   log_dir)]
        self._apps = [client_app, venue_app]

        d = cfg.dropcopy
        if d is not None and d.enabled:
            dc_app = App("dropcopy", self._from_dropcopy, lambda sid: self.dropcopy_logged_on.set(),
                         lambda sid: self.dropcopy_logged_on.clear())
            dtext = qs.render("initiator", [session_spec(d, d.sender_comp_id, d.target_comp_id, d.host, d.port,
                                                         d.heartbeat_s, d.reconnect_s)],
                              state / "store" / "dropcopy", log_dir and log_dir / "dropcopy", dict_dir=dict_dir)
            initiators.append(self._engine("dropcopy", "initiator", dc_app, state / "quickfix" / "dropcopy.cfg",
                                           dtext, log_dir))
            self._apps.append(dc_app)
        md = cfg.marketdata
        if md is not None and md.enabled and self.risk is not None:
            md_app = App("marketdata", self._from_marketdata, self._marketdata_logon,
                         lambda sid: self.marketdata_logged_on.clear())
            mtext = qs.render("initiator", [session_spec(md, md.sender_comp_id, md.target_comp_id, md.host, md.port,
                                                         md.heartbeat_s, md.reconnect_s)],
                              state / "store" / "marketdata", log_dir and log_dir / "marketdata", dict_dir=dict_dir)
            initiators.append(self._engine("marketdata", "initiator", md_app,
                                           state / "quickfix" / "marketdata.cfg", mtext, log_dir))
            self._apps.append(md_app)
        if cfg.console is not None:  # only the console shows it: no cost on the message path without one
            for app in self._apps:
                app.last_received = {}
        self._engines = [acceptor, *initiators]
        for engine in self._engines:
            engine.start()
        held = r.hold_storm_sessions()
        if held:
            log.warning("sessions held out by a tripped MESSAGE_STORM breaker", extra={"sessions": held})
        if cfg.metrics.port:
            self.metrics.serve(cfg.metrics.host, cfg.metrics.port)
        log.info("gateway started", extra={"client_port": acc.port, "venue": f"{v.host}:{v.port}",
                                           "clients": [c.sender_comp_id for c in acc.clients],
                                           "risk": self.risk is not None})

    def _engine(self, role: str, kind: str, app: App, cfg_path: Path, text: str, log_dir: Path | None) -> Any:
        engine, make = engines.build(kind, app, cfg_path, text, file_logs=log_dir is not None)
        self._roles[role] = (engine, make)
        return engine

    def stop_engine(self, role: str) -> bool:
        """Stop one QuickFIX engine ('clients', 'venue', 'dropcopy'): its sessions log out (a rollover restarts it)."""
        if role not in self._roles:
            return False
        engine, _ = self._roles[role]
        engine.stop()
        return True

    def start_engine(self, role: str) -> None:
        """A fresh engine on the same settings: new message-log files and whatever store is on disk."""
        old, make = self._roles[role]
        self._engines = [e for e in self._engines if e is not old]
        self._roles[role] = (None, make)
        del old  # the old engine must be gone, sessions unregistered, before the new one creates them
        engine = make()
        self._engines.append(engine)
        self._roles[role] = (engine, make)
        engine.start()

    def _client_logout(self, sid: SessionID) -> None:
        self.router.client_logout(sid)
        key = sid_key(sid)
        planned = key in self.planned_logouts or self.schedules.holds(key)  # the day's end, not a client gone
        if key in self._cancel_on_disconnect and not self.router.stopping and not planned:
            # Not from QuickFIX's callback: the cancels go out from housekeeping a moment later.
            self._disconnected.append(key)

    def _venue_admin(self, msg: fm.Message, sid: SessionID) -> None:
        if msg.getHeader().getField(fm.MSG_TYPE) == "3":
            self.router.venue_session_reject(msg)

    def alert(self, code: str) -> None:
        self.metrics.alerts.labels(code).inc()

    def _from_dropcopy(self, msg: fm.Message, sid: SessionID) -> None:
        f = fm.to_dict(msg)  # one SWIG call (a GIL hand-off) per drop-copy fill
        msg_type = f[fm.MSG_TYPE]
        if msg_type == "j":
            log.warning("business reject on the drop copy: logged, not answered",
                        extra={"fix": msg.toString().replace("\x01", "|")})
            return
        if msg_type != "8":
            raise fm.UnsupportedMessageType()
        self.recon_feed.on_dropcopy(f)

    # ------------------------------------------------------------------ market data
    def _marketdata_logon(self, sid: SessionID) -> None:
        """Subscribe to every configured symbol, and ask each one's trading status (a halt may have begun
        while the session was down)."""
        assert self.risk is not None and self.cfg.marketdata is not None
        symbols = self.cfg.marketdata.symbols or list(self.risk.engine.instrument_symbols)
        self._md_requests += 1
        sessions.send(mdfix.market_data_request(f"MD{self._md_requests}", symbols), sid)
        for n, sym in enumerate(symbols):
            sessions.send(mdfix.security_status_request(f"SS{self._md_requests}-{n}", sym), sid)
        self.marketdata_logged_on.set()
        log.info("market data subscribed", extra={"symbols": len(symbols)})

    def _from_marketdata(self, msg: fm.Message, sid: SessionID) -> None:
        msg_type = msg.getHeader().getField(fm.MSG_TYPE)
        if msg_type in ("W", "X"):
            self.router.market_data(mdfix.parse_market_data(msg))
        elif msg_type == "f":
            symbol, halted, text = mdfix.parse_security_status(msg)
            if halted is not None:
                self.router.venue_halt(symbol, halted, text)
        elif msg_type in ("Y", "j"):
            # No reject answers a reject; the symbol keeps its fallback price, and its age says so.
            log.warning("market-data request refused by the venue", extra={"fix": msg.toString().replace("\x01", "|")})
        else:
            raise fm.UnsupportedMessageType()

    # ------------------------------------------------------------------ reconciliation hooks
    def _mirror(self, rec: FillRecord, sign: int) -> None:
        """A drop-copy fill the gateway never saw moves positions, so risk sees the real book."""
        if self.risk is None:
            return
        if not self.router.mirror(rec.account, rec.symbol, rec.side, rec.last_qty, rec.last_px, rec.mirror_key, sign):
            log.error("drop-copy fill for an unknown account or instrument: not mirrored",
                      extra={"account": rec.account, "symbol": rec.symbol})

    def _restore_mirror(self, rec: FillRecord) -> None:
        key = rec.mirror_key
        if key in self._carried_mirrors:  # already in the positions the day began with
            self.router.mark_mirrored(key)
        elif rec.exec_id in self._carried_mirrors:
            # A day handed over by a gateway before the keys held the trading day names the ExecID alone: it
            # stands for one fill, the earliest stored (open_unknown_fills comes in store order), not for a
            # later day's fill that uses the ExecID again.
            self._carried_mirrors.discard(rec.exec_id)
            self.router.mark_mirrored(key)
        elif not self.router.is_mirrored(key):
            self._mirror(rec, +1)
            self._start_mirrors[key] = rec

    def _rebuild_recon(self) -> None:
        """On the reconciliation's thread, before its first live record: rebuild the days it keeps from the
        store, feed it the gateway fills the event log has and the store missed (a crash in between), then
        put the mirrors right. Breaks that matured while the process was down open now, as they would have
        live; a mirror read from the breaks at the start that this no longer wants is taken back."""
        today = time.strftime("%Y%m%d", time.gmtime())
        self._recon_events(self.recon.rebuild(self.recon.days_to_rebuild(today)))
        self.recon_feed.catch_up(self._recon_tail)
        self._recon_tail = []
        wanted = {rec.mirror_key: rec for rec in self.recon.unknown_fills()}
        for key, rec in list(self._start_mirrors.items()):
            if key not in wanted:
                self._mirror(rec, -1)
        for rec in wanted.values():
            self._restore_mirror(rec)
        self._start_mirrors = {}

    def _recon_events(self, events: list[ReconEvent]) -> None:
        for ev in events:
            if isinstance(ev, UnknownFill) and not ev.order_known:
                self.metrics.alerts.labels("DROPCOPY_UNKNOWN_FILL").inc()
                log.error("DROPCOPY_UNKNOWN_FILL: a drop-copy fill for an order the gateway never saw; position "
                          "mirrored; see docs/runbooks/DROPCOPY_UNKNOWN_FILL.md",
                          extra={"exec_id": ev.rec.exec_id, "order_id": ev.rec.order_id, "account": ev.rec.account,
                                 "symbol": ev.rec.symbol, "side": ev.rec.side, "qty": ev.rec.last_qty,
                                 "px": ev.rec.last_px})
            elif isinstance(ev, BreakOpened):
                self.metrics.alerts.labels("RECON_BREAK").inc()

    # ------------------------------------------------------------------ control plane
    def session_ids(self) -> dict[str, tuple[str, SessionID]]:
        """Every FIX session of the gateway by its key ('FIXGW->OMS1'): (role, QuickFIX SessionID)."""
        out: dict[str, tuple[str, SessionID]] = {k: ("client", sid) for k, sid in self.router.client_sids.items()}
        v = self.cfg.venue
        out[session_key(v.sender_comp_id, v.target_comp_id)] = (
            "venue", sessions.session_id(v.begin_string, v.sender_comp_id, v.target_comp_id))
        d = self.cfg.dropcopy
        if d is not None and d.enabled:
            out[session_key(d.sender_comp_id, d.target_comp_id)] = (
                "dropcopy", sessions.session_id(d.begin_string, d.sender_comp_id, d.target_comp_id))
        md = self.cfg.marketdata
        if md is not None and md.enabled:
            out[session_key(md.sender_comp_id, md.target_comp_id)] = (
                "marketdata", sessions.session_id(md.begin_string, md.sender_comp_id, md.target_comp_id))
        return out

    def seq_reset(self, key: str, next_sender: int | None, next_target: int | None, who: str,
                  why: str) -> dict[str, Any]:
        """Set a session's next outgoing and/or expected incoming MsgSeqNum, as agreed with the counterparty."""
        if not who or not why:
            raise ValueError("who and why are required for every operator action")
        if next_sender is None and next_target is None:
            raise ValueError("give --next-sender, --next-target or both")
        for name, n in (("next_sender", next_sender), ("next_target", next_target)):
            if n is not None and (not isinstance(n, int) or n < 1):
                raise ValueError(f"{name} must be a whole number >= 1, not {n!r}")
        known = self.session_ids()
        if key not in known:
            raise ValueError(f"unknown session {key!r}: one of {', '.join(sorted(known))}")
        session = sessions.lookup(known[key][1])
        if session is None:
            raise ValueError(f"session {key} is not running")
        before = {"next_sender": session.getExpectedSenderNum(), "next_target": session.getExpectedTargetNum()}
        if next_sender is not None:
            session.setNextSenderMsgSeqNum(next_sender)
        if next_target is not None:
            session.setNextTargetMsgSeqNum(next_target)
        after = {"next_sender": session.getExpectedSenderNum(), "next_target": session.getExpectedTargetNum()}
        self.events.append(schema.Admin(action="seq-reset", scope=key, who=who, why=why,
                                        detail={"from": before, "to": after}, ts=time.time_ns()))
        log.warning("sequence numbers set by an operator", extra={"session": key, "from": before, "to": after,
                                                                  "who": who, "why": why})
        return {"session": key, "from": before, "to": after}

    def last_received(self) -> dict[str, float]:
        """Session key -> time.time() of the last message received on it (heartbeats included)."""
        seen: dict[str, float] = {}
        for app in self._apps:
            seen.update(app.last_received or {})
        return {key: seen[text] for key, (_role, sid) in self.session_ids().items()
                if (text := sid.toString()) in seen}

    def session_states(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, (role, sid) in self.session_ids().items():
            session = sessions.lookup(sid)
            row: dict[str, Any] = {"role": role, "begin_string": sid.getBeginString().getValue()}
            if session is None:
                row["running"] = False
            else:
                row.update(running=True, logged_on=bool(session.isLoggedOn()),
                           next_sender=session.getExpectedSenderNum(), next_target=session.getExpectedTargetNum())
            out[key] = row
        for key, sched in self.schedules.status().items():
            if key in out:
                out[key]["schedule"] = sched
        return out

    def housekeeping(self) -> None:
        while self._disconnected:
            key = self._disconnected.popleft()
            self.router.cancel_orders(lambda o: o.session == key, f"cancel on disconnect of {key}")
        self.router.drain_undelivered()
        self.router.deliver_held()
        if self._unconfirmed and self.router.venue_up and self._venue_logon_at is not None \
                and time.monotonic() - self._venue_logon_at > STATUS_REQUEST_DELAY_S:
            numbers, self._unconfirmed = self._unconfirmed, []
            if self.cfg.venue.order_status_requests:
                self.router.request_status(numbers)
            else:
                log.warning("orders of the previous run are unconfirmed and the venue takes no status requests: "
                            "they stay pending until the venue reports on them", extra={"count": len(numbers)})
                self.router.await_unconfirmed(numbers)
        self.router.unanswered(self.cfg.venue.answer_timeout_s)
        now = time.monotonic()
        if now - self._last_tick >= 1.0:  # once a second is plenty, and keeps the router lock free
            self._last_tick = now
            self.router.expire_overrides(time.time_ns())
            self.schedules.tick()
            self.recon_feed.tick()
            self.refresh_gauges()

    def refresh_gauges(self) -> None:
        m = self.metrics
        if self.recon_feed.enabled and self.recon_feed.rebuilt.is_set():  # the rebuild holds the lock
            for t, n in self.recon.open_counts().items():
                m.recon_open.labels(t.value if hasattr(t, "value") else str(t)).set(n)
        for app in self._apps:
            up = set(app.logged_on)
            seen = self._seen_sessions.setdefault(app.name, set())
            seen |= up
            for key in seen:
                m.session_up.labels(app.name, key).set(1 if key in up else 0)
        def read(ledger: Ledger, risk: RiskStage | None) -> None:
            m.open_orders.set(len(ledger.open))
            if risk is not None:
                e = risk.engine
                for n, name in enumerate(e.account_names):
                    for limit, ratio in e.utilisation(n).items():
                        m.utilisation.labels(name, limit).set(ratio)
                c = risk.controls
                for code in BREAKER_CODES:
                    m.breakers_tripped.labels(code).set(sum(1 for t in c.tripped.values() if t.code == code))
                m.halted.set(len(c.halts))
                now = risk.clock()
                for sym in c.priced_at:
                    m.price_age.labels(sym).set(c.price_age_s(sym, now) or 0.0)

        self.router.read(read)
        m.unroutable.set(self.router.unroutable)

    def set_switch(self, switch: str, scope: str, name: str, on: bool, who: str, why: str) -> dict[str, Any]:
        """Kill switch, reduce-only or halt for `scope` ('global', 'account', 'instrument', 'session', 'trader' or
        'strategy'; a halt only 'instrument'), journaled with who and why. Turning a kill switch on blocks new
        orders at once and cancels the scope's open orders."""
        if self.risk is None:
            raise ValueError("no [risk] section in the configuration: switches need the risk engine")
        if not who or not why:
            raise ValueError("who and why are required for every operator action")
        ev = schema.Admin(action=f"{switch} {'on' if on else 'off'}",
                          scope="global" if scope == "global" else f"{scope}:{name}", who=who, why=why,
                          ts=time.time_ns())
        self.router.operator_switch(ev)  # raises on a bad switch, scope or name: nothing journaled then
        cancelled = 0
        if switch == "kill" and on:
            cancelled = self.router.cancel_orders(
                lambda o: scope == "global" or (scope == "account" and o.account == name)
                or (scope == "instrument" and o.symbol == name) or (scope == "session" and o.session == name)
                or (scope == "trader" and o.trader == name) or (scope == "strategy" and o.strategy == name),
                f"kill switch {scope} {name}".strip())
        log.warning("operator switch", extra={"switch": switch, "scope": scope, "target": name, "on": on, "who": who,
                                              "why": why, "cancelled": cancelled})
        return {"switch": switch, "scope": scope, "name": name, "on": on, "cancelled": cancelled}

    def write_recon_reports(self, day: str, out_dir: Path | None = None,
                            formats: tuple[str, ...] = ("md", "csv", "json")) -> list[Path]:
        if not self.recon_feed.enabled:
            log.warning("reconciliation is off (no drop-copy session): no report written", extra={"day": day})
            return []
        self.recon_feed.drain()
        return list(self.recon.write_reports(day, out_dir or self.cfg.report_dir, formats))

    def reload_risk(self, who: str = "system", why: str = "reload") -> str:
        """Swap in new limits and reference data atomically; a bad file raises (ConfigError, ValueError) and
        leaves the old ones in force. Journaled with who, why and both limits versions."""
        if self.risk is None:
            raise ValueError("no [risk] section in the configuration: nothing to reload")
        try:
            if self.cfg.gateway.limit_changes == "four_eyes":
                raise ValueError("limits change only by `fixgw limits propose` and a second person's `approve` "
                                 "([gateway] limit_changes = \"four_eyes\")")
            r = self.cfg.risk
            assert r is not None
            # the configured files, read and validated outside the lock; they replace an approved version
            new_cfg = load_risk_config(r.instruments, r.accounts, r.limits, r.scenarios, r.locates, r.kyc)
            old, new = self.router.swap_limits(new_cfg, who, why)
            (limit_changes.root(self.cfg) / "current").unlink(missing_ok=True)
        except Exception as e:
            log.error("reload refused: the old limits stay in force", extra={"error": str(e), "who": who})
            self.metrics.alerts.labels("RELOAD_FAILED").inc()
            raise
        log.warning("limits reloaded", extra={"from": old, "to": new, "who": who, "why": why})
        return new

    def stop(self) -> None:
        """Stop taking orders, log every session out, flush the journal and the reconciliation."""
        self.router.stopping = True
        for app in self._apps:
            app.logout_all(reason="gateway stopping")
        for engine in self._engines:
            engine.stop()
        # Dropped, not kept: a live engine keeps its sessions registered with QuickFIX, and a new gateway in
        # this process would find those (logged out, disabled) instead of its own.
        self._engines = []
        self._roles = {}
        self.router.drain_undelivered()
        self.recon_feed.stop()
        if self.surveillance is not None:
            self.surveillance.stop()  # before the journal: its last alerts are journaled
        self.journal.stop()
        self.events.close()
        self.recon.store.close()
        log.info("gateway stopped")
