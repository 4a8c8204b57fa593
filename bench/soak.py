"""bench/soak: the memory soak, on demand (not in CI): a million orders through the gateway at a fixed rate.

    bench/soak                                  # 1,000,000 orders at 250/s (about 67 minutes)
    bench/soak --orders 200000 --rate 2000      # shorter
    bench/soak --arrangement passthrough        # the same flow through the bare QuickFIX proxy
    bench/soak --days 5 --rate 400              # 5 trading days with a rollover between them (bench/soak_days.py)

The venue fills every order (ack + fill: orders complete, so the risk engine's order slots are released and
nothing but the gateway's own bookkeeping can accumulate), sides alternate so positions stay flat. Every
--sample-s seconds the load client records the server's VmRSS together with the orders answered so far and
the latency of that interval. The verdict compares RSS late in the run with RSS early in the run (after
--settle-orders) and fits the growth per 100,000 orders: "flat" when the end is within --tolerance of the
early reading. Results: bench/results/<run>-soak.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, git_commit, install_stop_handlers, machine_info  # noqa: E402
import runner  # noqa: E402
import soak_days  # noqa: E402


def verdict(timeline: list[dict[str, Any]], server: str, settle_orders: int, tolerance: float,
            total_orders: int) -> dict[str, Any]:
    """Flat when the fitted growth, projected over all `total_orders`, stays within `tolerance` of the early RSS."""
    pts = [(t["acked"], t["procs"][server]["rss_kb"]) for t in timeline
           if t.get("procs", {}).get(server, {}).get("rss_kb")]
    late = [p for p in pts if p[0] >= settle_orders]
    if len(late) < 3:
        return {"flat": None, "reason": "too few samples after the settle point"}
    n = len(late)
    mx = sum(p[0] for p in late) / n
    my = sum(p[1] for p in late) / n
    sxx = sum((p[0] - mx) ** 2 for p in late) or 1.0
    slope = sum((p[0] - mx) * (p[1] - my) for p in late) / sxx  # kB per order
    first, last = late[0][1], late[-1][1]
    growth = (last - first) / first
    projected = slope * total_orders / first
    return {"flat": growth <= tolerance and projected <= tolerance, "projected_growth": round(projected, 3), "rss_start_mib": round(first / 1024, 1), "rss_end_mib": round(last / 1024, 1),
            "growth": round(growth, 3), "kib_per_100k_orders": round(slope * 100_000, 1),
            "bytes_per_order": round(slope * 1024, 1), "from_orders": late[0][0], "to_orders": late[-1][0]}


def markdown(res: dict[str, Any]) -> str:
    v = res["verdict"]
    ph = res["phase"]
    lat = ph.get("lat_us", {})
    lines = [f"Soak {res['run_id']}: {res['arrangement']}, {ph.get('sent', 0):,} orders offered at "
             f"{res['options']['rate']:,}/s, venue {res['options']['venue']} ({res['options']['venue_action']}); "
             f"commit {res['git'].get('commit')}.", "",
             f"* answered {ph.get('acked', 0):,}, lost {ph.get('lost')}, rejected {ph.get('rejects')}"
             f"{', aborted: ' + ph['aborted'] if ph.get('aborted') else ''}",
             f"* latency p50 {lat.get('p50', 0):,.0f} µs, p99 {lat.get('p99', 0):,.0f} µs, "
             f"p99.9 {lat.get('p99.9', 0):,.0f} µs, max {lat.get('max', 0):,.0f} µs",
             f"* {res['server']} RSS {v.get('rss_start_mib')} MiB after {v.get('from_orders', 0):,} orders -> "
             f"{v.get('rss_end_mib')} MiB after {v.get('to_orders', 0):,} (growth {v.get('growth')}, "
             f"{v.get('bytes_per_order')} bytes/order, {v.get('projected_growth')} projected over "
             f"{res['options']['orders']:,} orders); peak VmHWM {res.get('hwm_mib')} MiB",
             f"* memory flat: **{'yes' if v.get('flat') else 'NO' if v.get('flat') is False else 'unknown'}** "
             f"(tolerance {res['options']['tolerance']:.0%}){'' if v.get('completed', True) else '; the run did not complete'}",
             "",
             "| orders answered | RSS MiB | interval p50 µs | interval p99 µs |", "|---:|---:|---:|---:|"]
    for t in res["timeline"]:
        rss = t.get("procs", {}).get(res["server"], {}).get("rss_kb")
        lines.append(f"| {t['acked']:,} | {rss / 1024 if rss else 0:,.1f} | {t['p50_us']:,.0f} | {t['p99_us']:,.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=1_000_000)
    p.add_argument("--rate", type=int, default=250)
    p.add_argument("--sample-s", type=float, default=10.0)
    p.add_argument("--settle-orders", type=int, default=50_000, help="judge growth from this many orders on")
    p.add_argument("--tolerance", type=float, default=0.10, help="RSS growth still called flat")
    p.add_argument("--arrangement", choices=("gateway", "passthrough"), default="gateway")
    p.add_argument("--venue", choices=("sim", "fast"), default="fast")
    p.add_argument("--venue-action", choices=("ack", "fill"), default="fill")
    p.add_argument("--gateway-src", help="run the gateway from this source tree instead")
    p.add_argument("--tag", default="")
    p.add_argument("--keep-state", action="store_true", help="keep var/bench/<run>/ (logs, stores)")
    p.add_argument("--days", type=int, default=1,
                   help="simulated trading days, a rollover between each two (the orders are split evenly)")
    p.add_argument("--retention-days", type=int, default=2, help="[trading_day] retention_days with --days")
    p.add_argument("--report", metavar="JSON", help="only print the Markdown of an earlier soak's results")
    a = p.parse_args(argv)
    if a.report:
        res = json.loads(Path(a.report).read_text())
        print(soak_days.markdown(res) if res["options"].get("days", 1) > 1 else markdown(res))
        return 0
    if a.days > 1 and a.arrangement != "gateway":
        p.error("--days needs the gateway arrangement (the rollover is the gateway's)")
    install_stop_handlers(runner._cleanup)
    days = a.days > 1
    ns = argparse.Namespace(venue=a.venue, venue_action=a.venue_action, ack_timeout=30.0, max_backlog_s=5.0,
                            passthrough_args="", gateway_src=a.gateway_src, profile=False,
                            gateway_override=soak_days.overrides(a.retention_days) if days else [])
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-soak" + (f"-{a.tag}" if a.tag else "")
    run_dir = ROOT / "var" / "bench" / run_id
    run_dir.mkdir(parents=True)
    git = git_commit()  # at the start: the gateway process runs the tree as it is now
    if days:
        plan = soak_days.plan(a.orders, a.days, a.rate, a.sample_s, run_dir / a.arrangement)
    else:
        plan = [{"name": "soak", "kind": "rate", "rate": a.rate, "orders": a.orders, "sample_every_s": a.sample_s,
                 "settle_s": 0.5}]
    print(f"soak {run_id}: {a.orders:,} orders at {a.rate:,}/s through the {a.arrangement}"
          f"{f' over {a.days} trading days' if days else ''} (about {a.orders / a.rate / 60:.0f} min)", flush=True)
    during = (lambda ctx: soak_days.roll_days(a.days, ctx)) if days else None
    r = runner.run_arrangement(a.arrangement, ns, plan, run_dir, during=during)
    res: dict[str, Any] = {"run_id": run_id, "machine": machine_info(), "git": git, "arrangement": a.arrangement,
                           "command": "bench/soak " + " ".join(sys.argv[1:] if argv is None else argv),
                           "options": vars(a), "error": r.get("error")}
    if days:
        rows = (r.get("during") or {}).get("days", [])
        res.update(during=r.get("during"), phases=r.get("phases"), verdict=soak_days.verdict(rows, a.tolerance))
        md = soak_days.markdown(res)
        ok = bool(res["verdict"].get("flat") and res["verdict"].get("completed") and len(rows) == a.days)
    else:
        server = "gateway" if a.arrangement == "gateway" else "proxy"
        phase = (r.get("phases") or [{}])[0]
        timeline = phase.pop("timeline", [])
        res.update(server=server, phase=phase, timeline=timeline,
                   hwm_mib=round((r.get("final", {}).get(server, {}).get("hwm_kb") or 0) / 1024, 1),
                   verdict=verdict(timeline, server, a.settle_orders, a.tolerance, a.orders))
        res["verdict"]["completed"] = not (phase.get("aborted") or phase.get("lost"))
        md = markdown(res)
        ok = bool(res["verdict"].get("flat") and res["verdict"]["completed"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{run_id}.json").write_text(json.dumps(res, indent=1))
    (RESULTS / f"{run_id}.md").write_text(md)
    print(md)
    if r.get("error"):
        print("error:", r["error"])
    print(f"results: bench/results/{run_id}.json")
    if not a.keep_state:
        import shutil
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0 if ok and not r.get("error") else 1


if __name__ == "__main__":
    sys.exit(main())
