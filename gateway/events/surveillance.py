"""Trade surveillance after the fact (MiFID II RTS 6 Article 13): a day's event log searched for patterns of
market abuse, each an alert with its own code and runbook.

- WASH_TRADE: the same beneficial owner bought and sold the same instrument within `wash_window_s`. One alert
  per owner and instrument per window: a market maker's flow would otherwise raise one with every fill.
- ORDER_TO_TRADE: an account's order messages (new, replace, cancel) in an instrument over its fills is above
  `otr_max`, once it sent at least `otr_min_orders`.
- LAYERING: after a fill on one side, the account cancelled at least `layering_min_cancels` of its orders on
  the other side of the same instrument within `layering_window_s` (orders placed to move the price, pulled once
  the real order traded).
- CANCEL_RATE: an account's client cancels over its new orders is above `cancel_rate_max`, once it sent at least
  `cancel_rate_min_orders`.

Pure: the events come in, the alerts go out. The running gateway follows its event log with it and logs each
alert as an event (gateway.events.surveillance_feed); `fixgw surveillance` reads a day's log and prints them. The
beneficial owner of an account is its self-match group when it is in one ([controls.self_match] groups), else
the account itself.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, Iterable

from config.settings import SurveillanceSettings
from gateway.events import schema

CODES = ("WASH_TRADE", "ORDER_TO_TRADE", "LAYERING", "CANCEL_RATE")


@dataclass(frozen=True, slots=True)
class Alert:
    code: str
    account: str
    symbol: str
    ts: int  # when the pattern completed (ns)
    detail: str
    value: float
    limit: float
    orders: tuple[str, ...] = ()  # the client ClOrdIDs involved


@dataclass
class _Book:
    """What one account did in one instrument, as the day goes."""

    messages: int = 0
    fills: int = 0


class Detector:
    """The patterns, followed event by event: `on_event` returns the alerts an event completes.

    The live gateway (gateway.events.surveillance_feed) and `fixgw surveillance` both run this, so the alerts
    raised during the day are exactly those a scan of the day's log finds. Each alert is raised once: a wash
    trade per owner and instrument per window, layering per fill, the two ratios per account (and instrument)
    per day, when they first cross their threshold (the value is the ratio at that moment)."""

    def __init__(self, s: SurveillanceSettings, owners: dict[str, str] | None = None) -> None:
        self.s = s
        self.owners = owners or {}
        self._wash_ns, self._layer_ns = int(s.wash_window_s * 1e9), int(s.layering_window_s * 1e9)
        self.new_day()

    def new_day(self) -> None:
        self._books: dict[tuple[str, str], _Book] = collections.defaultdict(_Book)
        self._owner_fills: dict[tuple[str, str], dict[str, tuple[int, str, str]]] = collections.defaultdict(dict)
        self._news: collections.Counter[str] = collections.Counter()
        self._cancels: collections.Counter[str] = collections.Counter()
        # (account, symbol) -> cancels of the other side after a fill: (fill ts, fill side, ClOrdIDs cancelled)
        self._after_fill: dict[tuple[str, str], tuple[int, str, list[str]]] = {}
        self._raised: set[tuple[str, str, str]] = set()  # the ratios already alerted today
        self._washed: dict[tuple[str, str], int] = {}  # (owner, symbol) -> when its last wash alert was raised

    def on_event(self, ev: schema.AnyEvent) -> list[Alert]:
        if isinstance(ev, schema.NewOrder):
            self._news[ev.account] += 1
            return self._message(ev)
        if isinstance(ev, schema.Replace):
            return self._message(ev)
        if isinstance(ev, schema.Cancel):
            out = self._message(ev)
            if ev.by != "gateway":  # the gateway's own cancels (kill switch, self-match) are not the client's doing
                out += self._client_cancel(ev)
            return out
        if isinstance(ev, schema.Execution) and ev.exec_type == "F":
            return self._fill(ev)
        if isinstance(ev, schema.DayStart) and ev.day:
            self.new_day()
        return []

    def _message(self, ev: schema.NewOrder | schema.AmendRequest) -> list[Alert]:
        book = self._books[(ev.account, ev.symbol)]
        book.messages += 1
        s = self.s
        if book.messages < s.otr_min_orders or ("ORDER_TO_TRADE", ev.account, ev.symbol) in self._raised:
            return []
        ratio = book.messages / max(book.fills, 1)
        if ratio <= s.otr_max:
            return []
        self._raised.add(("ORDER_TO_TRADE", ev.account, ev.symbol))
        return [Alert("ORDER_TO_TRADE", ev.account, ev.symbol, ev.ts,
                      f"{book.messages} order messages for {book.fills} fills", ratio, s.otr_max)]

    def _client_cancel(self, ev: schema.Cancel) -> list[Alert]:
        s, out = self.s, []
        self._cancels[ev.account] += 1
        pending = self._after_fill.get((ev.account, ev.symbol))
        if pending is not None and ev.ts - pending[0] <= self._layer_ns and _side(ev.side) != pending[1]:
            pending[2].append(ev.cl_ord_id)
            if len(pending[2]) == s.layering_min_cancels:
                out.append(Alert("LAYERING", ev.account, ev.symbol, ev.ts,
                                 f"{len(pending[2])} orders on the other side cancelled within "
                                 f"{(ev.ts - pending[0]) / 1e9:.2f} s of a fill", len(pending[2]),
                                 s.layering_min_cancels, tuple(pending[2])))
        n, c = self._news[ev.account], self._cancels[ev.account]
        if n >= s.cancel_rate_min_orders and c / n > s.cancel_rate_max \
                and ("CANCEL_RATE", ev.account, "") not in self._raised:
            self._raised.add(("CANCEL_RATE", ev.account, ""))
            out.append(Alert("CANCEL_RATE", ev.account, "", ev.ts, f"{c} cancels of {n} orders", c / n,
                             s.cancel_rate_max))
        return out

    def _fill(self, ev: schema.Execution) -> list[Alert]:
        self._books[(ev.account, ev.symbol)].fills += 1
        side = _side(ev.side)
        self._after_fill[(ev.account, ev.symbol)] = (ev.ts, side, [])
        owner = self.owners.get(ev.account, ev.account)
        seen = self._owner_fills[(owner, ev.symbol)]
        other = seen.get("2" if side == "1" else "1")
        seen[side] = (ev.ts, ev.cl_ord_id, ev.account)
        if other is None or ev.ts - other[0] > self._wash_ns \
                or ev.ts - self._washed.get((owner, ev.symbol), -self._wash_ns - 1) <= self._wash_ns:
            return []
        self._washed[(owner, ev.symbol)] = ev.ts
        return [Alert("WASH_TRADE", ev.account, ev.symbol, ev.ts,
                      f"{owner} bought and sold {ev.symbol} {(ev.ts - other[0]) / 1e9:.2f} s apart "
                      f"({other[2]} and {ev.account})", (ev.ts - other[0]) / 1e9, self.s.wash_window_s,
                      (other[1], ev.cl_ord_id))]


def scan(events: Iterable[schema.AnyEvent], s: SurveillanceSettings, owners: dict[str, str] | None = None
         ) -> list[Alert]:
    """Every alert of a day's events, in the order the patterns completed."""
    detector = Detector(s, owners)
    return [a for ev in events for a in detector.on_event(ev)]


