"""What-if: a recorded trading day's requests and fills replayed through the risk kernel under other limits.

The day's event log (the current one, or the archived one) gives every request the kernel decided: the new orders,
replaces and cancels the gateway accepted and those the kernel refused, and the venue's fills. They become one
numpy array (risk.replay.EVENT_DTYPE) and run twice through the same compiled loop (risk.replay), once under the
limits in force and once under the proposed ones, each from the book the day began with (its carried events).
What changes between the two is the answer. Requests the gateway refused on its own account (an account the
session may not trade, the venue down, a kill switch by trader, ...) or under an operator's switch are left out:
other limits would not change them, and the replay does not switch. Busts, corrections, venue rejects and the fills
of orders carried in from the previous day are not replayed (their orders keep their reservations).
"""

from __future__ import annotations

import csv
import gc
import io
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from config.risk_models import RiskConfig, load_risk_config
from config.settings import GatewayConfig
from gateway.events import schema
from gateway.events.log import EventLog
from gateway.orders.ledger import Ledger
from gateway.orders.lifecycle import replay_log
from gateway.orders.risk_stage import SIDE, RiskStage
from risk import replay as rp
from risk.reasons import BY_ID, CATALOGUE

LIMIT_FILES = ("instruments.csv", "accounts.toml", "limits.toml", "scenarios.csv")
# Kernel codes that follow an operator's switch, not a limit: the replay has no switches to follow
OPERATOR_CODES = frozenset({"KILL_SWITCH_GLOBAL", "KILL_SWITCH_ACCOUNT", "KILL_SWITCH_INSTRUMENT", "REDUCE_ONLY"})


@dataclass
class Flow:
    """A day's requests and fills as the kernel replays them, and what the gateway decided for each."""

    head: list[schema.AnyEvent]  # the carried book the day began with
    events: np.ndarray  # risk.replay.EVENT_DTYPE
    sources: list[tuple[Any, str, str]]  # per event: the logged event, its request kind, the recorded decision

    def row(self, e: int) -> dict[str, Any]:
        """When, session, ClOrdID, account, symbol, side, qty, price and the recorded decision of event e."""
        ev, kind, recorded = self.sources[e]
        fill = kind == "fill"
        return {"ts": ev.ts, "kind": kind, "session": ev.session, "cl_ord_id": ev.cl_ord_id, "account": ev.account,
                "symbol": ev.symbol, "side": ev.side, "qty": ev.last_qty if fill else ev.qty,
                "price": ev.last_px if fill else ev.px, "recorded": recorded}


@dataclass
class WhatIf:
    date: str
    limits_in_force: str
    limits_proposed: str
    requests: int
    fills: int
    changed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # the two replays
    events_per_s: float = 0.0
    load_seconds: float = 0.0  # reading the day's log and building the kernel's arrays
    baseline_agrees: int = 0  # requests whose replayed decision under the limits in force is the recorded one

    def counts(self, key: str) -> Counter[str]:
        return Counter(str(c[key]) for c in self.changed)


def day_log(cfg: GatewayConfig, date: str) -> Path:
    """The event log of trading day `date` (YYYYMMDD): the current file if it is that day, else the archive's."""
    current = cfg.state_dir / "events.log"
    for ev in EventLog.read(current):
        if isinstance(ev, schema.DayStart) and ev.day == date:
            return current
        break
    archived = cfg.archive_dir / date / "events.log"
    if archived.exists():
        return archived
    raise ValueError(f"no event log of trading day {date}: not the current day, and not under {cfg.archive_dir}")


def load_limits(cfg: GatewayConfig, limits_dir: Path) -> RiskConfig:
    """The proposed limits: each file of LIMIT_FILES found in `limits_dir`, the configured one otherwise."""
    r = cfg.risk
    if r is None:
        raise ValueError("no [risk] section in the configuration: nothing to compare")
    if not limits_dir.is_dir():
        raise ValueError(f"{limits_dir}: not a folder of limit files ({', '.join(LIMIT_FILES)})")

    def pick(name: str, configured: Path | None) -> Path | None:
        p = limits_dir / name
        return p if p.is_file() else configured

    return load_risk_config(pick("instruments.csv", r.instruments), pick("accounts.toml", r.accounts),  # type: ignore
                            pick("limits.toml", r.limits), pick("scenarios.csv", r.scenarios))


