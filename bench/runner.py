"""bench/run: the order-path benchmark, three arrangements in one run.

    direct       load client -> venue simulator
    passthrough  load client -> bench/passthrough.py (bare QuickFIX, no checks) -> venue simulator
    gateway      load client -> `fixgw run` (every check on, bench/configs/gateway.toml) -> venue simulator
    floor        load client -> bench/floor.py (the pass-through plus the least any gateway must do in
                 Python: read once, re-ID, log the event, forward) -> venue simulator; only when named

Each arrangement gets fresh state folders and its own processes (venue simulator, proxy or gateway, load
client: three processes sharing the machine's cores). The load client runs the same plan against each: a
warm-up, fixed rates ascending, then bursts. Results go to bench/results/<run>.json, the tables to stdout and
<run>.md, the latency-vs-rate plot to <run>.png.

    bench/run                      # the default run (about 3-4 minutes)
    bench/run --quick              # a 30-second sanity run
    bench/run --rates 1000,2000 --duration 5 --bursts 2000 --arrangements passthrough,gateway
    bench/run --profile            # py-spy profile of the gateway's order path at --profile-rate
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (BENCH, CONFIGS, PYTHON, RESULTS, ROOT, Procs, background_cores,  # noqa: E402
                    free_port, git_commit, install_stop_handlers, machine_info)
from config.toml_writer import dump_toml  # noqa: E402
import report  # noqa: E402

import tomllib  # noqa: E402

FIXGW = PYTHON.parent / "fixgw"
ARRANGEMENTS = ("direct", "passthrough", "gateway")
EXTRA_ARRANGEMENTS = ("floor",)  # bench/floor.py: run only when named
DEFAULT_RATES = "500,1000,2000,3000,4000,5000,6000"

_live: list[Procs] = []


def _cleanup() -> None:
    for p in _live:
        p.stop_all(timeout=5)


def build_plan(a: argparse.Namespace) -> list[dict[str, Any]]:
    plan: list[dict[str, Any]] = []
    if a.warmup:
        plan.append({"name": "warmup", "kind": "rate", "rate": 500, "orders": a.warmup, "settle_s": 0.5})
    # bursts first: after the rate ladder has found a server's ceiling its queues may still be settling
    for b in a.bursts:
        plan.append({"name": f"burst-{b}", "kind": "burst", "orders": b, "settle_s": 1.0})
    for r in a.rates:
        plan.append({"name": f"rate-{r}", "kind": "rate", "rate": r, "duration": a.duration, "settle_s": 0.5,
                     "ladder": not a.full_ladder})
    return plan


def plan_budget_s(plan: list[dict[str, Any]], ack_timeout: float) -> float:
    t = 0.0
    for ph in plan:
        n = ph.get("orders") or ph["rate"] * ph["duration"]
        if ph["kind"] == "burst":
            n = ph["orders"]
        t += (n / ph["rate"] * 3 + 5 if ph["kind"] == "rate" else n / 500) + ack_timeout + ph["settle_s"] + 1
    return t + 60


def sim_config(state: Path, port: int, action: str, dc_port: int) -> Path:
    doc = tomllib.loads((CONFIGS / "venue_sim.toml").read_text())
    sim = doc["venue_sim"]
    sim["port"] = port
    sim["dropcopy_port"] = dc_port
    sim["state_dir"] = str(state / "venue-sim")
    for rule in sim.get("rules", []):
        rule["action"] = action
    path = state / "venue_sim.toml"
    path.write_text(dump_toml(doc))
    return path


def gateway_config(state: Path, port: int, venue_port: int, dc_port: int,
                   overrides: list[str] | None = None) -> Path:
    doc = tomllib.loads((CONFIGS / "gateway.toml").read_text())
    if "dropcopy" in doc:
        doc["dropcopy"]["port"] = dc_port
    for ov in overrides or []:  # "section.key=TOML value", e.g. gateway.fix_message_log=false
        key, _, val = ov.partition("=")
        path, _, name = key.strip().rpartition(".")
        tables: list[dict[str, Any]] = [doc]
        for part in path.split("."):  # a list of tables (acceptor.clients) takes the value in each of its tables
            nxt = [t.setdefault(part, {}) for t in tables]
            tables = [x for t in nxt for x in (t if isinstance(t, list) else [t])]
        for t in tables:
            t[name] = tomllib.loads(f"v = {val.strip()}")["v"]
    doc["gateway"]["state_dir"] = str(state / "gateway")
    doc["acceptor"]["port"] = port
    doc["venue"]["port"] = venue_port
    for k, v in list(doc.get("risk", {}).items()):
        doc["risk"][k] = str((CONFIGS / v).resolve())
    path = state / "gateway.toml"
    path.write_text(dump_toml(doc))
    return path


def gateway_argv(a: argparse.Namespace) -> tuple[list[str], dict[str, str], Path]:
    if a.gateway_src:
        src = Path(a.gateway_src).resolve()
        return ([str(PYTHON), "-c", "import sys; from gateway.cli import main; sys.exit(main())"],
                {"PYTHONPATH": str(src)}, src)
    return [str(FIXGW)], {}, ROOT


def run_arrangement(name: str, a: argparse.Namespace, plan: list[dict[str, Any]], run_dir: Path,
                    during: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Start the arrangement's servers, run the load client's plan against them, stop everything.

    `during` (bench/soak) is called once the client is started, instead of waiting for the client: with the
    processes, the gateway's config and the client's result path; it must return when the client is done (it
    may stop and restart the gateway meanwhile); what it returns is the result's "during"."""
    state = run_dir / name
    state.mkdir(parents=True)
    procs = Procs(state)
    _live.append(procs)
    res: dict[str, Any] = {"arrangement": name, "phases": [], "error": ""}
    t0 = time.monotonic()
    gateway_cmd = None
    try:
        vport = free_port()
        dc_port = vport if a.venue == "fast" else free_port()  # the fast venue serves both on one port
        if a.venue == "fast":
            sim = procs.start("venue-fast", [str(PYTHON), str(BENCH / "fastvenue.py"), "--port", str(vport),
                                             "--action", a.venue_action])
            sim.wait_for_text("listening", 60)
        else:
            sim = procs.start("venue-sim", [str(FIXGW), "venue-sim", "--config",
                                            str(sim_config(state, vport, a.venue_action, dc_port))])
            sim.wait_for_text("venue simulator listening", 60)
        watch = {"venue": sim.pid}
        if name == "direct":
            port, target = vport, "VENUE"
        elif name in ("passthrough", "floor"):
            port, target = free_port(), "FIXGW"
            pt = procs.start(name, [str(PYTHON), str(BENCH / f"{name}.py"), "--listen-port", str(port),
                                    "--venue-port", str(vport), "--state-dir", str(state / name),
                                    *a.passthrough_args.split()])
            pt.wait_for_text('"ready": true', 60, stream="stdout")
            watch["proxy" if name == "passthrough" else "floor"] = pt.pid
        else:
            port, target = free_port(), "FIXGW"
            argv, env, cwd = gateway_argv(a)
            gw_cfg = gateway_config(state, port, vport, dc_port, a.gateway_override)
            gw = procs.start("gateway", argv + ["run", "--config", str(gw_cfg)], env=env, cwd=cwd)
            gateway_cmd = (argv + ["run", "--config", str(gw_cfg)], env, cwd)
            gw.wait_for_text("venue session logged on", 90)
            watch["gateway"] = gw.pid
            res["gateway_config"] = str(gw_cfg)
        (state / "plan.json").write_text(json.dumps(plan))
        out = state / "client.json"
        argv = [str(PYTHON), str(BENCH / "loadclient.py"), "--port", str(port), "--target", target,
                "--plan", f"@{state / 'plan.json'}", "--out", str(out), "--ack-timeout", str(a.ack_timeout),
                "--max-backlog-s", str(a.max_backlog_s)]
        for k, pid in watch.items():
            argv += ["--watch", f"{k}={pid}"]
        profiler = None
        client = procs.start("client", argv)
        if a.profile and name == "gateway":
            profiler = start_profiler(a, procs, watch["gateway"], state)
        budget = plan_budget_s(plan, a.ack_timeout)
        if during is not None:
            res["during"] = during({"procs": procs, "client": client, "watch": watch, "state": state,
                                    "out": out, "gateway_config": res.get("gateway_config"), "budget_s": budget,
                                    "gateway_cmd": gateway_cmd})
        else:
            try:
                client.popen.wait(budget)
            except Exception:
                res["error"] = f"client did not finish within {budget:.0f}s"
        for label, p in (("client", client), ("profiler", profiler)):
            if p is not None and p.alive():
                p.stop(5)
        if out.exists():
            res.update(json.loads(out.read_text()))
        elif not res["error"]:
            res["error"] = f"client wrote no result:\n{client.tail()}"
        for p in procs.started:
            if p.name in ("gateway", "passthrough", "floor", "venue-sim", "venue-fast") and not p.alive() \
                    and not p.stopped_by_us:
                res["error"] += f" {p.name} exited early ({p.popen.returncode}): {p.tail(5)}"
        if profiler is not None:
            res["profile"] = str(state / "profile.raw.txt")
    except Exception as e:
        res["error"] = f"{type(e).__name__}: {e}"
    finally:
        res["stop_codes"] = procs.stop_all(timeout=10)
        _live.remove(procs)
    res["wall_s"] = round(time.monotonic() - t0, 1)
    return res


