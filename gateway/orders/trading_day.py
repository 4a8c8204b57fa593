"""Trading days: what one day hands the next, and when a day ends.

A rollover writes the carried state as the first events of the new day's event log (gateway.events.log.roll) and
then rebuilds the in-memory state by replaying exactly those events, the same code a start runs. So the state
after a live rollover and after a restart on the new day cannot differ, and a start reads one day, never the
history.

What carries over (the stated policy):
- open orders (GTC, GTD, and DAY orders the venue has not expired: those are reported) with their fills, their
  pending cancel or replace, and their reservations;
- positions at their average cost, cash, the last trade price of each instrument;
- kill switches and reduce-only states, each as [trading_day] carry_kill_switches / carry_reduce_only say;
- for client sessions that do not start each day at MsgSeqNum 1, the previous day's ClOrdIDs, so a duplicate
  across the boundary is still caught (one day back: memory stays bounded).
What starts afresh: daily P&L (measured from the equity at the rollover), rate and message windows, done orders,
matched fills, and the reconciliation's settled pairs (all kept on disk: archive, journal, recon store).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import shutil
import zoneinfo
from pathlib import Path
from typing import Any

from config.positions import StartOfDay
from gateway.events.schema import (CARRIED, AnyEvent, CarriedOrder, CarriedRequest, Cash, Event, Mirrored, Position,
                                   UsedIds, decode)
from gateway.orders.ledger import DONE_STATUSES, PENDING_NEW, Ledger, Order, Request

log = logging.getLogger("fixgw.trading_day")

WEEKEND = (5, 6)


def carried_mirrors(history: list[AnyEvent]) -> set[str]:
    """Keys of the drop-copy fills already inside the positions a day began with: its first events (after
    INIT) are what the previous day handed over, so the scan stops at the first event of another kind."""
    out: set[str] = set()
    for ev in history[1:]:
        if not isinstance(ev, CARRIED):
            break
        if isinstance(ev, Mirrored):
            out.update(ev.exec_ids)
    return out


def day_head(path: Path) -> list[AnyEvent]:
    """The first events of a day's event log: INIT and what the previous day handed over."""
    out: list[AnyEvent] = []
    with open(path, "rb") as f:
        for line in f:
            ev = decode(line)
            if out and not isinstance(ev, CARRIED):
                break
            out.append(ev)
    return out


def first_day(now: dt.datetime, time_zone: str) -> str:
    return now.astimezone(zoneinfo.ZoneInfo(time_zone)).strftime("%Y%m%d")


def next_day(previous: str, now: dt.datetime, time_zone: str) -> str:
    """The label of the day a rollover at `now` begins: the first weekday after `previous` that is not before
    today. An evening rollover begins tomorrow; an on-demand one run twice in a day begins the day after."""
    today = now.astimezone(zoneinfo.ZoneInfo(time_zone)).date()
    d = dt.datetime.strptime(previous, "%Y%m%d").date() + dt.timedelta(days=1)
    while d < today or d.weekday() in WEEKEND:
        d += dt.timedelta(days=1)
    return d.strftime("%Y%m%d")


def _due_on(day: dt.date, at: str, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    hh, mm = (int(x) for x in at.split(":"))
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=tz).astimezone(dt.timezone.utc)


def next_rollover(now: dt.datetime, at: str, time_zone: str) -> dt.datetime:
    """The first `at` (HH:MM local) strictly after `now` on a weekday, as an aware UTC datetime.

    Scheduled rollovers skip Saturday and Sunday: day labels skip the weekend (next_day), so a Friday evening
    rollover already begins Monday's day, and one on Saturday would begin Tuesday's while Monday's is unused."""
    tz = zoneinfo.ZoneInfo(time_zone)
    day = now.astimezone(tz).date()
    while True:
        due = _due_on(day, at, tz)
        if due > now and day.weekday() not in WEEKEND:
            return due
        day += dt.timedelta(days=1)


def last_rollover(now: dt.datetime, at: str, time_zone: str) -> dt.datetime:
    """The latest scheduled rollover (weekdays, `at` local) at or before `now`, as an aware UTC datetime."""
    tz = zoneinfo.ZoneInfo(time_zone)
    day = now.astimezone(tz).date()
    while True:
        due = _due_on(day, at, tz)
        if due <= now and day.weekday() not in WEEKEND:
            return due
        day -= dt.timedelta(days=1)


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _carried_request(req: Request) -> CarriedRequest:
    return CarriedRequest(req.kind, req.cl_ord_id, req.orig_cl_ord_id, req.venue_cl_ord_id, req.venue_orig_cl_ord_id,
                          req.qty, _num(req.price))


