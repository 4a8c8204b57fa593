"""The controls report and the surveillance on a synthetic busy day: how long each takes.

    .venv/bin/python bench/controls_report.py [--orders 200000]

Writes the day of bench/what_if.py (N new orders, each filled) as the gateway's event log, projects it into a
journal as the running gateway would, then times: the surveillance detector over the day (what the live thread
spends per event, and `fixgw surveillance`), and `fixgw report controls` (its journal queries, the utilisation
replay and chart, the three files).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from config.settings import load_config  # noqa: E402
from gateway.control import controls_report  # noqa: E402
from gateway.events.journal import Journal  # noqa: E402
from gateway.events.log import EventLog  # noqa: E402
from gateway.events.surveillance import Detector  # noqa: E402
from what_if import SESSION, write_day  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=200_000)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "gateway"
        state.mkdir()
        log = state / "events.log"
        write_day(log, a.orders)
        events = list(EventLog.read(log))
        j = Journal(state / "journal.sqlite")
        j.catch_up(events)
        j.stop()
        cfg = load_config(ROOT / "config" / "demo" / "gateway.toml")
        clients = [c.model_copy(update={"target_comp_id": SESSION.split("->")[0], "sender_comp_id": SESSION.split("->")[1]})
                   for c in cfg.acceptor.clients[:1]]
        cfg = cfg.model_copy(update={"gateway": cfg.gateway.model_copy(update={"state_dir": state}),
                                     "acceptor": cfg.acceptor.model_copy(update={"clients": clients})})
        det = Detector(cfg.surveillance)
        t0 = time.perf_counter()
        alerts = sum(len(det.on_event(ev)) for ev in events)
        surv = time.perf_counter() - t0
        t0 = time.perf_counter()
        paths = controls_report.run(cfg, "20270104", Path(tmp) / "out")
        report = time.perf_counter() - t0
        md = paths[0].read_text()
    print(f"day: {a.orders:,} orders, {len(events):,} events (each order filled)")
    print(f"surveillance: {surv:.2f} s, {surv / len(events) * 1e6:.2f} us/event, {alerts:,} alerts")
    print(f"report controls: {report:.2f} s for the three files ({len(md.splitlines())} Markdown lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
