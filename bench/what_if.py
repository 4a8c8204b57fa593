"""What-if on a synthetic busy day: how long `fixgw what-if` takes, and how fast the kernel replays.

    .venv/bin/python bench/what_if.py [--orders 1000000] [--var]

Writes a day of N new orders (AAPL/MSFT/JPM, each account buying and selling in turn, each order filled) as the
gateway's event
log would hold it, then runs gateway.control.what_if's steps on it, and prints the time to read the
log, to build the kernel's arrays, and the two replays (events per second). The proposed limits cap JPM orders
at 50, so a third of the day's orders change. Without --var the limits have no VaR
or ES limit (the issue's >= 1 M orders/s figure is for that case).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config.risk_models import load_risk_config  # noqa: E402
from gateway.control import what_if  # noqa: E402
from gateway.events import schema  # noqa: E402
from gateway.events.log import EventLog  # noqa: E402

EX = ROOT / "config" / "examples"
SESSION = "FIXGW->BENCH"
SYMBOLS = (("AAPL", 190.0), ("MSFT", 410.0), ("JPM", 200.0))


def write_day(path: Path, n: int) -> None:
    t0 = 1_800_000_000_000_000_000
    with open(path, "wb") as f:
        f.write(schema.encode_line(schema.DayStart(q=1, prefix="B-", day="20270104", ts=t0)))
        q = 2
        for i in range(n):
            sym, px = SYMBOLS[i % 3]
            ts = t0 + i * 50_000  # 20k orders a second: under the example rate limits
            side = "1" if i % 2 == 0 else "2"
            acc = "ACC1" if i % 4 < 2 else "ACC2"
            f.write(schema.encode_line(schema.NewOrder(
                q=q, request=i + 1, session=SESSION, cl_ord_id=f"C{i}", venue_cl_ord_id=f"B-{i + 1}", number=i + 1,
                account=acc, symbol=sym, side=side, ord_type="2", qty=100, px=px, ts=ts)))
            q += 1
            # each order fills at once: each account buys and sells in turn, so its book stays flat
            f.write(schema.encode_line(schema.Execution(
                q=q, venue_cl_ord_id=f"B-{i + 1}", number=i + 1, exec_type="F", exec_id=f"E{i}", ord_status="2",
                last_qty=100, last_px=px, cum_qty=100, avg_px=px, session=SESSION, account=acc, symbol=sym,
                side=side, cl_ord_id=f"C{i}", ts=ts + 1000)))
            q += 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=1_000_000)
    p.add_argument("--var", action="store_true", help="keep the example VaR and ES limits")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="fixgw-whatif-") as tmp:
        d = Path(tmp)
        limits = (EX / "limits.toml").read_text().replace("order_rate_max = 50", "order_rate_max = 100_000") \
            .replace("message_rate_max = 100 ", "message_rate_max = 100_000 ")
        for big in ("position_max = 50_000", "gross_max = 5_000_000", "net_max = 3_000_000",
                    "sector_gross_max = 2_500_000"):
            name = big.split(" = ")[0]
            limits = limits.replace(big, f"{name} = 1e15")
        if not a.var:
            limits = "\n".join(line for line in limits.splitlines() if not line.strip().startswith(("var_max", "es_max")))
        (d / "limits.toml").write_text(limits)
        (d / "proposed").mkdir()
        (d / "proposed" / "limits.toml").write_text(limits + "\n[instruments.JPM]\nqty_max = 50\n")  # a third
        in_force = load_risk_config(EX / "instruments.csv", EX / "accounts.toml", d / "limits.toml",
                                    EX / "scenarios.csv" if a.var else None)
        proposed = load_risk_config(EX / "instruments.csv", EX / "accounts.toml", d / "proposed" / "limits.toml",
                                    EX / "scenarios.csv" if a.var else None)
        log = d / "events.log"
        write_day(log, a.orders)
        t0 = time.perf_counter()
        r = what_if.compare(EventLog.read(log), "20270104", in_force, proposed, [SESSION], 1_000_000)
        total = time.perf_counter() - t0
        n = r.requests + r.fills
        print(f"{a.orders:,} orders: {r.requests:,} requests and {r.fills:,} fills "
              f"({'with' if a.var else 'without'} VaR/ES limits)")
        print(f"read the log, build the kernel's arrays {r.load_seconds:7.2f} s  ({n / r.load_seconds:,.0f} events/s)")
        print(f"two replays through the kernel          {r.seconds:7.3f} s  ({r.events_per_s:,.0f} events/s, "
              f"{2 * r.requests / r.seconds:,.0f} requests/s)")
        print(f"decisions that change                   {len(r.changed):,} ({dict(r.counts('after'))})")
        print(f"total                                   {total:7.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
