"""Batch reconciliation of one trading day and the report writers.

The report is a pure function of (fills, grace, as_of): no wall clock, no dict-order accidents, so the live
store and the offline logs produce byte-identical files for the same fills.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from gateway.recon.matcher import PositionDiff, Reconciler, match_all
from gateway.recon.model import Break, BreakType, FillRecord, FillView, LogProblem, format_ns, format_qty

FORMATS = ("md", "csv", "json")


@dataclass(frozen=True)
class ReconReport:
    trade_date: str
    as_of_ns: int
    grace_ns: int
    gateway_messages: int
    dropcopy_messages: int
    matched_by_exec_id: int
    matched_by_order: int
    pending_gateway: int
    pending_dropcopy: int
    open_by_type: dict[str, int]
    resolved_by_type: dict[str, int]
    breaks: tuple[Break, ...]
    positions: tuple[PositionDiff, ...]
    input_problems: tuple[LogProblem, ...] = field(default=())

    @property
    def matched(self) -> int:
        return self.matched_by_exec_id + self.matched_by_order

    @property
    def open_breaks(self) -> int:
        return sum(self.open_by_type.values())

    @property
    def position_differences(self) -> tuple[PositionDiff, ...]:
        return tuple(p for p in self.positions if p.diff != 0)


def reconcile_records(gateway_fills: Iterable[FillRecord], dropcopy_fills: Iterable[FillRecord], grace_ns: int,
                      as_of_ns: int, trade_date: str | None = None, price_tolerance: float = 1e-9,
                      problems: Sequence[LogProblem] = (), match_on_order: bool = False) -> ReconReport:
    """Feed everything through one Reconciler in receive order, then expire grace periods at as_of_ns."""
    gw, dc = list(gateway_fills), list(dropcopy_fills)
    if trade_date is None:
        days = {r.trade_date for r in gw + dc}
        if len(days) > 1:
            raise ValueError(f"fills span several trading days {sorted(days)}: pass trade_date")
        trade_date = days.pop() if days else ""
    gw = [r for r in gw if r.trade_date == trade_date]
    dc = [r for r in dc if r.trade_date == trade_date]
    rec = Reconciler(grace_ns, price_tolerance, match_on_order)
    match_all(rec, gw, dc)
    rec.tick(as_of_ns)
    breaks = tuple(rec.breaks())
    messages, pending = rec.message_counts(), rec.pending_counts()
    return ReconReport(
        trade_date=trade_date, as_of_ns=as_of_ns, grace_ns=grace_ns,
        gateway_messages=messages["gateway"], dropcopy_messages=messages["dropcopy"],
        matched_by_exec_id=rec.matched_by["exec_id"], matched_by_order=rec.matched_by["order"],
        pending_gateway=pending["gateway"], pending_dropcopy=pending["dropcopy"],
        open_by_type={t.value: sum(1 for b in breaks if b.type is t and b.is_open) for t in BreakType},
        resolved_by_type={t.value: sum(1 for b in breaks if b.type is t and not b.is_open) for t in BreakType},
        breaks=breaks, positions=tuple(rec.position_differences()), input_problems=tuple(problems))


# --------------------------------------------------------------------------- flat views
BREAK_COLUMNS = ("id", "type", "status", "trade_date", "exec_id", "order_id", "cl_ord_id", "account", "symbol",
                 "gw_exec_id", "gw_exec_type", "gw_side", "gw_qty", "gw_px", "gw_transact_time",
                 "dc_exec_id", "dc_exec_type", "dc_side", "dc_qty", "dc_px", "dc_transact_time",
                 "detected_at", "resolved_at", "note")
POSITION_COLUMNS = ("account", "symbol", "gateway_net_qty", "dropcopy_net_qty", "diff")


def _side_cells(view: FillView | None) -> list[str]:
    if view is None:
        return [""] * 6
    return [view.exec_id, view.exec_type, view.side, format_qty(view.qty), format_qty(view.px), view.transact_time]


def break_row(brk: Break) -> list[str]:
    return [brk.id, brk.type.value, brk.status.value, brk.trade_date, brk.exec_id, brk.order_id, brk.cl_ord_id,
            brk.account, brk.symbol, *_side_cells(brk.gateway), *_side_cells(brk.dropcopy),
            format_ns(brk.detected_ns), format_ns(brk.resolved_ns), brk.note]


def position_row(p: PositionDiff) -> list[str]:
    return [p.account, p.symbol, format_qty(p.gateway_net_qty), format_qty(p.dropcopy_net_qty), format_qty(p.diff)]


def _view_dict(view: FillView | None) -> dict[str, object] | None:
    if view is None:
        return None
    return {"exec_id": view.exec_id, "exec_type": view.exec_type, "order_id": view.order_id,
            "cl_ord_id": view.cl_ord_id, "side": view.side, "qty": view.qty, "px": view.px,
            "transact_time": view.transact_time, "received_at": format_ns(view.received_ns)}


def report_dict(report: ReconReport) -> dict[str, object]:
    return {
        "trade_date": report.trade_date,
        "as_of": format_ns(report.as_of_ns),
        "grace_seconds": report.grace_ns / 1e9,
        "totals": {
            "gateway_messages": report.gateway_messages, "dropcopy_messages": report.dropcopy_messages,
            "matched": report.matched, "matched_by_exec_id": report.matched_by_exec_id,
            "matched_by_order": report.matched_by_order,
            "pending_gateway": report.pending_gateway, "pending_dropcopy": report.pending_dropcopy,
            "open_breaks": report.open_breaks, "open_by_type": report.open_by_type,
            "resolved_by_type": report.resolved_by_type,
            "position_differences": len(report.position_differences),
        },
        "breaks": [{"id": b.id, "type": b.type.value, "status": b.status.value, "trade_date": b.trade_date,
                    "keys": b.keys(), "gateway": _view_dict(b.gateway), "dropcopy": _view_dict(b.dropcopy),
                    "detected_at": format_ns(b.detected_ns), "resolved_at": format_ns(b.resolved_ns) or None,
                    "note": b.note} for b in report.breaks],
        "positions": [{"account": p.account, "symbol": p.symbol, "gateway_net_qty": p.gateway_net_qty,
                       "dropcopy_net_qty": p.dropcopy_net_qty, "diff": p.diff} for p in report.positions],
        "input_problems": [{"path": p.path, "line_no": p.line_no, "reason": p.reason}
                           for p in report.input_problems],
    }


# --------------------------------------------------------------------------- renderers
def render_json(report: ReconReport) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"


def _csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def render_breaks_csv(report: ReconReport) -> str:
    return _csv(BREAK_COLUMNS, (break_row(b) for b in report.breaks))


def render_positions_csv(report: ReconReport) -> str:
    return _csv(POSITION_COLUMNS, (position_row(p) for p in report.positions))


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: ReconReport) -> str:
    day = report.trade_date
    title_day = f"{day[:4]}-{day[4:6]}-{day[6:]}" if len(day) == 8 else day
    r = report
    lines = [f"# Reconciliation report: trading day {title_day}", "",
             f"As of {format_ns(r.as_of_ns)}; grace period {r.grace_ns / 1e9:g}s.", "", "## Totals", ""]
    lines += _md_table(("", "gateway", "drop copy"), [
        ("fill messages", str(r.gateway_messages), str(r.dropcopy_messages)),
        ("pending within grace", str(r.pending_gateway), str(r.pending_dropcopy))])
    lines += ["", f"Matched: {r.matched} (on ExecID {r.matched_by_exec_id}, on OrderID/ClOrdID "
                  f"{r.matched_by_order}). Open breaks: {r.open_breaks}. Resolved breaks: "
                  f"{sum(r.resolved_by_type.values())}.", ""]
    lines += _md_table(("break type", "open", "resolved"),
                       [(t.value, str(r.open_by_type[t.value]), str(r.resolved_by_type[t.value])) for t in BreakType])
    lines += ["", "## Breaks", ""]
    header = ("id", "type", "status", "account", "symbol", "order_id", "cl_ord_id",
              "gw exec_id", "gw type", "gw side", "gw qty", "gw px", "gw time",
              "dc exec_id", "dc type", "dc side", "dc qty", "dc px", "dc time", "detected", "resolved", "note")
    if r.breaks:
        lines += _md_table(header, ([b.id, b.type.value, b.status.value, b.account, b.symbol, b.order_id,
                                     b.cl_ord_id, *_side_cells(b.gateway), *_side_cells(b.dropcopy),
                                     format_ns(b.detected_ns), format_ns(b.resolved_ns), b.note]
                                    for b in r.breaks))
    else:
        lines.append("None.")
    lines += ["", "## Position differences", ""]
    if r.position_differences:
        lines += _md_table(("account", "symbol", "gateway net qty", "drop copy net qty", "diff"),
                           (position_row(p) for p in r.position_differences))
    else:
        lines.append(f"None ({len(r.positions)} account/instrument positions agree).")
    if r.input_problems:
        lines += ["", "## Input problems", ""]
        lines += _md_table(("file", "line", "reason"),
                           ((p.path, str(p.line_no), p.reason) for p in r.input_problems))
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    # A scheduler or a person may read the directory at any moment: never expose half a report.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(report: ReconReport, out_dir: str | Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write recon-<day>.md, recon-<day>-breaks.csv + recon-<day>-positions.csv, recon-<day>.json."""
    wanted = list(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {unknown}; choose from {list(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"recon-{report.trade_date}"
    outputs: list[tuple[Path, str]] = []
    if "md" in wanted:
        outputs.append((out / f"{stem}.md", render_markdown(report)))
    if "csv" in wanted:
        outputs.append((out / f"{stem}-breaks.csv", render_breaks_csv(report)))
        outputs.append((out / f"{stem}-positions.csv", render_positions_csv(report)))
    if "json" in wanted:
        outputs.append((out / f"{stem}.json", render_json(report)))
    for path, text in outputs:
        _write_atomic(path, text)
    return [p for p, _ in outputs]