def flow_of(events: Iterable[schema.AnyEvent], cfg: RiskConfig, sessions: list[str]) -> Flow:
    """The kernel's view of a day: names to indices, each amend and fill pointing at its order's NEW."""
    acc = {a.name: n for n, a in enumerate(cfg.accounts)}
    ins = {x.symbol: n for n, x in enumerate(cfg.instruments)}
    ses = {s: n for n, s in enumerate(sessions)}
    head: list[schema.AnyEvent] = []
    out: list[tuple[Any, ...]] = []
    sources: list[tuple[Any, str, str]] = []
    new_of_number: dict[int, int] = {}  # order number -> index of its NEW
    new_of_client: dict[tuple[str, str], int] = {}  # (session, ClOrdID of the live version) -> index of its NEW
    in_head = True

    nan = math.nan

    def add(kind: int, ev: Any, qty: float | None, px: float | None, ref: int, source: tuple[Any, str, str],
            duplicate: bool = False) -> int:
        out.append((kind, ses.get(ev.session, -1), acc.get(ev.account, -1), ins.get(ev.symbol, -1),
                    SIDE.get(ev.side, 0), nan if qty is None else qty, nan if px is None else px,
                    1 if px is None else 0, 1 if duplicate else 0, ev.ts, ref))
        sources.append(source)
        return len(out) - 1

    for ev in events:
        if in_head and isinstance(ev, (schema.DayStart, *schema.CARRIED)):
            head.append(ev)
            if isinstance(ev, schema.CarriedOrder):  # an order carried in: its fills today point at it
                new_of_number[ev.number] = -1
            continue
        in_head = False
        if isinstance(ev, schema.NewOrder):
            i = add(rp.NEW, ev, ev.qty, ev.px, -1, (ev, "D", "warn" if ev.warnings else "accept"))
            new_of_number[ev.number] = i
            new_of_client[(ev.session, ev.cl_ord_id)] = i
        elif isinstance(ev, schema.Rejected):
            reason = CATALOGUE.get(ev.code)
            if reason is None or reason.raised_by != "kernel" or ev.code in OPERATOR_CODES:
                continue  # refused by the gateway itself or by an operator's switch: other limits would not change it
            source = (ev, ev.request_kind, ev.code)
            dup = ev.code == "DUPLICATE_CLORDID"
            if ev.request_kind == "D":
                add(rp.NEW, ev, ev.qty, ev.px, -1, source, dup)
            else:
                ref = new_of_client.get((ev.session, ev.orig_cl_ord_id), -1)
                add(rp.REPLACE if ev.request_kind == "G" else rp.CANCEL, ev, ev.qty, ev.px, ref, source, dup)
        elif isinstance(ev, (schema.Replace, schema.Cancel)):
            ref = new_of_number.get(ev.number, -1)
            add(rp.REPLACE if isinstance(ev, schema.Replace) else rp.CANCEL, ev, ev.qty, ev.px, ref,
                (ev, ev.kind, "warn" if ev.warnings else "accept"))
            if isinstance(ev, schema.Replace) and ref >= 0:
                new_of_client[(ev.session, ev.cl_ord_id)] = ref
        elif isinstance(ev, schema.Execution) and ev.exec_type == "F":
            add(rp.FILL, ev, ev.last_qty, ev.last_px, new_of_number.get(ev.number, -1), (ev, "fill", "fill"))
    arr = np.array(out, dtype=rp.EVENT_DTYPE) if out else np.zeros(0, dtype=rp.EVENT_DTYPE)
    return Flow(head, arr, sources)


def _stage(cfg: RiskConfig, sessions: list[str], head: list[schema.AnyEvent], max_orders: int) -> RiskStage:
    """A risk state as the day began: its carried positions, cash, marks, switches and orders."""
    ledger = Ledger()
    stage = RiskStage(cfg, sessions, ledger.fills, max_orders)
    replay_log(head, ledger, stage)
    return stage


def _decision(code: int) -> str:
    if code > 0:
        return BY_ID[code].code if code in BY_ID else f"reject {code}"
    return "warn" if code < 0 else "accept"


