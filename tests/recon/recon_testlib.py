"""Builders shared by the recon tests: fill records, FIX messages and QuickFIX FileLog lines."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import simplefix

from gateway.recon.model import FillRecord, format_qty, parse_utc_timestamp

MS = 1_000_000
SEC = 1_000_000_000
T0 = parse_utc_timestamp("20261127-14:00:00.000")
GRACE = 30 * SEC
AS_OF = T0 + 600 * SEC
DAY = "20261127"
VENUE, DROPCOPY, GATEWAY = "VENUE", "VENUEDC", "FIXGW"


def fix_ts(ns: int, digits: int = 3) -> str:
    secs, frac = divmod(ns, SEC)
    import time
    base = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(secs))
    return base + ("." + f"{frac:09d}"[:digits] if digits else "")


def fill(source: str, exec_id: str, at_ms: int, *, order_id: str = "O1", cl_ord_id: str = "C1",
         account: str = "ACC1", symbol: str = "XYZ", side: str = "1", qty: float = 100.0, px: float = 10.0,
         exec_type: str = "F", exec_ref_id: str | None = None, transact_ms: int | None = None,
         poss_dup: bool = False, orig_cl_ord_id: str | None = None) -> FillRecord:
    # TransactTime is the venue's execution time: the same on both copies, unlike the receive time.
    transact = fix_ts(T0 + (transact_ms if transact_ms is not None else 0) * MS)
    return FillRecord(source=source, exec_id=exec_id, order_id=order_id, cl_ord_id=cl_ord_id,  # type: ignore[arg-type]
                      orig_cl_ord_id=orig_cl_ord_id, account=account, symbol=symbol, side=side, last_qty=qty,
                      last_px=px, exec_type=exec_type, exec_ref_id=exec_ref_id, transact_time=transact,
                      received_ns=T0 + at_ms * MS, trade_date=DAY, poss_dup=poss_dup)


def copy(rec: FillRecord, at_ms: int, **changes: object) -> FillRecord:
    """The other source's copy of rec, received at at_ms."""
    other = "dropcopy" if rec.source == "gateway" else "gateway"
    return replace(rec, source=other, received_ns=T0 + at_ms * MS, **changes)  # type: ignore[arg-type]


def clean_day() -> tuple[list[FillRecord], list[FillRecord]]:
    """A day with partial fills, a drop copy that overtakes the gateway, a short sale, a correction and a
    bust, all consistent between the two sides."""
    e1 = fill("gateway", "E1", 1000, transact_ms=990)
    e2 = fill("gateway", "E2", 2000, qty=50, px=10.01, transact_ms=1990)
    e3 = fill("gateway", "E3", 3000, order_id="O2", cl_ord_id="C2", symbol="ABC", side="2", qty=200, px=55.5,
              transact_ms=2990)
    e4 = fill("gateway", "E4", 4000, order_id="O3", cl_ord_id="C3", account="ACC2", side="5", qty=10,
              px=10.02, transact_ms=3990)
    e3c = fill("gateway", "E3C", 5000, order_id="O2", cl_ord_id="C2", symbol="ABC", side="2", qty=200,
               px=55.45, exec_type="G", exec_ref_id="E3", transact_ms=4990)
    e4x = fill("gateway", "E4X", 6000, order_id="O3", cl_ord_id="C3", account="ACC2", side="5", qty=10,
               px=10.02, exec_type="H", exec_ref_id="E4", transact_ms=5990)
    e5 = fill("gateway", "E5", 7000, order_id="O4", cl_ord_id="C4", account="ACC2", symbol="ABC", qty=7,
              px=55.0, transact_ms=6990)
    gw = [e1, e2, e3, e4, e3c, e4x, e5]
    dc = [copy(e1, 1005), copy(e2, 1990), copy(e3, 3010), copy(e4, 4020), copy(e3c, 5003), copy(e4x, 6001),
          copy(e5, 7004)]
    return gw, dc


