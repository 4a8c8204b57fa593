"""bench/soak --days N: the soak as N simulated trading days, with a rollover between days.

Day d is one load-client phase; when it is answered and filled the client writes `day<d>.done` and waits at
`day<d+1>.gate`. Meanwhile `roll_days` records the gateway's RSS and the size of its state folder, rolls the
trading day over through the admin socket (`fixgw admin rollover`), waits for the venue session, and opens the
gate. Every session starts each day at MsgSeqNum 1 (`rollover_reset`): its store and message log roll with the
day, so disk use is bounded by `[trading_day] retention_days`. After the last day the gateway is killed
(SIGKILL) and started again on the same state (warm numba cache), timed from exec to its "ready" log line: after
the crash (the day's events after its latest periodic checkpoint are replayed), after a clean stop (which
checkpoints the whole log), and after a rollover (only the carried book).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from common import sample

from gateway.control.admin import request

STATE_PARTS = ("events.log", "archive", "store", "fixlog", "journal.sqlite", "recon.sqlite")


def overrides(retention_days: int) -> list[str]:
    return ["acceptor.clients.rollover_reset=true", "venue.rollover_reset=true", "dropcopy.rollover_reset=true",
            f"trading_day.retention_days={retention_days}"]


def plan(orders: int, days: int, rate: int, sample_s: float, state: Path) -> list[dict[str, Any]]:
    per_day = orders // days
    out = []
    for d in range(1, days + 1):
        ph: dict[str, Any] = {"name": f"day{d}", "kind": "rate", "rate": rate, "orders": per_day,
                              "sample_every_s": sample_s, "settle_s": 0.5, "await_fills": True,
                              "done_file": str(state / f"day{d}.done")}
        if d > 1:
            ph["gate"] = str(state / f"day{d}.gate")
        out.append(ph)
    return out


def _size_kb(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size // 1024
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) // 1024 if p.is_dir() else 0


def _sizes(gw_state: Path) -> dict[str, int]:
    return {name: _size_kb(gw_state / name) for name in STATE_PARTS}


def _wait(pred: Any, timeout: float, what: str, alive: Any) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if not alive():
            raise RuntimeError(f"{what}: a process exited first")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.2)  # a bench watching files and a socket: no event to wait on


def roll_days(days: int, ctx: dict[str, Any]) -> dict[str, Any]:
    """bench/runner's `during`: roll the day over between the client's phases; then time a restart."""
    state: Path = ctx["state"]
    procs, client = ctx["procs"], ctx["client"]
    gw = next(p for p in procs.started if p.name == "gateway")
    gw_state = state / "gateway"
    sock = gw_state / "admin.sock"
    alive = lambda: client.alive() or (state / f"day{days}.done").exists()  # noqa: E731
    rows: list[dict[str, Any]] = []
    for d in range(1, days + 1):
        done = state / f"day{d}.done"
        _wait(done.exists, ctx["budget_s"], f"day {d}", alive)
        phase = json.loads(done.read_text())
        row: dict[str, Any] = {"day": d, "orders": phase["sent"], "answered": phase["acked"],
                               "filled": phase["filled"], "rejects": phase["rejects"], "lost": phase["lost"],
                               "p50_us": phase.get("lat_us", {}).get("p50"),
                               "p99_us": phase.get("lat_us", {}).get("p99"),
                               "rss_end_kb": sample(gw.pid).get("rss_kb"),
                               "peak_rss_kb": max((t.get("procs", {}).get("gateway", {}).get("rss_kb") or 0
                                                   for t in phase.get("timeline", [])), default=0),
                               "state_kb": _sizes(gw_state)}
        if d < days:
            t0 = time.monotonic()
            ans = request(sock, {"cmd": "rollover", "who": "bench", "why": f"bench soak: end of day {d}"}, 300)
            if not ans.get("ok"):
                raise RuntimeError(f"rollover after day {d} failed: {ans}")
            res = ans.get("result", ans)
            _wait(lambda: request(sock, {"cmd": "status"})["sessions"]["venue"], 60, "venue logon", gw.alive)
            row["rollover"] = {"wall_s": round(time.monotonic() - t0, 3), "seconds": res.get("seconds"),
                               "order_path_paused_s": res.get("order_path_paused_s"), "day": res.get("day"),
                               "archive_days_deleted": res.get("archive_days_deleted"),
                               "open_orders": res.get("open_orders")}
            row["rss_after_rollover_kb"] = sample(gw.pid).get("rss_kb")
            gate = state / f"day{d + 1}.gate"
            gate.with_suffix(".tmp").write_text("reset")
            gate.with_suffix(".tmp").replace(gate)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "state_kb"}), flush=True)
    client.popen.wait(120)
    # The last day ends in a crash: SIGKILL, so the first restart replays what followed the daemon's latest
    # periodic checkpoint (gateway.control.checkpoint).
    gw.stopped_by_us = True
    gw.popen.kill()
    gw.popen.wait(30)
    argv, env, cwd = ctx["gateway_cmd"]
    # Three starts, each timed from exec to the "ready" log line: after that crash; after a clean stop (which
    # writes a checkpoint of the whole log); and at the start of a day (after a rollover: only the carried
    # book). Past days are never read.
    restart: dict[str, Any] = {}
    for name in ("after_crash", "full_day", "after_rollover"):
        proc = procs.start(f"gateway-restart-{name}", argv, env=env, cwd=cwd)
        t0 = time.monotonic()
        proc.wait_for_text('"msg": "ready"', 300)
        restart[f"{name}_startup_s"] = round(time.monotonic() - t0, 3)
        restart[f"{name}_rss_kb"] = sample(proc.pid).get("rss_kb")
        restart[f"{name}_rebuild"] = _rebuilt_line(proc.stderr)
        if name == "full_day":
            ans = request(sock, {"cmd": "rollover", "who": "bench", "why": "bench soak: end of the last day"}, 300)
            if not ans.get("ok"):
                raise RuntimeError(f"rollover after the last day failed: {ans}")
        t0 = time.monotonic()
        proc.stop(60)
        restart[f"{name}_stop_s"] = round(time.monotonic() - t0, 3)
    restart["state_kb"] = _sizes(gw_state)
    return {"days": rows, "restart": restart}


def _rebuilt_line(path: Path) -> dict[str, Any]:
    """What the start replayed: its "state rebuilt from the event log" line."""
    for line in reversed(path.read_text(errors="replace").splitlines()):
        if '"msg": "state rebuilt from the event log"' in line:
            ev = json.loads(line)
            return {k: ev.get(k) for k in ("events", "from_checkpoint", "seconds")}
    return {}


def verdict(rows: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """Flat when the peak RSS of every day from the second on is within `tolerance` of the first day's peak."""
    if len(rows) < 2 or not rows[0].get("peak_rss_kb"):
        return {"flat": None, "reason": "fewer than two days with RSS samples"}
    base = rows[0]["peak_rss_kb"]
    dev = [round(r["peak_rss_kb"] / base - 1, 3) for r in rows[1:]]
    return {"flat": all(abs(x) <= tolerance for x in dev), "first_day_peak_mib": round(base / 1024, 1),
            "deviation_by_day": dev, "completed": all(not r["lost"] for r in rows) and
            sum(r["answered"] for r in rows) == sum(r["orders"] for r in rows)}


