"""Controls beyond the limit kernel: kill and reduce-only switches by client session, trader and strategy;
trading halts; short-sale locates; self-match prevention; and circuit breakers that trip by themselves.

These key on names (a trader, a strategy, a halted symbol) and on a few sliding counts, so they are plain
Python sets and dicts (tens of nanoseconds each), not kernel arrays. Pure like the rest of `risk`: time comes
in as int nanoseconds, and the gateway feeds every event (live and on replay) and asks the questions.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
from dataclasses import dataclass

from config.risk_models import Kyc
from config.settings import ControlsSettings

SCOPE_KINDS = ("session", "trader", "strategy")
DAY_NS = 86_400 * 1_000_000_000
KILL_CODES = {"session": "KILL_SWITCH_SESSION", "trader": "KILL_SWITCH_TRADER", "strategy": "KILL_SWITCH_STRATEGY"}
BREAKER_CODES = ("REJECT_STORM", "MESSAGE_STORM", "REPEATED_EXECUTIONS")


@dataclass(frozen=True, slots=True)
class Block:
    """Why an order may not go: a reason code and the Text(58) detail."""

    code: str
    detail: str
    value: float = math.nan
    limit: float = math.nan


@dataclass(frozen=True, slots=True)
class Trip:
    """A breaker that has just tripped: its code, the scope it blocks ('session:X', 'account:A',
    'strategy:S'), the count that tripped it and the configured limit."""

    code: str
    scope: str
    value: float
    limit: float


class Window:
    """An exact sliding count of events in the last `span_ns`."""

    __slots__ = ("span", "times")

    def __init__(self, span_ns: int) -> None:
        self.span = span_ns
        self.times: collections.deque[int] = collections.deque()

    def add(self, now_ns: int) -> int:
        t = self.times
        t.append(now_ns)
        edge = now_ns - self.span
        while t[0] <= edge:
            t.popleft()
        return len(t)


def crosses(new_side: str, new_price: float, rest_side: str, rest_price: float) -> bool:
    """Whether a new order would trade against a resting one of the opposite side. NaN is a market order,
    which trades against anything."""
    if (new_side == "1") == (rest_side == "1"):
        return False
    if math.isnan(new_price) or math.isnan(rest_price):
        return True
    return new_price >= rest_price if new_side == "1" else new_price <= rest_price


def strictly_reduces(side: str, qty: float, position: float, open_buys: float, open_sells: float) -> bool:
    """The kernel's reduce-only rule: the order cannot take the position across zero even if every open order
    on its side fills too."""
    if side == "1":
        return position < 0 and position + open_buys + qty <= 0
    return position > 0 and position - open_sells - qty >= 0


class Controls:
    def __init__(self, settings: ControlsSettings, locates: dict[tuple[str, str], float] | None = None,
                 max_price_age_s: float | None = None, kyc: dict[str, Kyc] | None = None) -> None:
        self.settings = settings
        self.locates = dict(locates or {})
        self.kyc = dict(kyc or {})  # empty: no KYC file, no gating
        self._today = ("", 0)  # (YYYY-MM-DD, the ns at which that UTC day ends)
        # When the market-data feed last priced each symbol (ns); None: no feed, nothing can be stale
        self.max_price_age_ns = None if max_price_age_s is None else int(max_price_age_s * 1e9)
        self.priced_at: dict[str, int] = {}
        self.kills: set[str] = set()  # "session:S", "trader:T", "strategy:X"
        self.reduce_only: set[str] = set()
        self.venue_halts: set[str] = set()  # symbols the venue halted (SecurityStatus)
        self.operator_halts: dict[str, str] = {}  # symbol -> the operator who halted it: a venue resume keeps it
        self.tripped: dict[tuple[str, str], Trip] = {}  # (code, scope) -> the trip
        b = settings.breakers
        self._reject_span = int(b.reject_storm_window_s * 1e9)
        self._message_span = int(b.message_storm_window_s * 1e9)
        self._exec_span = int(b.repeated_exec_window_s * 1e9)
        self._rejects: dict[str, Window] = {}
        self._messages: dict[str, Window] = {}
        self._execs: dict[tuple[str, str, str], Window] = {}
        sm = settings.self_match
        self._group_of = {a: g.name for g in sm.groups for a in g.accounts}
        self._group_action = {g.name: g.action or sm.action for g in sm.groups}

    # ---------------------------------------------------------------- switches and halts
    def switch(self, switch: str, scope: str, on: bool) -> None:
        """'kill' or 'reduce_only' on 'session:S', 'trader:T' or 'strategy:X'; ValueError for anything else."""
        kind, _, name = scope.partition(":")
        if kind not in SCOPE_KINDS or not name:
            raise ValueError(f"scope must be one of session:KEY, trader:NAME, strategy:NAME, not {scope!r}")
        target = {"kill": self.kills, "reduce_only": self.reduce_only}.get(switch)
        if target is None:
            raise ValueError(f"unknown switch {switch!r}")
        (target.add if on else target.discard)(scope)

    def halt(self, symbol: str, on: bool, source: str) -> None:
        """source "venue" (SecurityStatus) or "operator ...": each lifts only its own halt."""
        if source == "venue":
            (self.venue_halts.add if on else self.venue_halts.discard)(symbol)
        elif on:
            self.operator_halts[symbol] = source
        else:
            self.operator_halts.pop(symbol, None)

    @property
    def halts(self) -> dict[str, str]:
        """Every halted symbol and who halted it."""
        out = dict.fromkeys(sorted(self.venue_halts), "venue")
        for sym, who in self.operator_halts.items():
            out[sym] = f"{out[sym]} and {who}" if sym in out else who
        return out

    # ---------------------------------------------------------------- what blocks an order
    def blocked(self, session: str, account: str, trader: str, strategy: str, symbol: str) -> Block | None:
        """Kill switches by session, trader and strategy; tripped breakers; halts. None: nothing blocks."""
        if self.kills:
            for kind, name in (("session", session), ("trader", trader), ("strategy", strategy)):
                if name and f"{kind}:{name}" in self.kills:
                    return Block(KILL_CODES[kind], f"kill switch on for {kind} {name}")
        if self.tripped:
            for scope in (f"session:{session}", f"account:{account}", f"strategy:{strategy}" if strategy else ""):
                for code in BREAKER_CODES:
                    trip = self.tripped.get((code, scope))
                    if trip is not None:
                        return Block(code, f"breaker tripped for {scope}; an operator must clear it", trip.value,
                                     trip.limit)
        if (self.venue_halts or self.operator_halts) and (symbol in self.venue_halts or symbol in self.operator_halts):
            return Block("INSTRUMENT_HALTED", f"trading in {symbol} halted ({self.halts[symbol]})")
        return None

    def kyc_block(self, account: str, now_ns: int) -> Block | None:
        """With a KYC file, only an approved account whose review has not expired (UTC date) trades."""
        if not self.kyc:
            return None
        k = self.kyc.get(account)
        if k is None or k.status != "approved":
            return Block("KYC_NOT_APPROVED", f"account {account} KYC status {k.status if k else 'unknown'}")
        day, ends = self._today
        if now_ns >= ends or not day:
            start = now_ns - now_ns % DAY_NS
            day = dt.datetime.fromtimestamp(start / 1e9, dt.timezone.utc).date().isoformat()
            self._today = (day, start + DAY_NS)
        if k.review_expires < day:
            return Block("KYC_REVIEW_EXPIRED", f"account {account} KYC review expired {k.review_expires}")
        return None

    def reduce_only_scope(self, session: str, trader: str, strategy: str) -> str | None:
        """The scope whose reduce-only switch applies to this order, if any."""
        if self.reduce_only:
            for kind, name in (("session", session), ("trader", trader), ("strategy", strategy)):
                if name and f"{kind}:{name}" in self.reduce_only:
                    return f"{kind}:{name}"
        return None

    def price_age_s(self, symbol: str, now_ns: int) -> float | None:
        """Seconds since the feed last priced the symbol; None if it never has (the stated fallback applies)."""
        t = self.priced_at.get(symbol)
        return None if t is None else max(now_ns - t, 0) / 1e9

    def stale(self, symbol: str, now_ns: int) -> Block | None:
        """Fail closed on an old price: once the feed has priced a symbol, its price must stay fresh."""
        if self.max_price_age_ns is None:
            return None
        t = self.priced_at.get(symbol)
        if t is None or now_ns - t <= self.max_price_age_ns:
            return None
        age, limit = (now_ns - t) / 1e9, self.max_price_age_ns / 1e9
        return Block("STALE_REFERENCE_PRICE", f"{symbol} price {age:.2f} s old > max {limit:g} s", age, limit)

    def locate_missing(self, account: str, symbol: str, qty: float, used: float, locate_id: str) -> Block | None:
        """A short sale needs a locate: the client's locate ID, or enough left of the located quantity after
        what the day's short sales already use (filled, and the leaves of open ones)."""
        if not self.settings.short_sale.require_locate or locate_id:
            return None
        located = self.locates.get((account, symbol), 0.0)
        if used + qty > located:
            return Block("SHORT_LOCATE", f"short {used + qty:g} {symbol} with this order > {located:g} located",
                         used + qty, located)
        return None

    # ---------------------------------------------------------------- self-match prevention
    def smp_owner(self, account: str, smp_id: str) -> str:
        """Who owns an order for self-match prevention: the client's SMP ID, else the account's group, else the
        account. '' when self-match prevention is off."""
        if not self.settings.self_match.enabled:
            return ""
        if smp_id:
            return f"id:{smp_id}"
        group = self._group_of.get(account)
        return f"group:{group}" if group else f"account:{account}"

    def smp_action(self, account: str) -> str:
        group = self._group_of.get(account)
        return self._group_action[group] if group else self.settings.self_match.action

    # ---------------------------------------------------------------- breakers
    def on_reject(self, session: str, account: str, code: str, now_ns: int) -> list[Trip]:
        """Count a reject against its session and account; returns the breakers this trips."""
        limit = self.settings.breakers.reject_storm_count
        if not limit or code in BREAKER_CODES:
            return []
        out = []
        for scope in (f"session:{session}", f"account:{account}" if account else ""):
            if not scope or ("REJECT_STORM", scope) in self.tripped:
                continue
            w = self._rejects.get(scope)
            if w is None:
                w = self._rejects[scope] = Window(self._reject_span)
            n = w.add(now_ns)
            if n > limit:
                out.append(Trip("REJECT_STORM", scope, n, limit))
        return out

    def on_message(self, session: str, now_ns: int) -> Trip | None:
        """Count an order-entry message (new, replace, cancel) of a session; a Trip above the storm rate."""
        limit = self.settings.breakers.message_storm_count
        if not limit:
            return None
        scope = f"session:{session}"
        if ("MESSAGE_STORM", scope) in self.tripped:
            return None
        w = self._messages.get(session)
        if w is None:
            w = self._messages[session] = Window(self._message_span)
        n = w.add(now_ns)
        return Trip("MESSAGE_STORM", scope, n, limit) if n > limit else None

    def on_fill(self, account: str, strategy: str, symbol: str, side: str, now_ns: int) -> Trip | None:
        """Count a fill; more than the limit in one instrument and side within the window blocks the strategy
        (the account when the order names no strategy)."""
        limit = self.settings.breakers.repeated_exec_count
        if not limit:
            return None
        scope = f"strategy:{strategy}" if strategy else f"account:{account}"
        if ("REPEATED_EXECUTIONS", scope) in self.tripped:
            return None
        key = (scope, symbol, "1" if side == "1" else "2")
        w = self._execs.get(key)
        if w is None:
            w = self._execs[key] = Window(self._exec_span)
        n = w.add(now_ns)
        return Trip("REPEATED_EXECUTIONS", scope, n, limit) if n > limit else None

    def trip(self, t: Trip) -> None:
        self.tripped[(t.code, t.scope)] = t

    def clear(self, code: str, scope: str) -> bool:
        """Clear a tripped breaker; False if it was not tripped. Its count starts again from zero."""
        if self.tripped.pop((code, scope), None) is None:
            return False
        kind, _, name = scope.partition(":")
        if code == "REJECT_STORM":
            self._rejects.pop(scope, None)
        elif code == "MESSAGE_STORM":
            self._messages.pop(name, None)
        else:
            for key in [k for k in self._execs if k[0] == scope]:
                del self._execs[key]
        return True

    # ---------------------------------------------------------------- state (checkpoints)
    def state(self) -> dict[str, object]:
        """What the event log's switches, halts and breaker events built (a checkpoint keeps it)."""
        return {"kills": sorted(self.kills), "reduce_only": sorted(self.reduce_only),
                "venue_halts": sorted(self.venue_halts), "operator_halts": dict(self.operator_halts),
                "tripped": [(t.code, t.scope, t.value, t.limit) for t in self.tripped.values()]}

    def load_state(self, d: dict[str, object]) -> None:
        self.kills = set(d["kills"])  # type: ignore[call-overload]
        self.reduce_only = set(d["reduce_only"])  # type: ignore[call-overload]
        self.venue_halts = set(d["venue_halts"])  # type: ignore[call-overload]
        self.operator_halts = dict(d["operator_halts"])  # type: ignore[call-overload]
        self.tripped = {(c, s): Trip(c, s, v, lim) for c, s, v, lim in d["tripped"]}  # type: ignore[attr-defined]
