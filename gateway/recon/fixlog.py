"""Offline input: QuickFIX FileLog message logs (`<UTC timestamp> : <raw message>` per line).

Also accepted: lines holding only the raw message, and '|' instead of SOH for hand-written logs (only when
the line has no SOH at all, so a '|' inside a real field value is left alone). simplefix does not verify
CheckSum or BodyLength, so this module does: a corrupt line must be reported, not reconciled.
"""
from __future__ import annotations

import re
from pathlib import Path

import simplefix

from gateway.recon.model import FILL_EXEC_TYPES, FillRecord, LogProblem, Source, from_fix, parse_utc_timestamp
from gateway.recon.report import ReconReport, reconcile_records

_LINE_RE = re.compile(rb"^(\d{8}-\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?) : (.*)$", re.DOTALL)
_TRAILER_RE = re.compile(rb"\x0110=(\d{3})\x01$")
_BODY_LEN_RE = re.compile(rb"^8=[^\x01]+\x019=(\d+)\x01")


class _Skip(Exception):
    """A well-formed message that is not an input (admin, own outbound, not a fill)."""


def _check_framing(body: bytes) -> None:
    trailer = _TRAILER_RE.search(body)
    if trailer is None:
        raise ValueError("no CheckSum (10) as last field")
    end = trailer.start() + 1  # checksum and body length both stop after the SOH before 10=
    expected, actual = int(trailer.group(1)), sum(body[:end]) % 256
    if expected != actual:
        raise ValueError(f"bad CheckSum (10): message says {expected:03d}, bytes sum to {actual:03d}")
    head = _BODY_LEN_RE.match(body)
    if head is None:
        raise ValueError("no BodyLength (9) after BeginString (8)")
    declared, counted = int(head.group(1)), end - head.end()
    if declared != counted:
        raise ValueError(f"bad BodyLength (9): message says {declared}, counted {counted}")


def _parse_line(line: bytes, sender_comp_id: str | None, source: Source,
                verify: bool) -> FillRecord:
    m = _LINE_RE.match(line)
    stamp, body = (m.group(1).decode(), m.group(2)) if m else (None, line)
    if not body.startswith(b"8="):
        raise ValueError("not a FIX message (does not start with 8=BeginString)")
    if b"\x01" not in body and b"|" in body:
        body = body.replace(b"|", b"\x01")
    if not body.endswith(b"\x01"):
        body += b"\x01"
    if verify:
        _check_framing(body)
    parser = simplefix.FixParser()
    parser.append_buffer(body)
    try:
        msg = parser.get_message()
    except Exception as exc:  # simplefix raises several unrelated types for garbage
        raise ValueError(f"unparseable FIX: {type(exc).__name__} {exc}") from None
    if msg is None:
        raise ValueError("incomplete FIX message (no CheckSum (10))")
    msg_type = msg.get(35)
    if msg_type is None:
        raise ValueError("missing tag 35 (MsgType)")
    if msg_type != b"8" or msg.get(150) not in {t.encode() for t in FILL_EXEC_TYPES}:
        raise _Skip()
    if sender_comp_id is not None and msg.get(49) != sender_comp_id.encode():
        raise _Skip()  # our own outbound copy, or another counterparty's session in the same log
    if stamp is None:
        sending_time = msg.get(52)
        if sending_time is None:
            raise ValueError("no log timestamp and no SendingTime (52) to order the message by")
        stamp = sending_time.decode("ascii", "replace")
    return from_fix(msg, source, parse_utc_timestamp(stamp))


def read_fills(path: str | Path, sender_comp_id: str | None, source: Source,
               verify_checksum: bool = True) -> tuple[list[FillRecord], list[LogProblem]]:
    """Fill-bearing ExecutionReports sent by sender_comp_id (SenderCompID 49), in file order, and a
    LogProblem for every line that could not be used. A bad line never stops the run."""
    fills: list[FillRecord] = []
    problems: list[LogProblem] = []
    name = str(path)
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                fills.append(_parse_line(line, sender_comp_id, source, verify_checksum))
            except _Skip:
                continue
            except Exception as exc:  # one bad line must not cost the rest of the day
                problems.append(LogProblem(name, line_no, str(exc)))
    return fills, problems


def reconcile_logs(gateway_log: str | Path, dropcopy_log: str | Path, venue_comp_id: str, dropcopy_comp_id: str,
                   trade_date: str, grace_ns: int, as_of_ns: int | None = None, price_tolerance: float = 1e-9,
                   verify_checksum: bool = True, match_on_order: bool = False) -> tuple[ReconReport, list[LogProblem]]:
    """Reconcile one trading day from the two logs. as_of_ns=None means "after every grace period": the
    last message's receive time plus the grace, so nothing is left pending in an end-of-day run."""
    gw, gw_problems = read_fills(gateway_log, venue_comp_id, "gateway", verify_checksum)
    dc, dc_problems = read_fills(dropcopy_log, dropcopy_comp_id, "dropcopy", verify_checksum)
    problems = gw_problems + dc_problems
    gw = [r for r in gw if r.trade_date == trade_date]
    dc = [r for r in dc if r.trade_date == trade_date]
    if as_of_ns is None:
        as_of_ns = max((r.received_ns for r in gw + dc), default=0) + grace_ns + 1
    report = reconcile_records(gw, dc, grace_ns, as_of_ns, trade_date, price_tolerance, problems, match_on_order)
    return report, problems
