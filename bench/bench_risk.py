"""Benchmark of the risk kernel: start-up (cold compile vs cache), in-line check latency with and
without VaR/ES, and batch replay throughput. Prints Markdown for docs/performance.md.

    .venv/bin/python bench/bench_risk.py            # full run (~2 minutes on 2 cores, cold start included)
    .venv/bin/python bench/bench_risk.py --quick    # smaller samples, no cold-compile run

Latencies are per call, measured with perf_counter_ns around each call (the timer's own ~50 ns
is included), as the median and 99th percentile over many calls. Nothing here is asserted in tests.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config.risk_models import RiskConfig, load_risk_config, risk_config_from_data  # noqa: E402

EX = ROOT / "config" / "examples"
SEC = 1_000_000_000

STARTUP_SNIPPET = """
import time
t0 = time.perf_counter()
import numba
from config.risk_models import load_risk_config
from risk.engine import RiskEngine
from risk.replay import EVENT_DTYPE, replay
import numpy as np
t1 = time.perf_counter()
ex = 'config/examples/'
cfg = load_risk_config(ex + 'instruments.csv', ex + 'accounts.toml', ex + 'limits.toml', ex + 'scenarios.csv')
e = RiskEngine(cfg, max_orders=1000)
replay(e.copy(), np.zeros(1, EVENT_DTYPE))
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def example_cfg(var: bool) -> RiskConfig:
    cfg = load_risk_config(EX / "instruments.csv", EX / "accounts.toml", EX / "limits.toml", EX / "scenarios.csv")
    if var:
        return cfg
    lim = cfg.limits.model_dump(by_alias=True, exclude_none=True)
    for scope in [lim["global"], *lim["accounts"].values()]:
        scope.pop("var_max", None)
        scope.pop("es_max", None)
    return risk_config_from_data([i.model_dump() for i in cfg.instruments],
                                 [a.model_dump() for a in cfg.accounts], lim, None)


def big_cfg(n_ins: int, n_scen: int, var: bool) -> RiskConfig:
    from risk.scenarios import generate_returns

    sectors = [f"SEC{k % 10}" for k in range(n_ins)]
    instruments = [{"symbol": f"S{k:04d}", "sector": sectors[k], "tick_size": 0.01, "reference_price": 100.0}
                   for k in range(n_ins)]
    accounts = [{"name": f"ACC{k}", "cash": 50_000_000.0} for k in range(1, 4)]
    g: dict[str, Any] = {"warn": 0.8, "qty_max": 10_000, "notional_max": 1_000_000, "collar_pct": 0.05,
                         "position_max": 50_000, "gross_max": 1e9, "net_max": 1e9, "sector_gross_max": 1e9,
                         "leverage_max": 40.0, "daily_loss_max": 1e7, "order_rate_max": 1000, "message_rate_max": 2000}
    if var:
        g |= {"var_max": 1e9, "es_max": 1e9}
    scen = generate_returns(sectors, n_scen, seed=1) if var else None
    return risk_config_from_data(instruments, accounts, {"settings": {"var_confidence": 0.99}, "global": g}, scen)


def startup(runs: int) -> list[tuple[float, float]]:
    """(import s, build-engine s) for a cold cache and then for cached runs, in fresh processes."""
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for _ in range(runs):
            r = subprocess.run([sys.executable, "-c", STARTUP_SNIPPET], cwd=ROOT, env=env, capture_output=True,
                               text=True, check=True)
            a, b = r.stdout.split()
            out.append((float(a), float(b)))
    return out