def markdown(res: dict[str, Any]) -> str:
    v, during = res["verdict"], res.get("during") or {}
    rows, restart = during.get("days", []), during.get("restart", {})
    o = res["options"]
    lines = [f"Soak {res['run_id']}: {o['days']} trading days, {o['orders']:,} orders at {o['rate']:,}/s, venue "
             f"{o['venue']} ({o['venue_action']}), drop copy on, every session reset daily, retention "
             f"{o['retention_days']} days; commit {res['git'].get('commit')}.", "",
             "| day | orders | answered | filled | lost | rejects | p50 µs | p99 µs | peak RSS MiB | RSS at end MiB "
             "| rollover s (order path paused s) | RSS after rollover MiB | state folder MiB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ro = r.get("rollover") or {}
        lines.append(
            f"| {r['day']} | {r['orders']:,} | {r['answered']:,} | {r['filled']:,} | {r['lost']} | {r['rejects']} "
            f"| {r['p50_us'] or 0:,.0f} | {r['p99_us'] or 0:,.0f} | {r['peak_rss_kb'] / 1024:,.1f} "
            f"| {(r['rss_end_kb'] or 0) / 1024:,.1f} "
            f"| {ro.get('seconds', '-')} ({ro.get('order_path_paused_s', '-')}) "
            f"| {(r.get('rss_after_rollover_kb') or 0) / 1024:,.1f} | {sum(r['state_kb'].values()) / 1024:,.1f} |")
    last = rows[-1]["state_kb"] if rows else {}
    lines += ["", f"* state folder after the last day (KiB): {json.dumps(last)}",
              f"* RSS from day 2 within {o['tolerance']:.0%} of day 1's peak: "
              f"**{'yes' if v.get('flat') else 'NO' if v.get('flat') is False else 'unknown'}** "
              f"(day 1 peak {v.get('first_day_peak_mib')} MiB; deviation by day {v.get('deviation_by_day')})",
              f"* nothing lost: **{'yes' if v.get('completed') else 'NO'}**",
              f"* start-up on the soak's state, exec to the \"ready\" log line, with the last day's "
              f"{rows[-1]['orders'] if rows else 0:,} orders in its event log:"]
    for name, what in (("after_crash", "after a SIGKILL at the end of the last day"),
                       ("full_day", "after a clean stop"),
                       ("after_rollover", f"after a rollover (the carried book only, {len(rows)} days archived)")):
        rb = restart.get(f"{name}_rebuild") or {}
        lines.append(f"  * {what}: **{restart.get(f'{name}_startup_s')} s**, RSS "
                     f"{(restart.get(f'{name}_rss_kb') or 0) / 1024:,.1f} MiB; replayed {rb.get('events')} events "
                     f"after the checkpoint at event {rb.get('from_checkpoint')}; its clean stop took "
                     f"{restart.get(f'{name}_stop_s')} s")
    return "\n".join(lines) + "\n"
