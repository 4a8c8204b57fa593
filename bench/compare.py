"""Compare bench/run results side by side (one arrangement across runs): the experiments table.

    python bench/compare.py RUN1.json RUN2.json ... [--arrangement gateway]

One row per run: label (the run's tag), server CPU µs per order at each rate, p50/p99 at each rate, the
highest rate sustained and the best burst throughput.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

SERVER = {"gateway": "gateway", "passthrough": "proxy", "direct": "venue"}


def row(res: dict[str, Any], name: str, rates: list[float]) -> str:
    a = res["arrangements"].get(name)
    label = res["run_id"].split("-", 2)[-1]
    if not a:
        return f"| {label} | (no {name}) |"
    cells = []
    by_rate = {p["rate"]: p for p in report.rate_phases(a)}
    srv = SERVER[name]
    for r in rates:
        p = by_rate.get(r)
        if not p or not p.get("lat_us"):
            cells.append("-")
            continue
        cpu = p.get("procs", {}).get(srv, {}).get("cpu_us_per_order")
        mark = "" if report.sustained(p) else " ✗"
        cells.append(f"{p['lat_us']['p50']:,.0f} / {p['lat_us']['p99']:,.0f} / {cpu:,.0f}{mark}")
    bursts = [p.get("ack_rate") or 0 for p in a.get("phases", []) if p["kind"] == "burst"]
    others = [p.get("other_cores", 0) for p in a.get("phases", [])]
    return (f"| {label} | " + " | ".join(cells) + f" | {report._f(report.max_sustained(a))} | "
            f"{report._f(max(bursts) if bursts else None)} | {max(others) if others else 0:.2f} |")


def table(results: list[dict[str, Any]], name: str) -> str:
    rates = sorted({p["rate"] for r in results for p in report.rate_phases(r["arrangements"].get(name, {}))})
    head = ("| variant | " + " | ".join(f"{r:,.0f}/s p50 / p99 µs / CPU µs per order" for r in rates) +
            " | max sustained/s | burst/s | max other load, cores |")
    sep = "|---|" + "---:|" * (len(rates) + 3)
    return "\n".join([head, sep] + [row(r, name, rates) for r in results])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+")
    p.add_argument("--arrangement", default="gateway", choices=tuple(SERVER))
    a = p.parse_args(argv)
    res = [json.loads(Path(f).read_text()) for f in a.results]
    print(table(res, a.arrangement))
    return 0


if __name__ == "__main__":
    sys.exit(main())