def inline(cfg: RiskConfig, n: int, positions: int = 0, qty: float = 100.0) -> tuple[float, float, float, str]:
    """Median/p99 ns of engine.check_new (the same order again and again), plus the loop mean."""
    from risk.engine import RiskEngine

    e = RiskEngine(cfg, n_sessions=4, max_orders=10_000)
    n_ins = len(cfg.instruments)
    for k in range(positions):  # give the book something to revalue
        e.on_external_fill(0, (k * 7) % n_ins, 1 + (k % 2), 100, e.reference_price((k * 7) % n_ins))
    i = 0
    px = e.reference_price(i)
    now = 2_000_000_000 * SEC
    check = e.check_new
    pc = time.perf_counter_ns
    for _ in range(n // 10):  # warm caches and branch predictors
        now += SEC // 20
        check(0, 0, i, 1, qty, px, False, False, now)
    ts = []
    for _ in range(n):
        now += SEC // 20
        t = pc()
        check(0, 0, i, 1, qty, px, False, False, now)
        ts.append(pc() - t)
    t = pc()
    for _ in range(n):
        now += SEC // 20
        check(0, 0, i, 1, qty, px, False, False, now)
    mean = (pc() - t) / n
    last = check(0, 0, i, 1, qty, px, False, False, now + SEC)
    ts.sort()
    return statistics.median(ts), ts[int(0.99 * len(ts))], mean, last.outcome.name


def replay_flow(n_orders: int, cfg: RiskConfig) -> np.ndarray:
    """Recorded flow: every order is followed by its full fill (60 %) or its cancel (40 %)."""
    from risk.replay import CANCEL, EVENT_DTYPE, FILL, NEW

    rng = np.random.default_rng(5)
    n_ins = len(cfg.instruments)
    ref = np.array([x.reference_price or 0.0 for x in cfg.instruments])
    ins = rng.integers(0, n_ins, n_orders)
    ins = np.where(ref[ins] > 0, ins, 0)
    ev = np.zeros(2 * n_orders, EVENT_DTYPE)
    new, nxt = ev[0::2], ev[1::2]
    new["kind"] = NEW
    new["session"] = rng.integers(0, 4, n_orders)
    new["account"] = rng.integers(0, 2, n_orders)  # ACC1, ACC2 (ACC3 may not trade every symbol)
    new["instrument"] = ins
    new["side"] = rng.choice([1, 2], n_orders)
    new["qty"] = rng.integers(1, 50, n_orders)
    new["price"] = ref[ins]
    new["now_ns"] = 2_000_000_000 * SEC + np.arange(n_orders) * (SEC // 40)
    new["ref"] = -1
    fill = rng.random(n_orders) < 0.6
    nxt["kind"] = np.where(fill, FILL, CANCEL)
    nxt["qty"] = new["qty"]
    nxt["price"] = new["price"]
    nxt["session"] = new["session"]
    nxt["now_ns"] = new["now_ns"] + 1
    nxt["ref"] = np.arange(0, 2 * n_orders, 2)
    return ev


def replay_rate(cfg: RiskConfig, n_orders: int, repeats: int) -> tuple[float, float, dict[str, int]]:
    from risk.engine import RiskEngine
    from risk.replay import columns, replay_columns

    ev = replay_flow(n_orders, cfg)
    cols = columns(ev)
    base = RiskEngine(cfg, n_sessions=4, max_orders=1000)
    replay_columns(base.copy(), tuple(c[:1000] for c in cols))  # compile/load outside the timing
    best = np.inf
    res = None
    for _ in range(repeats):
        eng = base.copy()
        t = time.perf_counter()
        res = replay_columns(eng, cols)
        best = min(best, time.perf_counter() - t)
    assert res is not None
    return n_orders / best, len(ev) / best, dict(res.rejects())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 20_000 if args.quick else 200_000
    print(f"## Risk kernel benchmark\n\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numba {__import__('numba').__version__}, "
          f"numpy {np.__version__}\n")
    if not args.quick:
        runs = startup(3)
        print("### Start-up (fresh process; import, then load config + build engine + compile or load kernels)\n")
        print("| run | import s | config + engine + kernels s |\n| --- | --- | --- |")
        for k, (a, b) in enumerate(runs):
            print(f"| {'cold (empty numba cache)' if k == 0 else 'cached'} | {a:.2f} | {b:.2f} |")
        print()
    print("### In-line check (engine.check_new from Python, every rule evaluated unless a reject stops it)\n")
    print("| case | median ns | p99 ns | loop mean ns | outcome |\n| --- | --- | --- | --- | --- |")
    no_var = example_cfg(False)
    for label, cfg, pos, qty in (
        ("every rule but VaR, example config (12 instruments)", no_var, 0, 100.0),
        ("same, accept with a warning (notional 86 % of limit)", no_var, 0, 4500.0),
        ("same, reject (QTY_MAX, evaluated after 16 other rules)", no_var, 0, 20_000.0),
        ("every rule but VaR, 1,000 instruments, 300 positions", big_cfg(1000, 0, False), 300, 100.0),
        ("with VaR/ES, example config (500 scenarios x 12)", example_cfg(True), 0, 100.0),
        ("with VaR/ES, 1,000 scenarios x 1,000 instruments, 300 positions", big_cfg(1000, 1000, True), 300, 100.0),
    ):
        med, p99, mean, out = inline(cfg, n, pos, qty)
        print(f"| {label} | {med:.0f} | {p99:.0f} | {mean:.0f} | {out} |")
    print("\n### Batch replay (one compiled loop; each order then fully filled or cancelled)\n")
    print("| case | orders/s | events/s | rejects |\n| --- | --- | --- | --- |")
    n_orders = 200_000 if args.quick else 2_000_000
    for label, cfg in (("every rule but VaR, example config", example_cfg(False)),
                       ("with VaR/ES, example config (500 scenarios)", example_cfg(True))):
        o, e, rej = replay_rate(cfg, n_orders, 3)
        print(f"| {label}, {n_orders:,} orders | {o / 1e6:.2f} M | {e / 1e6:.2f} M | {rej or 'none'} |")


if __name__ == "__main__":
    main()
