"""What an open console page costs the gateway: the time to take one snapshot (status under the order path's
lock, warn levels, the journal's newest rows, breaks, counters) and to render the page's parts.

    .venv/bin/python bench/console.py [--orders 400] [--takes 200]

Starts the demo's venue simulator and gateway on 127.0.0.1, sends N orders from a scripted OMS session (most
filled, JPM resting), then times N takes. A page asks for one snapshot every `refresh_s` (0.5 s), shared by all
open pages.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config.settings import ControlsSettings  # noqa: E402
from gateway.control.console import snapshot, views  # noqa: E402
from gateway.control.console.auth import User  # noqa: E402
from gateway.service import Gateway  # noqa: E402
from sim.demo import demo_configs  # noqa: E402
from sim.oms_client import OmsClient  # noqa: E402
from sim.venue import VenueSim  # noqa: E402


def main() -> int:
    import logging

    logging.disable(logging.WARNING)  # the flow is one wash trade after another: its alerts are not the point
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=400)
    p.add_argument("--takes", type=int, default=200)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg, sim_cfg = demo_configs(Path(tmp))
        cfg = cfg.model_copy(update={"marketdata": None, "controls": ControlsSettings()})
        sim = VenueSim(sim_cfg.model_copy(update={"dropcopy_faults": [], "marketdata": [], "prices": {}}))
        sim.start()
        gw = Gateway(cfg)
        gw.start()
        c = OmsClient("OMS1", "FIXGW", cfg.acceptor.port, Path(tmp) / "oms1")
        c.start()
        try:
            assert gw.venue_logged_on.wait(15) and c.wait_logon(15)
            for i in range(a.orders):
                sym, px = (("JPM", 200.0) if i % 10 == 0 else ("AAPL", 190.0))
                c.new_order(f"B{i}", "ACC1" if i % 2 else "ACC2", sym, "1" if i % 4 < 2 else "2", 10, px)
                time.sleep(0.025)  # under the example order-rate limits; sleeps, not a busy-wait
            c.wait_for(lambda m: m.get(11) == f"B{a.orders - 1}", timeout=30)
            gw.journal.flush()
            user = User("bench", "operator", "")
            takes, renders = [], []
            for _ in range(a.takes):
                t0 = time.perf_counter()
                snap = snapshot.take(gw, time.monotonic())
                t1 = time.perf_counter()
                views.parts(snap, user)
                renders.append(time.perf_counter() - t1)
                takes.append(t1 - t0)
            open_orders = snap.status["open_orders"]
        finally:
            c.stop()
            gw.stop()
            sim.stop()
    q = statistics.quantiles
    print(f"{a.orders} orders sent, {open_orders} open; {a.takes} snapshots")
    print(f"snapshot: p50 {statistics.median(takes) * 1e3:.2f} ms, p99 {q(takes, n=100)[98] * 1e3:.2f} ms")
    print(f"render:   p50 {statistics.median(renders) * 1e3:.2f} ms, p99 {q(renders, n=100)[98] * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
