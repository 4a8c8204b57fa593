"""Tables and the latency-vs-rate plot from a bench/run results JSON.

    python bench/report.py bench/results/<run>.json            # Markdown tables on stdout
    python bench/report.py bench/results/<run>.json --plot out.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

ORDER = ("direct", "passthrough", "floor", "gateway")
SERVERS = {"direct": ("venue",), "passthrough": ("proxy", "venue"), "floor": ("floor", "venue"),
           "gateway": ("gateway", "venue")}
SUSTAIN_FRACTION = 0.97


def sustained(ph: dict[str, Any]) -> bool:
    """No loss, no reject, the client kept the offered rate and the acks kept pace with it."""
    if ph.get("lost") or ph.get("rejects") or ph.get("aborted") or ph.get("acked", 0) < ph.get("planned", 1):
        return False
    if ph["kind"] != "rate":
        return True
    rate = float(ph["rate"])
    return (ph.get("achieved_rate") or 0) >= SUSTAIN_FRACTION * rate and \
        (ph.get("ack_rate") or 0) >= SUSTAIN_FRACTION * rate


def rate_phases(arr: dict[str, Any], skipped: bool = False) -> list[dict[str, Any]]:
    return [p for p in arr.get("phases", []) if p["kind"] == "rate" and p["name"] != "warmup"
            and (skipped or not p.get("skipped"))]


def max_sustained(arr: dict[str, Any]) -> float | None:
    """Highest offered rate sustained, every lower rate sustained too."""
    best = None
    for p in sorted(rate_phases(arr), key=lambda p: p["rate"]):
        if not sustained(p):
            break
        best = p["rate"]
    return best


def _f(x: Any, nd: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.{nd}f}"


def _ratio(a: Any, b: Any) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.2f}"


def latency_table(res: dict[str, Any]) -> str:
    arrs = res["arrangements"]
    lines = ["| offered/s | arrangement | p50 µs | p99 µs | p99.9 µs | max µs | sent | lost | rej | sustained "
             "| server CPU, cores | server CPU µs/order | client CPU s | other load, cores |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|:---:|---|---|---:|---:|"]
    rates = sorted({p["rate"] for a in arrs.values() for p in rate_phases(a, skipped=True)})
    for r in rates:
        for name in ORDER:
            if name not in arrs:
                continue
            ph = next((p for p in rate_phases(arrs[name], skipped=True) if p["rate"] == r), None)
            if ph is None:
                continue
            if ph.get("skipped"):
                lines.append(f"| {_f(r)} | {name} | not run: a lower rate was not sustained |" + " |" * 11)
                continue
            lines.append(_row(_f(r), name, ph))
    for name in ORDER:
        if name not in arrs:
            continue
        for ph in arrs[name].get("phases", []):
            if ph["kind"] == "burst":
                lines.append(_row(f"burst {ph['planned']:,}", name, ph))
    return "\n".join(lines)


def _row(label: str, name: str, ph: dict[str, Any]) -> str:
    lat = ph.get("lat_us", {})
    procs = ph.get("procs", {})
    servers = [s for s in SERVERS[name] if s in procs]
    util = ", ".join(f"{s} {procs[s]['cpu_util']:.2f}" for s in servers)
    per = ", ".join(f"{s} {procs[s]['cpu_us_per_order']:.0f}" for s in servers)
    return (f"| {label} | {name} | {_f(lat.get('p50'))} | {_f(lat.get('p99'))} | {_f(lat.get('p99.9'))} | "
            f"{_f(lat.get('max'))} | {ph['sent']:,} | {ph['lost']} | {ph['rejects']} | "
            f"{'yes' if sustained(ph) else 'NO'} | {util} | {per} | {ph.get('client_cpu_s', 0):.2f} | "
            f"{_f(ph.get('other_cores'), 2)} |")


def ratio_table(res: dict[str, Any]) -> str:
    arrs = res["arrangements"]
    if "gateway" not in arrs:
        return ""
    lines = ["| offered/s | p50 gw/pass-through | p99 gw/pass-through | p50 gw/direct | p99 gw/direct |",
             "|---:|---:|---:|---:|---:|"]

    def lat(name: str, r: float, q: str) -> float | None:
        if name not in arrs:
            return None
        ph = next((p for p in rate_phases(arrs[name]) if p["rate"] == r), None)
        return ph["lat_us"].get(q) if ph and ph.get("lat_us") else None

    for ph in rate_phases(arrs["gateway"]):
        r = ph["rate"]
        lines.append(f"| {_f(r)} | {_ratio(lat('gateway', r, 'p50'), lat('passthrough', r, 'p50'))} | "
                     f"{_ratio(lat('gateway', r, 'p99'), lat('passthrough', r, 'p99'))} | "
                     f"{_ratio(lat('gateway', r, 'p50'), lat('direct', r, 'p50'))} | "
                     f"{_ratio(lat('gateway', r, 'p99'), lat('direct', r, 'p99'))} |")
    return "\n".join(lines)


def summary_table(res: dict[str, Any]) -> str:
    arrs = res["arrangements"]
    lines = ["| arrangement | max sustained rate/s (of those offered) | best burst throughput/s | "
             "peak RSS (VmHWM) MiB | error |", "|---|---:|---:|---|---|"]
    for name in ORDER:
        if name not in arrs:
            continue
        a = arrs[name]
        bursts = [p.get("ack_rate") for p in a.get("phases", []) if p["kind"] == "burst" and p.get("ack_rate")]
        final = a.get("final", {})
        hwm = ", ".join(f"{s} {final[s]['hwm_kb'] / 1024:.0f}" for s in SERVERS[name] if final.get(s))
        err = (a.get("error") or "").replace("|", "/")[:80]
        lines.append(f"| {name} | {_f(max_sustained(a))} | {_f(max(bursts) if bursts else None)} | {hwm} | "
                     f"{err} |")
    return "\n".join(lines)


def markdown(res: dict[str, Any]) -> str:
    m = res.get("machine", {})
    g = res.get("git", {})
    head = (f"Run {res.get('run_id')} on {m.get('cpus')} x {m.get('cpu_model')}, {m.get('mem_gb')} GB, Linux "
            f"{m.get('kernel')}, Python {m.get('python')}, QuickFIX {m.get('quickfix')}; commit {g.get('commit')} "
            f"({g.get('subject')}); venue {res.get('options', {}).get('venue', 'sim')}, action "
            f"{res.get('options', {}).get('venue_action')}.")
    parts = [head, "", latency_table(res), "", ratio_table(res), "", summary_table(res)]
    return "\n".join(parts) + "\n"


def plot(res: dict[str, Any], out: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    colours = {"direct": "tab:green", "passthrough": "tab:blue", "floor": "tab:purple", "gateway": "tab:red"}
    for name in ORDER:
        a = res["arrangements"].get(name)
        if not a:
            continue
        ph = sorted(rate_phases(a), key=lambda p: p["rate"])
        ph = [p for p in ph if p.get("lat_us")]
        xs = [p["rate"] for p in ph]
        for q, style in (("p50", "-"), ("p99", "--")):
            ax.plot(xs, [p["lat_us"][q] for p in ph], style, marker="o", color=colours[name],
                    label=f"{name} {q}")
        bad = [p for p in ph if not sustained(p)]
        if bad:
            ax.scatter([p["rate"] for p in bad], [p["lat_us"]["p99"] for p in bad], marker="x", s=90,
                       color="black", zorder=5)
    ax.set_yscale("log")
    ax.set_xlabel("offered rate, NewOrderSingles/s")
    ax.set_ylabel("round trip send -> ack, µs (log)")
    ax.set_title("Order path latency vs offered rate (x: not sustained)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="tables and plot from a bench/run results JSON")
    p.add_argument("results")
    p.add_argument("--plot", help="write the latency-vs-rate PNG here")
    a = p.parse_args(argv)
    res = json.loads(Path(a.results).read_text())
    print(markdown(res))
    if a.plot:
        print("plot:", a.plot if plot(res, Path(a.plot)) else "matplotlib not installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