def _side(side: str) -> str:
    return "1" if side == "1" else "2"


def render(alerts: list[Alert], day: str, fmt: str) -> str:
    rows = [{"code": a.code, "account": a.account, "symbol": a.symbol, "ts": a.ts, "detail": a.detail,
             "value": a.value, "limit": a.limit, "orders": " ".join(a.orders)} for a in alerts]
    if fmt == "json":
        import json

        return json.dumps({"day": day, "alerts": rows}, indent=1)
    counts = collections.Counter(a.code for a in alerts)
    lines = [f"# Surveillance of trading day {day}", "",
             f"{len(alerts)} alerts: " + (", ".join(f"{c} {counts[c]}" for c in CODES if counts[c]) or "none"), ""]
    if rows:
        lines += ["| code | account | symbol | detail | value | limit | orders | runbook |", "|---" * 8 + "|"]
        for r in rows:
            lines.append(f"| {r['code']} | {r['account']} | {r['symbol']} | {r['detail']} | {r['value']:g} | "
                         f"{r['limit']:g} | {r['orders']} | docs/runbooks/{r['code']}.md |")
    return "\n".join(lines) + "\n"


def owners_of(cfg: Any) -> dict[str, str]:
    """Account -> beneficial owner: its self-match group, when it is in one."""
    return {a: g.name for g in cfg.controls.self_match.groups for a in g.accounts}
