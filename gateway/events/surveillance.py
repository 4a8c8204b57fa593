"""Trade surveillance after the fact (MiFID II RTS 6 Article 13): a day's event log searched for patterns of
market abuse, each an alert with its own code and runbook.

- WASH_TRADE: the same beneficial owner bought and sold the same instrument within `wash_window_s`.
- ORDER_TO_TRADE: an account's order messages (new, replace, cancel) in an instrument over its fills is above
  `otr_max`, once it sent at least `otr_min_orders`.
- LAYERING: after a fill on one side, the account cancelled at least `layering_min_cancels` of its orders on
  the other side of the same instrument within `layering_window_s` (orders placed to move the price, pulled once
  the real order traded).
- CANCEL_RATE: an account's client cancels over its new orders is above `cancel_rate_max`, once it sent at least
  `cancel_rate_min_orders`.

Pure: the events come in, the alerts go out; `fixgw surveillance` reads a day's log and prints them. The
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


def scan(events: Iterable[schema.AnyEvent], s: SurveillanceSettings, owners: dict[str, str] | None = None
         ) -> list[Alert]:
    """Every alert of a day's events, in the order the patterns completed."""
    owners = owners or {}
    out: list[Alert] = []
    books: dict[tuple[str, str], _Book] = collections.defaultdict(_Book)
    owner_fills: dict[tuple[str, str], dict[str, tuple[int, str, str]]] = collections.defaultdict(dict)
    news: collections.Counter[str] = collections.Counter()
    cancels: collections.Counter[str] = collections.Counter()
    # (account, symbol) -> cancels of the other side after a fill: (fill ts, fill side, ClOrdIDs cancelled)
    after_fill: dict[tuple[str, str], tuple[int, str, list[str]]] = {}
    wash_ns, layer_ns = int(s.wash_window_s * 1e9), int(s.layering_window_s * 1e9)
    for ev in events:
        if isinstance(ev, schema.NewOrder):
            news[ev.account] += 1
            books[(ev.account, ev.symbol)].messages += 1
        elif isinstance(ev, schema.Replace):
            books[(ev.account, ev.symbol)].messages += 1
        elif isinstance(ev, schema.Cancel):
            books[(ev.account, ev.symbol)].messages += 1
            if ev.by == "gateway":
                continue  # the gateway's own cancels (kill switch, self-match) are not the client's doing
            cancels[ev.account] += 1
            pending = after_fill.get((ev.account, ev.symbol))
            if pending is not None and ev.ts - pending[0] <= layer_ns and _side(ev.side) != pending[1]:
                pending[2].append(ev.cl_ord_id)
                if len(pending[2]) == s.layering_min_cancels:
                    out.append(Alert("LAYERING", ev.account, ev.symbol, ev.ts,
                                     f"{len(pending[2])} orders on the other side cancelled within "
                                     f"{(ev.ts - pending[0]) / 1e9:.2f} s of a fill", len(pending[2]),
                                     s.layering_min_cancels, tuple(pending[2])))
        elif isinstance(ev, schema.Execution) and ev.exec_type == "F":
            book = books[(ev.account, ev.symbol)]
            book.fills += 1
            side = _side(ev.side)
            after_fill[(ev.account, ev.symbol)] = (ev.ts, side, [])
            owner = owners.get(ev.account, ev.account)
            seen = owner_fills[(owner, ev.symbol)]
            other = seen.get("2" if side == "1" else "1")
            if other is not None and ev.ts - other[0] <= wash_ns:
                out.append(Alert("WASH_TRADE", ev.account, ev.symbol, ev.ts,
                                 f"{owner} bought and sold {ev.symbol} {(ev.ts - other[0]) / 1e9:.2f} s apart "
                                 f"({other[2]} and {ev.account})", (ev.ts - other[0]) / 1e9, s.wash_window_s,
                                 (other[1], ev.cl_ord_id)))
            seen[side] = (ev.ts, ev.cl_ord_id, ev.account)
    for (account, symbol), book in sorted(books.items()):
        if book.messages >= s.otr_min_orders:
            ratio = book.messages / max(book.fills, 1)
            if ratio > s.otr_max:
                out.append(Alert("ORDER_TO_TRADE", account, symbol, 0,
                                 f"{book.messages} order messages for {book.fills} fills", ratio, s.otr_max))
    for account, n in sorted(news.items()):
        if n >= s.cancel_rate_min_orders and cancels[account] / n > s.cancel_rate_max:
            out.append(Alert("CANCEL_RATE", account, "", 0, f"{cancels[account]} cancels of {n} orders",
                             cancels[account] / n, s.cancel_rate_max))
    return out


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