def to_fix(rec: FillRecord, sender: str, target: str, seq: int) -> simplefix.FixMessage:
    msg = simplefix.FixMessage()
    msg.append_pair(8, "FIX.4.4", header=True)
    msg.append_pair(35, "8", header=True)
    msg.append_pair(49, sender, header=True)
    msg.append_pair(56, target, header=True)
    msg.append_pair(34, seq, header=True)
    msg.append_pair(52, fix_ts(rec.received_ns), header=True)
    if rec.poss_dup:
        msg.append_pair(43, "Y", header=True)
    msg.append_pair(37, rec.order_id)
    if rec.cl_ord_id:
        msg.append_pair(11, rec.cl_ord_id)
    if rec.orig_cl_ord_id:
        msg.append_pair(41, rec.orig_cl_ord_id)
    msg.append_pair(17, rec.exec_id)
    msg.append_pair(150, rec.exec_type)
    if rec.exec_ref_id:
        msg.append_pair(19, rec.exec_ref_id)
    msg.append_pair(39, "2")
    if rec.account:
        msg.append_pair(1, rec.account)
    msg.append_pair(55, rec.symbol)
    msg.append_pair(54, rec.side)
    msg.append_pair(32, format_qty(rec.last_qty))
    msg.append_pair(31, format_qty(rec.last_px))
    msg.append_pair(60, rec.transact_time)
    msg.append_pair(75, rec.trade_date)
    return msg


def admin(msg_type: str, sender: str, target: str, seq: int, ns: int) -> simplefix.FixMessage:
    msg = simplefix.FixMessage()
    for tag, value in ((8, "FIX.4.4"), (35, msg_type), (49, sender), (56, target), (34, seq), (52, fix_ts(ns))):
        msg.append_pair(tag, value, header=True)
    return msg


def log_line(ns: int, msg: simplefix.FixMessage | bytes, digits: int = 3) -> bytes:
    raw = msg if isinstance(msg, bytes) else msg.encode()
    return fix_ts(ns, digits).encode() + b" : " + raw + b"\n"


def write_logs(tmp: Path, gw: list[FillRecord], dc: list[FillRecord]) -> tuple[Path, Path]:
    """Both sessions' FileLog messages logs as QuickFIX writes them: logons, heartbeats, our own outbound
    orders and non-fill execution reports interleaved with the fills."""
    gw_lines = [log_line(T0, admin("A", GATEWAY, VENUE, 1, T0)), log_line(T0, admin("A", VENUE, GATEWAY, 1, T0))]
    seq_out, seq_in = 2, 2
    for rec in gw:
        if rec.exec_type == "F":
            order = admin("D", GATEWAY, VENUE, seq_out, rec.received_ns - 50 * MS)
            order.append_pair(11, rec.cl_ord_id)
            order.append_pair(55, rec.symbol)
            gw_lines.append(log_line(rec.received_ns - 50 * MS, order))
            seq_out += 1
            ack = admin("8", VENUE, GATEWAY, seq_in, rec.received_ns - 40 * MS)
            ack.append_pair(150, "0")
            ack.append_pair(37, rec.order_id)
            gw_lines.append(log_line(rec.received_ns - 40 * MS, ack))
            seq_in += 1
        gw_lines.append(log_line(rec.received_ns, to_fix(rec, VENUE, GATEWAY, seq_in)))
        seq_in += 1
    dc_lines = [log_line(T0, admin("A", GATEWAY, DROPCOPY, 1, T0)), log_line(T0, admin("A", DROPCOPY, GATEWAY, 1, T0))]
    for i, rec in enumerate(dc, start=2):
        dc_lines.append(log_line(rec.received_ns, to_fix(rec, DROPCOPY, GATEWAY, i)))
    dc_lines.append(log_line(AS_OF - SEC, admin("0", DROPCOPY, GATEWAY, len(dc) + 2, AS_OF - SEC)))
    gw_path, dc_path = tmp / "FIX.4.4-FIXGW-VENUE.messages.current.log", tmp / "FIX.4.4-FIXGW-VENUEDC.messages.current.log"
    gw_path.write_bytes(b"".join(gw_lines))
    dc_path.write_bytes(b"".join(dc_lines))
    return gw_path, dc_path
