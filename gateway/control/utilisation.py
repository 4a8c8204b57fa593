"""Limit utilisation through a trading day: the day's event log replayed through the risk stage, sampled.

The same replay a start does (gateway.orders.lifecycle.replay_log) rebuilds the book event by event; after the
events of each sampling step the risk engine's `utilisation` (value / limit of every finite account limit, what
the gauge fixgw_limit_utilisation_ratio shows live) is read for every account. Marks follow the day's fills and
carried marks: the market-data quotes the live gateway also used are not in the log, so a mark-dependent limit
(daily loss, VaR) can differ slightly from what the gauge showed.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from config.risk_models import RiskConfig
from gateway.events import schema
from gateway.orders.ledger import Ledger
from gateway.orders.lifecycle import replay_log
from gateway.orders.risk_stage import RiskStage

_MOVES = (schema.NewOrder, schema.Replace, schema.Cancel, schema.Execution, schema.Undelivered,
          schema.CancelRejected)


@dataclass
class Utilisation:
    limits_version: str
    # (account, limit) -> [(ts ns, value / limit)]
    series: dict[tuple[str, str], list[tuple[int, float]]] = field(default_factory=dict)
    events: int = 0

    def peaks(self) -> list[tuple[str, str, float, int]]:
        """(account, limit, peak, when) of every series that rose above zero, highest first."""
        out = []
        for (acc, limit), pts in self.series.items():
            ts, peak = max(((t, v) for t, v in pts), key=lambda p: p[1])
            if peak > 0:
                out.append((acc, limit, peak, ts))
        return sorted(out, key=lambda r: (-r[2], r[0], r[1]))


def through_the_day(events: Iterable[schema.AnyEvent], cfg: RiskConfig, sessions: list[str], max_orders: int,
                    points: int = 600) -> Utilisation:
    gc.disable()  # the day's events stay alive meanwhile: collections would rescan them again and again
    try:
        evs = list(events)
    finally:
        gc.enable()
    stamped = [e.ts for e in evs if isinstance(e, _MOVES) and e.ts]
    ledger = Ledger()
    stage = RiskStage(cfg, sessions, ledger.fills, max_orders)
    out = Utilisation(cfg.limits_version, events=len(evs))
    if not stamped:
        return out
    first, last = min(stamped), max(stamped)
    step = max((last - first) // points, 1)
    names = [a.name for a in cfg.accounts]
    next_at = first
    pending: list[schema.AnyEvent] = []

    def sample(ts: int) -> None:
        replay_log(pending, ledger, stage)
        pending.clear()
        for n, acc in enumerate(names):
            for limit, ratio in stage.engine.utilisation(n).items():
                out.series.setdefault((acc, limit), []).append((ts, ratio))

    for ev in evs:
        ts = getattr(ev, "ts", 0) if isinstance(ev, _MOVES) else 0
        if ts and ts >= next_at and pending:
            sample(ts - 1)  # the state just before this event
            next_at = ts + step
        pending.append(ev)
    sample(last)
    return out


def chart(u: Utilisation, path: Path, title: str, top: int = 8) -> Path:
    """A PNG of the `top` series with the highest peaks, in % of their limit, against UTC time of day."""
    import datetime as dt

    import matplotlib

    matplotlib.use("Agg")  # no screen: render to a file
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=110)
    try:
        shown = u.peaks()[:top]
        for acc, limit, _peak, _ts in shown:
            pts = u.series[(acc, limit)]
            ax.step([dt.datetime.fromtimestamp(t / 1e9, dt.timezone.utc) for t, _ in pts],
                    [100 * v for _, v in pts], where="post", label=f"{acc} {limit}", linewidth=1.6)
        ax.axhline(100, color="#cf222e", linestyle="--", linewidth=1, label="limit")
        ax.set_ylabel("% of limit")
        ax.set_xlabel("time (UTC)")
        ax.set_title(title, fontsize=11)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=dt.timezone.utc))
        ax.set_ylim(bottom=0, top=max([110.0] + [100 * p for _, _, p, _ in shown]) * 1.05)
        ax.grid(alpha=0.3)
        if not shown:
            ax.text(0.5, 0.5, "no account used any of its limits", transform=ax.transAxes, ha="center",
                    color="#57606a")
        ax.legend(loc="upper left", fontsize=8, ncol=3, frameon=False)
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