def carried_orders(ledger: Ledger) -> list[Event]:
    fills_of: dict[int, list[tuple[str, float, float]]] = {}
    for (number, exec_id), (qty, px, _) in ledger.fills.items():
        if number in ledger.open:
            fills_of.setdefault(number, []).append((exec_id, qty, px))
    out = []
    for o in ledger.open.values():
        live = ledger.by_venue.get(o.venue_cl_ord_id)
        pending = ledger.by_venue.get(o.pending) if o.pending else None
        out.append(CarriedOrder(
            number=o.number, session=o.session, account=o.account, symbol=o.symbol, side=o.side, ord_type=o.ord_type,
            tif=o.tif, qty=o.qty, px=_num(o.price), order_id=o.order_id, status=o.status, cum_qty=o.cum_qty,
            avg_px=o.avg_px,
            live=_carried_request(live) if live is not None else
            CarriedRequest("D", o.cl_ord_id, "", o.venue_cl_ord_id, "", o.qty, _num(o.price)),
            pending=_carried_request(pending) if pending is not None else None,
            fills=fills_of.get(o.number, []), trader=o.trader, strategy=o.strategy, owner=o.owner))
    return out


def carried_ids(ledger: Ledger, sessions: frozenset[str]) -> list[Event]:
    """Today's ClOrdIDs of the sessions whose ClOrdIDs must stay unique across the boundary."""
    ids: dict[str, list[str]] = {}
    for s, cl in (*ledger.by_client, *ledger.rejected_ids):
        if s in sessions:
            ids.setdefault(s, []).append(cl)
    return [UsedIds(session=s, ids=sorted(set(v))) for s, v in sorted(ids.items())]


def start_of_day_events(sod: StartOfDay) -> list[Event]:
    """A day that begins without a snapshot takes its book from the positions file: cash first, so that each
    position then moves the P&L base by its cost (daily P&L is measured from the average price)."""
    out: list[Event] = [Cash(account=a, cash=c, base=None, src="file") for a, c in sod.cash.items()]
    out += [Position(account=a, symbol=s, qty=q, avg=p, src="file") for (a, s), (q, p) in sod.positions.items()]
    return out


def compare_positions(carried: dict[tuple[str, str], float], sod: StartOfDay,
                      tolerance: float = 1e-9) -> list[dict[str, Any]]:
    """Differences between the positions the gateway carried and the back office's file."""
    rows = []
    for key in sorted(set(carried) | set(sod.positions)):
        g = carried.get(key, 0.0)
        f = sod.positions.get(key, (0.0, 0.0))[0]
        if abs(g - f) > tolerance:
            rows.append({"account": key[0], "symbol": key[1], "gateway": g, "file": f, "diff": g - f})
    return rows


def restore_order(ledger: Ledger, ev: CarriedOrder) -> tuple[Order, Request | None]:
    """Put a carried order back into a (fresh) ledger, with its live request, its pending one and its fills."""
    live = ev.live
    price = math.nan if ev.px is None else ev.px
    o = Order(ev.number, ev.session, ev.account, ev.symbol, ev.side, ev.ord_type, ev.qty, price, live.cl_ord_id,
              live.venue_cl_ord_id, order_id=ev.order_id, status=ev.status, cum_qty=ev.cum_qty, avg_px=ev.avg_px,
              tif=ev.tif, trader=ev.trader, strategy=ev.strategy, owner=ev.owner)
    ledger.orders[o.number] = o
    if o.status not in DONE_STATUSES:
        ledger.open[o.number] = o
        ledger.index_open(o)  # a carried short sale's leaves use the new day's locates; its fills were the old day's
    ledger.next_number = max(ledger.next_number, o.number + 1)

    def request(f: CarriedRequest) -> Request:
        px = math.nan if f.px is None else f.px
        r = Request(o, f.kind, f.cl_ord_id, f.orig_cl_ord_id, f.venue_cl_ord_id, f.venue_orig_cl_ord_id,
                    f.qty or 0.0, px)
        ledger.by_client[(o.session, r.cl_ord_id)] = r
        ledger.by_venue[r.venue_cl_ord_id] = r
        return r

    request(live)
    pending = None
    if ev.pending is not None:
        pending = request(ev.pending)
        o.pending = pending.venue_cl_ord_id
    for exec_id, qty, px in ev.fills:
        ledger.fills[(o.number, exec_id)] = (qty, px, o.number)
        ledger.exec_ids.add((o.number, exec_id))
    return o, pending


def day_orders(ledger: Ledger) -> list[dict[str, Any]]:
    """DAY orders still open at the rollover: the venue should have expired them at its session end."""
    return [{"order": o.number, "session": o.session, "cl_ord_id": o.cl_ord_id, "account": o.account,
             "symbol": o.symbol, "side": o.side, "leaves": o.leaves_qty,
             "status": "pending new" if o.status == PENDING_NEW else o.status}
            for o in ledger.open.values() if o.is_day]


def prune_archive(archive: Path, keep_days: int) -> list[str]:
    """Keep the latest `keep_days` archived days; older ones are deleted (the journal keeps every day)."""
    if not archive.is_dir():
        return []
    days = sorted(p.name for p in archive.iterdir() if p.is_dir() and not p.name.startswith("."))
    gone = days[:-keep_days] if len(days) > keep_days else []
    for name in gone:
        shutil.rmtree(archive / name, ignore_errors=True)
    if gone:
        log.info("archived days past retention deleted", extra={"days": gone, "kept": keep_days})
    return gone


def disk_usage(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0
