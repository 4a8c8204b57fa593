"""The order path: client requests in, decisions, venue requests out, venue reports routed back.

Router joins the client side (client_side.py) and the venue side (venue_side.py) around the state it owns:
the ledger, the risk state and the lock that guards both (the control plane goes through its methods here).

Everything here runs on QuickFIX's socket threads: a client's message is decided and forwarded on that
session's thread, the venue's reports are routed on the initiator's. One lock guards the ledger and the risk
state; it is never held while calling QuickFIX (sends take the session's own mutex, and QuickFIX calls back
into toApp under that mutex, so holding ours across a send could deadlock against the other thread).

Every decision and every state change is appended to the event log before the gateway acts on it.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, TypeVar

from config.settings import GatewayConfig
from gateway.events import schema
from gateway.events.log import EventLog
from gateway.fix import messages as fm
from gateway.fix import sessions, translate
from gateway.fix.sessions import SessionID, copy_sid, session_key, sid_key
from gateway.orders import trading_day as td
from gateway.orders.client_side import ClientSide
from gateway.orders.ledger import Ledger
from gateway.orders.lifecycle import apply_rejected, replay_log
from gateway.orders.requests import NewOrder, RiskChecks, Sent, Verdict, none_if_nan
from gateway.orders.venue_side import VenueSide
from risk.controls import Trip
from risk.overrides import Override
from risk.reasons import reason

log = logging.getLogger("fixgw.router")
T = TypeVar("T")


class Router(ClientSide, VenueSide):
    def __init__(self, cfg: GatewayConfig, events: EventLog, ledger: Ledger | None = None,
                 risk: RiskChecks | None = None, id_prefix: str = "G", alert: Any = None) -> None:
        self.cfg = cfg
        self.events = events
        self.ledger = ledger or Ledger()
        self.risk = risk
        self.lock = threading.Lock()
        self.id_prefix = id_prefix
        self.clients: dict[str, SessionID] = {}
        # Per client session, keyed the way the order path knows it: entitlements, the account used when
        # Account(1) is absent, the configured SessionID (a logged-out client's reports still go to its
        # store) and how it speaks.
        self.accounts: dict[str, frozenset[str]] = {}
        self.default_account: dict[str, str] = {}
        self.client_sids: dict[str, SessionID] = {}
        self.dialects: dict[str, translate.Dialect] = {}
        for c in cfg.acceptor.clients:
            key = session_key(c.target_comp_id, c.sender_comp_id)
            self.accounts[key] = frozenset(c.accounts)
            if c.default_account:
                self.default_account[key] = c.default_account
            self.client_sids[key] = sessions.session_id(c.begin_string, c.target_comp_id, c.sender_comp_id)
            self.dialects[key] = translate.Dialect(c.begin_string, frozenset(c.extra_tags))
        all_extra = sorted({t for c in cfg.acceptor.clients for t in c.extra_tags} | set(cfg.venue.extra_tags))
        self.venue_dialect = translate.Dialect(cfg.venue.begin_string, frozenset(all_extra))
        # Requests sent to the venue and not yet answered: by venue ClOrdID, and by MsgSeqNum for the venue's
        # session-level Rejects (35=3), which name only the RefSeqNum.
        self.awaiting: dict[str, Sent] = {}
        self.sent_seq: dict[int, Sent] = {}
        self.status_unsupported: set[int] = set()  # orders whose status request the venue refused
        self._alert = alert or (lambda code: None)
        # Who is logged on is kept by the client sessions' Application (watch_logons); nothing else keeps a copy.
        self._logged_on: Callable[[], set[str]] = set
        self.venue: SessionID | None = None
        self.venue_up = False
        self.stopping = False
        self.unroutable = 0
        # Venue ClOrdIDs of requests QuickFIX refused to (re)send: answered at once where no session mutex is held
        # (_not_sent), by housekeeping for those found inside the venue's toApp (a resend being gap-filled).
        self.undelivered: collections.deque[str] = collections.deque()
        # Of those, the ones the venue's FIX version cannot express, with why (answered as such, not VENUE_DOWN).
        self.untranslatable: dict[str, str] = {}
        # Client sessions whose store a rollover resets: their reports wait here, not in the old store that the
        # reset wipes, and go out as new messages once the session has logged on to the new day (a Logon with
        # ResetSeqNumFlag would wipe a store again). `_ready`: the rollover is over, waiting for that Logon.
        self._held: dict[str, list[fm.Message]] = {}
        self._ready: set[str] = set()
        self._held_lock = threading.Lock()
        # The drop-copy fills mirrored into the risk state, by FillRecord.mirror_key (changed under the lock
        # with it): a rollover carries them inside the positions, and a start must not mirror those again.
        self.mirrored: set[str] = set()

    # ---------------------------------------------------------------- sessions
    def watch_logons(self, logged_on: Callable[[], set[str]]) -> None:
        """Where to ask which client sessions are logged on (the client Application's session_keys)."""
        self._logged_on = logged_on

    @property
    def logged_on(self) -> set[str]:
        return self._logged_on()

    def client_logon(self, sid: SessionID) -> None:
        key = sid_key(sid)
        self.clients[key] = copy_sid(sid)
        log.info("client session logged on", extra={"session": key})

    def client_logout(self, sid: SessionID) -> None:
        key = sid_key(sid)
        log.info("client session logged out", extra={"session": key})

    def venue_logon(self, sid: SessionID) -> None:
        self.venue = copy_sid(sid)
        with self.lock:
            # A new connection may have new sequence numbers: old RefSeqNums can no longer be matched.
            self.sent_seq.clear()
        self.venue_up = True
        log.info("venue session logged on", extra={"session": sid_key(sid)})

    def venue_logout(self, sid: SessionID) -> None:
        was_up, self.venue_up = self.venue_up, False
        if self.stopping or not was_up:
            log.info("venue session logged out", extra={"session": sid_key(sid)})
            return
        log.warning("venue session down: new orders are rejected with VENUE_DOWN", extra={"session": sid_key(sid)})

    # ---------------------------------------------------------------- the state's owner
    # The router owns the order path's state: the ledger, the risk state and the lock that guards both. The
    # control plane reads and changes it only through these methods; no other module takes the lock.
    def read(self, fn: Callable[[Ledger, Any], T]) -> T:
        """fn(ledger, risk) under the lock, for status and gauges: it must only read."""
        with self.lock:
            return fn(self.ledger, self.risk)

    def responsive(self, timeout: float) -> bool:
        """Whether the order path releases its lock within `timeout` (the watchdog's probe)."""
        if not self.lock.acquire(timeout=timeout):
            return False
        self.lock.release()
        return True

    def mirror(self, account: str, symbol: str, side: str, qty: float, px: float, key: str,
               sign: int) -> bool:
        """Move positions by a drop-copy fill the gateway never saw (+1) or take that back (-1); the keys
        (trading day and ExecID) of the fills inside positions are kept with them (a rollover carries both)."""
        if self.risk is None:
            return False
        with self.lock:
            if not self.risk.mirror(account, symbol, side, qty, px, sign):
                return False
            (self.mirrored.add if sign > 0 else self.mirrored.discard)(key)
            return True

    def mark_mirrored(self, key: str) -> None:
        """A fill already inside the positions the day began with (carried by the rollover)."""
        with self.lock:
            self.mirrored.add(key)

    def is_mirrored(self, key: str) -> bool:
        with self.lock:
            return key in self.mirrored

    def operator_switch(self, ev: schema.Admin) -> None:
        """A kill switch or reduce-only change: applied, then logged; a bad one raises and logs nothing."""
        if self.risk is None:
            raise ValueError("no risk engine: switches need it")
        with self.lock:
            self.risk.apply_admin(ev)
            self.events.append(ev)

    def swap_limits(self, new_cfg: Any, who: str, why: str) -> tuple[str, str]:
        """New limits and reference data in force for the next order, atomically; logged with both versions."""
        if self.risk is None:
            raise ValueError("no risk engine: nothing to swap")
        with self.lock:
            old = self.risk.limits_version
            old_kyc = dict(self.risk.controls.kyc)
            new = self.risk.swap_config(new_cfg)
            now = time.time_ns()
            self.events.append(schema.Admin(action="reload", scope="limits", who=who, why=why,
                                            detail={"from": old, "to": new}, ts=now))
            for acc, k in sorted(self.risk.controls.kyc.items()):  # each KYC change journaled on its own
                was = old_kyc.get(acc)
                if was != k:
                    self.events.append(schema.Admin(
                        action="kyc", scope=f"account:{acc}", who=who, why=why, ts=now,
                        detail={"from": was.model_dump() if was else None, "to": k.model_dump()}))
        return old, new

    def roll_day(self, new: str, previous: str, who: str, why: str, carry_kill: bool, carry_reduce_only: bool,
                 keep_ids: frozenset[str], archive_to: Any) -> tuple[list[dict[str, Any]], dict[tuple[str, str], float]]:
        """The trading-day boundary, under the lock: log the rollover, write what carries over as the new day's
        first events (gateway.orders.trading_day), archive the old day, and rebuild the state from those events
        exactly as a start would. Returns the DAY orders still open and the carried positions."""
        with self.lock:
            ledger = self.ledger
            day_open = td.day_orders(ledger)
            self.events.append(schema.Admin(action="rollover", scope="trading-day", who=who, why=why,
                                            detail={"from": previous, "to": new, "open_orders": len(ledger.open),
                                                    "day_orders_open": len(day_open)}, ts=time.time_ns()))
            carried: list[schema.Event] = [schema.DayStart(
                prefix=self.id_prefix, day=new, previous=previous, next_number=ledger.next_number,
                request=ledger.next_request, ts=time.time_ns())]
            if self.risk is not None:
                carried += self.risk.carry(carry_kill, carry_reduce_only)
            if self.mirrored:  # drop-copy fills already inside the carried positions
                carried.append(schema.Mirrored(exec_ids=sorted(self.mirrored)))
            carried += td.carried_orders(ledger)
            carried += td.carried_ids(ledger, keep_ids)
            positions = {(ev.account, ev.symbol): ev.qty for ev in carried if isinstance(ev, schema.Position)}
            fresh = Ledger()

            def switch_over() -> None:  # the new day's file is in place: rebuild from it, exactly as a start
                if self.risk is not None:
                    self.risk.new_day()
                    self.risk.fills = fresh.fills
                replay_log(carried, fresh, self.risk)
                self.ledger = fresh
                self.awaiting = {v: x for v, x in self.awaiting.items() if v in fresh.by_venue}
                self.sent_seq = {q: x for q, x in self.sent_seq.items() if x.venue_cl_ord_id in fresh.by_venue}
                self.status_unsupported &= set(fresh.open)

            self.events.roll(carried, archive_to, inside=switch_over)
        return day_open, positions

    # ---------------------------------------------------------------- helpers
    @property
    def _limits_version(self) -> str:
        return self.risk.limits_version if self.risk is not None else ""

    def _next_venue_id(self) -> str:
        self.ledger.next_request += 1
        return f"{self.id_prefix}{self.ledger.next_request}"

    def _record_reject(self, kind: str, o: NewOrder, v: Verdict, orig: str = "", ck: int | None = None,
                       defaulted: bool = False, ref: tuple[float | None, str, float | None] | None = None) -> None:
        ev = schema.Rejected(request_kind=kind, session=o.session, cl_ord_id=o.cl_ord_id, orig_cl_ord_id=orig,
                             account=o.account, symbol=o.symbol, side=o.side, qty=none_if_nan(o.qty), px=none_if_nan(o.price),
                             code=v.code or "", detail=v.detail, value=none_if_nan(v.value), limit=none_if_nan(v.limit),
                             warnings=v.warnings, limits_version=self._limits_version, check_ns=ck,
                             ts=time.time_ns(), account_defaulted=1 if defaulted else 0, trader=o.trader,
                             strategy=o.strategy, ref=ref)
        self.events.append(ev)
        apply_rejected(self.ledger, ev)
        if self.risk is not None and v.code:
            # Only accounts the session may trade: a storm of made-up ones must not grow a window each.
            account = o.account if o.account in self.accounts.get(o.session, ()) else ""
            for t in self.risk.controls.on_reject(o.session, account, v.code, self.risk.clock()):
                self._trip(t)

    # ---------------------------------------------------------------- circuit breakers (risk.controls)
    def _count_message(self, skey: str) -> bool:
        """Count an order-entry message against the session's storm rate (under the lock); True: it just
        tripped, and the caller logs the session out once the lock is released (_storm_out)."""
        if self.risk is None:
            return False
        t = self.risk.controls.on_message(skey, self.risk.clock())
        if t is None:
            return False
        self._trip(t)
        return True

    def _trip(self, t: Trip) -> None:
        """A breaker trips (under the lock): logged, in force for the next order, and alerted at once."""
        assert self.risk is not None
        ev = schema.Breaker(action="trip", code=t.code, scope=t.scope, value=t.value, limit=t.limit, who="gateway",
                            why=f"{t.value:g} in the window > {t.limit:g}", ts=time.time_ns())
        self.events.append(ev)
        self.risk.breaker(ev)
        self._alert(t.code)
        log.error("%s: circuit breaker tripped for %s; see %s", t.code, t.scope, reason(t.code).runbook,
                  extra={"code": t.code, "scope": t.scope, "value": t.value, "limit": t.limit})

    def _storm_out(self, skey: str) -> None:
        """The second step of the message throttle, as exchanges do it: the session is logged out (and stays
        out until the breaker is cleared) and its open orders are cancelled."""
        self._hold_out(skey)
        self.cancel_orders(lambda o: o.session == skey, "MESSAGE_STORM: session logged out for a message storm")

    def _client_session(self, skey: str) -> Any:
        sid = self.clients.get(skey) or self.client_sids.get(skey)
        return sessions.lookup(sid) if sid is not None else None

    def _hold_out(self, skey: str) -> None:
        session = self._client_session(skey)
        if session is not None:  # disabled: QuickFIX refuses its Logons until logon() (clear_breaker)
            session.logout("MESSAGE_STORM: message rate above the storm limit; an operator must clear the breaker")

    def hold_storm_sessions(self) -> list[str]:
        """At a start: the sessions whose message-storm breaker is still tripped stay logged out."""
        if self.risk is None:
            return []
        with self.lock:
            held = [t.scope.partition(":")[2] for t in self.risk.controls.tripped.values()
                    if t.code == "MESSAGE_STORM" and t.scope.startswith("session:")]
        for skey in held:
            self._hold_out(skey)
        return held

    def clear_breaker(self, code: str, scope: str, who: str, why: str) -> dict[str, Any]:
        """An operator clears a tripped breaker (journaled with who and why); a message-storm session may log on
        again."""
        if self.risk is None:
            raise ValueError("no risk engine: breakers need it")
        with self.lock:
            if (code, scope) not in self.risk.controls.tripped:
                raise ValueError(f"no tripped {code} breaker for {scope!r}: see `fixgw admin breakers`")
            ev = schema.Breaker(action="clear", code=code, scope=scope, who=who, why=why, ts=time.time_ns())
            self.events.append(ev)
            self.risk.breaker(ev)
        kind, _, name = scope.partition(":")
        if code == "MESSAGE_STORM" and kind == "session":
            session = self._client_session(name)
            if session is not None:
                session.logon()  # lets the acceptor take its Logon again
        log.warning("circuit breaker cleared", extra={"code": code, "scope": scope, "who": who, "why": why})
        return {"code": code, "scope": scope, "cleared": True}

    # ---------------------------------------------------------------- temporary limit overrides (risk.overrides)
    def set_override(self, scope: str, limit: str, value: float, until_ns: int, who: str, why: str) -> dict[str, Any]:
        """One limit of one scope raised or lowered until `until_ns`; refused (ValueError) if it does not fit."""
        if self.risk is None:
            raise ValueError("no risk engine: overrides need it")
        if not who or not why:
            raise ValueError("who and why are required for every operator action")
        with self.lock:
            now = time.time_ns()
            if until_ns <= now:
                raise ValueError("an override's --until must be in the future")
            oid = f"{now // 1_000_000 % 10**9:09d}"  # unique enough among the day's overrides, and short
            ov = Override(oid, scope, limit, value, until_ns)
            self.risk.check_override(ov)
            ev = schema.Override(action="set", id=oid, scope=scope, limit=limit, value=value, until=until_ns, who=who,
                                 why=why, ts=now)
            self.events.append(ev)
            self.risk.override(ev)
            version = self.risk.limits_version
        log.warning("limit override set", extra={"id": oid, "scope": scope, "limit": limit, "value": value,
                                                 "until_ns": until_ns, "who": who, "why": why})
        return {"id": oid, "scope": scope, "limit": limit, "value": value, "until_ns": until_ns,
                "limits_version": version}

    def expire_overrides(self, now_ns: int) -> list[str]:
        """End the overrides whose time has come (housekeeping, every second): the limits go back by themselves."""
        if self.risk is None or not self.risk.overrides:
            return []
        ended = []
        with self.lock:
            for o in self.risk.expired_overrides(now_ns):
                ev = schema.Override(action="end", id=o.id, scope=o.scope, limit=o.limit, who="gateway",
                                     why="expired", ts=time.time_ns())
                self.events.append(ev)
                self.risk.override(ev)
                ended.append(o.id)
        if ended:
            log.warning("limit overrides expired", extra={"ids": ended})
        return ended

    # ---------------------------------------------------------------- market data (the venue's feed)
    def market_data(self, quotes: list[Any]) -> int:
        """Prices from the market-data session (gateway.fix.market_data.Quote): each symbol's reference from now
        on. Returns how many symbols were priced."""
        if self.risk is None:
            return 0
        n = 0
        with self.lock:
            now = self.risk.clock()
            for q in quotes:
                n += self.risk.market_quote(q.symbol, q.bid, q.ask, q.last, now)
        return n

    def venue_halt(self, symbol: str, halted: bool, text: str) -> None:
        """SecurityStatus from the venue: a halt (or its end) in force for the next order, and logged."""
        if self.risk is None:
            return
        with self.lock:
            if (symbol in self.risk.controls.venue_halts) == halted:
                return  # the venue repeating what we know (an answer to a status request)
            ev = schema.Halt(symbol=symbol, halted=halted, text=text, ts=time.time_ns())
            self.events.append(ev)
            self.risk.halt(ev)
        log.warning("venue %s trading in %s", "halted" if halted else "resumed", symbol, extra={"text": text})

    def breakers(self) -> list[dict[str, Any]]:
        """The tripped breakers and halts, for `fixgw admin breakers`."""
        if self.risk is None:
            return []
        with self.lock:
            c = self.risk.controls
            out = [{"code": t.code, "scope": t.scope, "value": t.value, "limit": t.limit} for t in c.tripped.values()]
            out += [{"code": "INSTRUMENT_HALTED", "scope": f"instrument:{sym}", "source": src}
                    for sym, src in sorted(c.halts.items())]
        return out

    def _send_venue(self, msg: fm.Message) -> bool:
        sid = self.venue
        if sid is None:
            return False
        if not self.venue_dialect.identity:
            try:
                msg = translate.outbound(msg, self.venue_dialect)
            except translate.Untranslatable as e:
                # Never send the venue a different order than the client's: the client is told it was not sent.
                log.error("request cannot be expressed in the venue's FIX version: not sent",
                          extra={"tag": e.tag, "value": e.value, "reason": str(e)})
                self.untranslatable[fm.get(msg, fm.CL_ORD_ID)] = str(e)
                return False
        return sessions.send(msg, sid)

    def _send_client(self, msg: fm.Message, skey: str) -> None:
        d = self.dialects.get(skey)
        if d is not None and not d.identity:
            try:
                msg = translate.outbound(msg, d)
            except translate.Untranslatable as e:
                log.error("report cannot be expressed in the client's FIX version: kept in the event log only",
                          extra={"session": skey, "tag": e.tag, "value": e.value, "reason": str(e)})
                return
        if self._held:  # empty but around a rollover: no lock on the order path
            with self._held_lock:
                held = self._held.get(skey)
                if held is not None:
                    held.append(msg)
                    return
        self._to_client(msg, skey)

    def _to_client(self, msg: fm.Message, skey: str) -> None:
        sid = self.clients.get(skey) or self.client_sids.get(skey)
        if sid is None:  # not a configured client: there is no store to keep it in either
            log.error("no such client session: report kept in the event log only", extra={"session": skey})
            return
        # A client that is logged out gets it on logon: QuickFIX stores it and the client's resend request fetches it.
        if not sessions.send(msg, sid) and sessions.lookup(sid) is None:
            log.error("client session not found: report kept in the event log only", extra={"session": skey})

    def hold_reports(self, keys: set[str]) -> None:
        """Keep what would go to these client sessions until release_reports (a rollover resets their stores)."""
        with self._held_lock:
            for k in keys:
                self._held.setdefault(k, [])

    def release_reports(self, keys: set[str]) -> int:
        """The rollover is over for these sessions: what was held goes out once each has logged on again
        (now, for those already on; else from housekeeping). Returns how many reports were held."""
        with self._held_lock:
            for k in keys:  # nothing came for it meanwhile: its reports go the usual way (QuickFIX's store) again
                if not self._held.get(k):
                    self._held.pop(k, None)
            waiting = {k for k in keys if k in self._held}
            self._ready |= waiting
            n = sum(len(self._held[k]) for k in waiting)
        self.deliver_held()
        return n

    def deliver_held(self) -> int:
        """Send, in order, the held reports of released sessions that are logged on; returns how many."""
        if not self._ready:
            return 0
        n = 0
        up = self.logged_on
        for k in [k for k in list(self._ready) if k in up]:
            while True:  # sent outside the lock (sendToTarget takes the session's mutex); a report made
                with self._held_lock:  # meanwhile joins the next batch, so none overtakes those that waited
                    batch = self._held.get(k)
                    if not batch:
                        self._held.pop(k, None)
                        self._ready.discard(k)
                        break
                    self._held[k] = []
                for msg in batch:
                    self._to_client(msg, k)
                    n += 1
        return n