def start_profiler(a: argparse.Namespace, procs: Procs, pid: int, state: Path) -> Any:
    spy = PYTHON.parent / "py-spy"
    if not spy.exists():
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy (optional bench tooling)")
    time.sleep(a.profile_delay)
    args = [str(spy), "record", "--pid", str(pid), "--duration", str(a.profile_seconds), "--rate", "250",
            "--format", "raw", "-o", str(state / "profile.raw.txt"), "--threads"]
    if a.profile_native:
        args.append("--native")  # py-spy must pause the process to unwind C++ stacks: slows it down
    else:
        args.append("--nonblocking")  # sample without pausing the gateway
    if a.profile_gil:
        args.append("--gil")
    return procs.start("py-spy", args)


def wait_idle(limit_s: float, threshold: float = 0.25) -> float:
    """Wait (at most limit_s) until other processes use less than `threshold` cores; returns the last reading."""
    deadline = time.monotonic() + limit_s
    while True:
        busy = background_cores([], 2.0)
        if busy < threshold or time.monotonic() > deadline:
            print(f"background load {busy:.2f} cores{'' if busy < threshold else ' (gave up waiting)'}", flush=True)
            return busy
        print(f"machine busy ({busy:.2f} cores used by other processes), waiting ...", flush=True)
        time.sleep(8)


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default=DEFAULT_RATES, help=f"offered rates, orders/s (default {DEFAULT_RATES})")
    p.add_argument("--duration", type=float, default=4.0, help="seconds per rate (default 4)")
    p.add_argument("--bursts", default="1000,5000", help="burst sizes, orders (default 1000,5000)")
    p.add_argument("--full-ladder", action="store_true",
                   help="keep offering higher rates after the first one an arrangement did not sustain")
    p.add_argument("--warmup", type=int, default=1000, help="warm-up orders at 500/s, not reported")
    p.add_argument("--arrangements", default=",".join(ARRANGEMENTS))
    p.add_argument("--venue", choices=("sim", "fast"), default="sim",
                   help="sim: `fixgw venue-sim` (default); fast: bench/fastvenue.py, to find ceilings above ~4k/s")
    p.add_argument("--venue-action", choices=("ack", "fill"), default="ack")
    p.add_argument("--max-backlog-s", type=float, default=1.0,
                   help="the client abandons a rate once this many seconds of orders are unanswered")
    p.add_argument("--ack-timeout", type=float, default=15.0, help="an order not acked this long after its "
                   "phase's last send is lost")
    p.add_argument("--passthrough-args", default="", help="extra flags for bench/passthrough.py")
    p.add_argument("--gateway-override", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="change one setting of bench/configs/gateway.toml, e.g. gateway.fix_message_log=false")
    p.add_argument("--gateway-src", help="run the gateway from this source tree (a scratch copy) instead")
    p.add_argument("--wait-idle", type=float, default=0, metavar="S",
                   help="first wait up to S seconds for other processes to leave the cores idle")
    p.add_argument("--tag", default="", help="suffix of the results' file names")
    p.add_argument("--out-dir", default=str(RESULTS))
    p.add_argument("--keep-state", action="store_true", help="keep var/bench/<run>/ (logs, stores)")
    p.add_argument("--quick", action="store_true", help="rates 1000,3000 for 2 s, one burst of 1000")
    p.add_argument("--profile", action="store_true", help="py-spy the gateway during the run")
    p.add_argument("--profile-rate", type=int, default=2000)
    p.add_argument("--profile-seconds", type=int, default=15)
    p.add_argument("--profile-delay", type=float, default=3.0)
    p.add_argument("--profile-native", action="store_true", help="include QuickFIX's C++ frames")
    p.add_argument("--profile-gil", action="store_true", help="only samples of the thread holding the GIL")
    a = p.parse_args(argv)
    if a.quick:
        a.rates, a.duration, a.bursts, a.warmup = "1000,3000", 2.0, "1000", 300
    if a.profile:
        a.arrangements = "gateway"
        a.rates = str(a.profile_rate)
        a.duration = a.profile_seconds + a.profile_delay + 3
        a.bursts = ""
        a.max_backlog_s = max(a.max_backlog_s, 60.0)  # a pausing profiler (--native) slows the gateway down
    a.rates = [int(x) for x in str(a.rates).split(",") if x]
    a.bursts = [int(x) for x in str(a.bursts).split(",") if x]
    names = [x for x in a.arrangements.split(",") if x]
    for n in names:
        if n not in ARRANGEMENTS + EXTRA_ARRANGEMENTS:
            p.error(f"unknown arrangement {n}")
    install_stop_handlers(_cleanup)
    if a.wait_idle:
        wait_idle(a.wait_idle)

    run_id = time.strftime("%Y%m%d-%H%M%S") + (f"-{a.tag}" if a.tag else "")
    run_dir = ROOT / "var" / "bench" / run_id
    run_dir.mkdir(parents=True)
    plan = build_plan(a)
    res: dict[str, Any] = {
        "run_id": run_id, "machine": machine_info(), "git": git_commit(),
        "command": "bench/run " + " ".join(sys.argv[1:] if argv is None else argv),
        "options": {"rates": a.rates, "duration_s": a.duration, "bursts": a.bursts, "warmup": a.warmup,
                    "venue": a.venue, "venue_action": a.venue_action, "max_backlog_s": a.max_backlog_s,
                    "passthrough_args": a.passthrough_args,
                    "gateway_src": a.gateway_src, "gateway_override": a.gateway_override, "ack_timeout_s": a.ack_timeout},
        "plan": plan, "arrangements": {}}
    print(f"bench run {run_id}: {', '.join(names)}; rates {a.rates}/s x {a.duration:g}s, bursts {a.bursts}",
          flush=True)
    try:
        for name in names:
            print(f"-- {name} ...", flush=True)
            r = run_arrangement(name, a, plan, run_dir)
            res["arrangements"][name] = r
            print(f"   done in {r['wall_s']}s{'; ERROR ' + r['error'] if r['error'] else ''}", flush=True)
    finally:
        _cleanup()
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{run_id}.json"
    summary = ""
    if a.profile:
        prof = res["arrangements"].get("gateway", {}).get("profile")
        if prof and Path(prof).exists():
            import profile_summary
            dest = out_dir / f"{run_id}-profile.raw.txt"
            shutil.copy(prof, dest)
            res["arrangements"]["gateway"]["profile"] = _rel(dest)
            summary = profile_summary.summarize(dest)
            (out_dir / f"{run_id}-profile.md").write_text(summary)
    json_path.write_text(json.dumps(res, indent=1))
    md = report.markdown(res)
    (out_dir / f"{run_id}.md").write_text(md)
    png = out_dir / f"{run_id}.png"
    plotted = not a.profile and report.plot(res, png)
    print(summary)
    print(md)
    if plotted:
        print(f"plot: {_rel(png)}")
    print(f"results: {_rel(json_path)}")
    if not a.keep_state:
        shutil.rmtree(run_dir, ignore_errors=True)
    errors = [n for n, r in res["arrangements"].items() if r.get("error")]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
