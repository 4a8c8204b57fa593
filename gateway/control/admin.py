"""The admin interface: one JSON request and one JSON answer per connection on a local unix socket.

The socket is created owner-only (0600 inside a 0700 folder under systemd's RuntimeDirectory), so only the
service user and root can reach it; every state-changing command carries who and why and is journaled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from gateway.events import schema
from gateway.events.journal_query import parse_time
from gateway.fix import sessions

from gateway.orders.ledger import Ledger
from gateway.orders.risk_stage import RiskStage
from gateway.service import Gateway

log = logging.getLogger("fixgw.admin")

MAX_REQUEST = 64 * 1024


def status(gw: Gateway, started: float, flush: bool = True, disk: bool = True) -> dict[str, Any]:
    """`fixgw admin status`; the console asks for it twice a second with flush and disk off (no wait for the
    journal, no walk of the archive folder)."""
    r = gw.router
    if flush:
        gw.journal.flush(timeout=2.0)  # so that a status read after a report also finds it in the journal
    out: dict[str, Any] = {
        "gateway": gw.cfg.gateway.name, "pid": os.getpid(), "uptime_s": round(time.monotonic() - started, 1),
        "event_seq": gw.events.seq, "stopping": r.stopping,
        "sessions": {"clients_logged_on": sorted(r.logged_on),
                     "clients_configured": sorted(r.accounts), "venue": r.venue_up,
                     "dropcopy": gw.dropcopy_logged_on.is_set(), "marketdata": gw.marketdata_logged_on.is_set()},
        "session_states": gw.session_states(),
        "recon_open_breaks": ({getattr(k, "value", str(k)): v for k, v in gw.recon.open_counts().items()}
                              if gw.recon_feed.enabled and gw.recon_feed.rebuilt.is_set() else
                              "rebuilding after the start" if gw.recon_feed.enabled else
                              "reconciliation off: no drop-copy session"),
        "checkpoint_seq": gw.checkpoint_seq or None,
        "unroutable_reports": r.unroutable,
        "trading_day": trading_day_status(gw) if disk else {"day": gw.trading_day},
    }
    now = time.monotonic()

    def read(ledger: Ledger, risk: RiskStage | None) -> None:  # under the order path's lock
        out["unanswered_requests"] = [
            {"venue_cl_ord_id": a.venue_cl_ord_id, "msg_type": a.msg_type, "age_s": round(now - a.at, 3),
             "overdue": a.alerted} for a in r.awaiting.values() if a.alerted][:1000]
        out["status_unsupported_orders"] = [
            {"session": o.session, "cl_ord_id": o.cl_ord_id, "venue_cl_ord_id": o.venue_cl_ord_id, "status": o.status}
            for n in sorted(r.status_unsupported) if (o := ledger.orders.get(n)) is not None and o.is_open]
        orders = ledger.open_orders()
        out["open_orders"] = len(orders)
        out["orders"] = [{"session": o.session, "cl_ord_id": o.cl_ord_id, "account": o.account, "symbol": o.symbol,
                          "side": o.side, "qty": o.qty, "cum_qty": o.cum_qty, "status": o.status,
                          "pending": bool(o.pending)} for o in orders[:1000]]
        if risk is not None:
            e = risk.engine
            out["limits_version"] = e.limits_version
            positions: dict[str, dict[str, float]] = {}
            util: dict[str, dict[str, float]] = {}
            kill = {"global": e.kill_state("global"), "accounts": [], "instruments": []}
            reduce = {"global": e.reduce_only_state("global"), "accounts": [], "instruments": []}
            for a, acc in enumerate(e.account_names):
                util[acc] = {k: round(v, 6) for k, v in e.utilisation(a).items()}
                for i, sym in enumerate(e.instrument_symbols):
                    p = e.position(a, i)
                    if p:
                        positions.setdefault(acc, {})[sym] = p
                if e.kill_state("account", a):
                    kill["accounts"].append(acc)
                if e.reduce_only_state("account", a):
                    reduce["accounts"].append(acc)
            for i, sym in enumerate(e.instrument_symbols):
                if e.kill_state("instrument", i):
                    kill["instruments"].append(sym)
                if e.reduce_only_state("instrument", i):
                    reduce["instruments"].append(sym)
            c = risk.controls
            kill["scopes"] = sorted(c.kills)  # session:, trader:, strategy: (risk.controls)
            reduce["scopes"] = sorted(c.reduce_only)
            out["overrides"] = [{"id": o.id, "scope": o.scope, "limit": o.limit, "value": o.value,
                                 "until_ns": o.until_ns} for o in risk.overrides.values()]
            out.update(positions=positions, utilisation=util, kill_switch=kill, reduce_only=reduce,
                       halted=c.halts, breakers=[{"code": t.code, "scope": t.scope, "value": t.value,
                                                  "limit": t.limit} for t in c.tripped.values()])

    r.read(read)
    return out


def trading_day_status(gw: Gateway) -> dict[str, Any]:
    from gateway.orders import trading_day as td

    tdc = gw.cfg.trading_day
    archive = gw.cfg.archive_dir
    days = sorted(p.name for p in archive.iterdir() if p.is_dir()) if archive.is_dir() else []
    nxt = td.next_rollover(gw.clock(), tdc.rollover_at, tdc.time_zone) if tdc.rollover_at else None
    return {"day": gw.trading_day, "started": gw.day_started.isoformat(), "time_zone": tdc.time_zone,
            "next_rollover": nxt.isoformat() if nxt else "on demand only (fixgw admin rollover)",
            "archived_days": days, "retention_days": tdc.retention_days,
            "event_log_bytes": td.disk_usage(gw.events.path), "archive_bytes": td.disk_usage(archive)}


SCOPES = ("account", "instrument", "session", "trader", "strategy")


def parse_scope(text: str) -> tuple[str, str]:
    """'global', 'account:ACC1', 'instrument:AAPL', 'session:FIXGW->OMS1', 'trader:T1' or 'strategy:S1' ->
    (scope, name)."""
    if text == "global":
        return "global", ""
    scope, _, name = text.partition(":")
    if scope not in SCOPES or not name:
        raise ValueError("scope must be global, account:NAME, instrument:SYMBOL, session:KEY, trader:NAME or "
                         f"strategy:NAME, not {text!r}")
    return scope, name


class AdminServer:
    def __init__(self, gw: Gateway, path: Path) -> None:
        self.gw = gw
        self.path = path
        self.started = time.monotonic()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_socket():
            self.path.unlink()
        old = os.umask(0o177)  # the socket is born 0600: no window in which others could connect
        try:
            self._server = await asyncio.start_unix_server(self._handle, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        log.info("admin socket listening", extra={"path": str(self.path)})

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            if len(line) > MAX_REQUEST:
                raise ValueError("request too large")
            req = json.loads(line or b"{}")
            if not isinstance(req, dict):
                raise ValueError("a request is a JSON object")
            answer = await self.dispatch(req)
        except Exception as e:  # every failure is an answer, never a dropped connection
            answer = {"ok": False, "error": str(e) or e.__class__.__name__}
        writer.write(json.dumps(answer, default=str).encode() + b"\n")
        try:
            await writer.drain()
        finally:
            writer.close()

    async def dispatch(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = req.get("cmd")
        gw = self.gw
        who, why = str(req.get("who") or ""), str(req.get("why") or "")
        if cmd == "status":
            return {"ok": True, **await asyncio.to_thread(status, gw, self.started)}
        if cmd in ("kill", "reduce_only"):
            scope, name = parse_scope(str(req.get("scope", "")))
            on = req.get("state") == "on"
            if req.get("state") not in ("on", "off"):
                raise ValueError("state must be on or off")
            res = await asyncio.to_thread(gw.set_switch, cmd, scope, name, on, who, why)
            return {"ok": True, **res}
        if cmd == "halt":
            scope, name = parse_scope(str(req.get("scope", "")))
            if scope != "instrument" or req.get("state") not in ("on", "off"):
                raise ValueError("halt needs --symbol and on or off")
            return {"ok": True, **await asyncio.to_thread(gw.set_switch, "halt", scope, name, req.get("state") == "on",
                                                          who, why)}
        if cmd == "override":
            name, _, value = str(req.get("limit", "")).partition("=")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"--limit takes NAME=VALUE, e.g. qty_max=5000, not {req.get('limit')!r}") from None
            until = parse_time(str(req.get("until", "")))
            return {"ok": True, **await asyncio.to_thread(gw.router.set_override, str(req.get("scope", "")),
                                                          name.strip(), number, until, who, why)}
        if cmd == "limits_propose":
            from gateway.control import limits

            return {"ok": True, **await asyncio.to_thread(limits.propose, gw, Path(str(req.get("folder", ""))), who,
                                                          why)}
        if cmd == "limits_approve":
            from gateway.control import limits

            return {"ok": True, **await asyncio.to_thread(limits.approve, gw, str(req.get("version", "")), who, why)}
        if cmd == "breakers":
            return {"ok": True, "breakers": await asyncio.to_thread(gw.router.breakers)}
        if cmd == "clear_breaker":
            if not who or not why:
                raise ValueError("who and why are required for every operator action")
            return {"ok": True, **await asyncio.to_thread(gw.router.clear_breaker, str(req.get("code", "")),
                                                          str(req.get("scope", "")), who, why)}
        if cmd == "reload":
            if not who or not why:
                raise ValueError("who and why are required for every operator action")
            version = await asyncio.to_thread(gw.reload_risk, who, why)
            return {"ok": True, "limits_version": version}
        if cmd in ("logout", "logon"):
            if not who or not why:
                raise ValueError("who and why are required for every operator action")
            return {"ok": True, **await asyncio.to_thread(session_switch, gw, cmd, str(req.get("session", "")),
                                                          who, why)}
        if cmd == "rollover":
            return {"ok": True, **await asyncio.to_thread(gw.rollover, who, why)}
        if cmd == "seq_reset":
            return {"ok": True, **await asyncio.to_thread(gw.seq_reset, str(req.get("session", "")),
                                                          req.get("next_sender"), req.get("next_target"), who, why)}
        raise ValueError(f"unknown command {cmd!r}: status, kill, reduce_only, halt, breakers, clear_breaker, reload, "
                         "override, limits_propose, limits_approve, logout, logon, seq_reset, rollover")


def session_switch(gw: Gateway, cmd: str, key: str, who: str, why: str) -> dict[str, Any]:
    """Log a client or the venue session out (it stays down until `logon`) or let it log on again."""
    known = {k: sid for k, (role, sid) in gw.session_ids().items() if role != "dropcopy"}
    if key not in known:
        raise ValueError(f"unknown session {key!r}: one of {', '.join(sorted(known))}")
    session = sessions.lookup(known[key])
    if session is None:
        raise ValueError(f"session {key} is not running")
    if cmd == "logout":
        session.logout(f"operator logout: {why}")
    else:
        session.logon()
    gw.events.append(schema.Admin(action=f"session {cmd}", scope=key, who=who, why=why, ts=time.time_ns()))
    return {"session": key, "action": cmd}


def request(path: Path, req: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """The `fixgw admin` client side."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps(req).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)