def run(cfg: GatewayConfig, date: str, limits_dir: Path) -> WhatIf:
    """`fixgw what-if`: trading day `date` of this gateway under the limits in `limits_dir`."""
    from gateway.service import client_sessions, load_risk

    in_force = load_risk(cfg)
    if in_force is None:
        raise ValueError("no [risk] section in the configuration: nothing to compare")
    return compare(EventLog.read(day_log(cfg, date)), date, in_force, load_limits(cfg, limits_dir),
                   client_sessions(cfg), max(cfg.gateway.max_open_orders, 1))


def compare(events: Iterable[schema.AnyEvent], date: str, in_force: RiskConfig, proposed: RiskConfig,
            sessions: list[str], max_orders: int) -> WhatIf:
    """A day's events replayed under both limits; what changes."""
    t0 = time.perf_counter()
    gc.disable()  # a day's events stay alive meanwhile: collections would rescan them again and again (2x)
    try:
        flow = flow_of(events, in_force, sessions)
    finally:
        gc.enable()
    n = len(flow.events)
    base, new = _stage(in_force, sessions, flow.head, max_orders), _stage(proposed, sessions, flow.head, max_orders)
    cols = rp.columns(flow.events)
    t1 = time.perf_counter()
    before = rp.replay_columns(base.engine, cols)
    after = rp.replay_columns(new.engine, cols)
    seconds = time.perf_counter() - t1
    kinds = flow.events["kind"]
    requests = int((kinds != rp.FILL).sum())
    result = WhatIf(date, in_force.limits_version, proposed.limits_version, requests, n - requests,
                    seconds=seconds, events_per_s=2 * n / seconds if seconds > 0 else math.inf, load_seconds=t1 - t0)
    bc, ac = before.codes.tolist(), after.codes.tolist()
    for e in range(n):
        if kinds[e] == rp.FILL:
            continue
        b, a = _decision(bc[e]), _decision(ac[e])
        rec = flow.sources[e][2]
        if rec == b or (rec in ("accept", "warn") and b in ("accept", "warn")):
            result.baseline_agrees += 1
        if (b in ("accept", "warn")) != (a in ("accept", "warn")) or (b not in ("accept", "warn") and a != b):
            result.changed.append({**flow.row(e), "before": b, "after": a,
                                   "value": None if math.isnan(after.values[e]) else float(after.values[e]),
                                   "limit": None if math.isnan(after.limits[e]) else float(after.limits[e])})
    return result


def render(r: WhatIf, fmt: str) -> str:
    cols = ("ts", "kind", "session", "cl_ord_id", "account", "symbol", "side", "qty", "price", "before", "after",
            "value", "limit")
    if fmt == "json":
        return json.dumps({"date": r.date, "limits_in_force": r.limits_in_force, "limits_proposed": r.limits_proposed,
                           "requests": r.requests, "fills": r.fills, "baseline_agrees": r.baseline_agrees,
                           "load_seconds": r.load_seconds, "replay_seconds": r.seconds,
                           "events_per_second": r.events_per_s,
                           "changed": r.changed}, indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(r.changed)
        return buf.getvalue()
    lines = [f"# What-if for trading day {r.date}", "",
             f"Limits in force `{r.limits_in_force}`, proposed `{r.limits_proposed}`. {r.requests} requests and "
             f"{r.fills} fills, read in {r.load_seconds:.2f} s and replayed twice in {r.seconds * 1000:.1f} ms "
             f"({r.events_per_s:,.0f} events/s). "
             f"Under the limits in force the replay gives the recorded decision for {r.baseline_agrees} of "
             f"{r.requests} requests.", "",
             f"**{len(r.changed)} decisions change.**", ""]
    for title, key in (("By change", "change"), ("By account", "account"), ("By instrument", "symbol")):
        counts = Counter(f"{c['before']} -> {c['after']}" for c in r.changed) if key == "change" else r.counts(key)
        if counts:
            lines += [f"## {title}", "", "| | decisions |", "|---|---:|"]
            lines += [f"| {k} | {v} |" for k, v in counts.most_common()]
            lines.append("")
    if r.changed:
        lines += ["## Decisions that change", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for c in r.changed:
            lines.append("| " + " | ".join("" if c.get(k) is None else str(c.get(k)) for k in cols) + " |")
    return "\n".join(lines) + "\n"
