from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gateway.recon.fixlog import read_fills, reconcile_logs
from gateway.recon.model import LogProblem
from gateway.recon.report import reconcile_records
from recon_testlib import (AS_OF, DAY, DROPCOPY, GATEWAY, GRACE, MS, T0, VENUE, clean_day, fill, log_line,
                           to_fix, write_logs)


def frame(body: bytes) -> bytes:
    """A correctly framed FIX 4.4 message around body, whatever body lacks."""
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    return head + body + b"10=%03d\x01" % (sum(head + body) % 256)


def test_reads_only_fills_received_from_the_counterparty(tmp_path: Path) -> None:
    gw, dc = clean_day()
    gw_log, dc_log = write_logs(tmp_path, gw, dc)
    fills, problems = read_fills(gw_log, VENUE, "gateway")
    assert problems == [] and fills == gw  # logons, our NewOrderSingles and the New acks are skipped
    fills, problems = read_fills(dc_log, DROPCOPY, "dropcopy")
    assert problems == [] and fills == dc
    assert read_fills(gw_log, "SOMEONE-ELSE", "gateway") == ([], [])


def test_clean_logs_reconcile_with_zero_breaks(tmp_path: Path) -> None:
    gw, dc = clean_day()
    report, problems = reconcile_logs(*write_logs(tmp_path, gw, dc), VENUE, DROPCOPY, DAY, GRACE)
    assert problems == [] and report.breaks == () and report.matched == len(gw)
    assert report.as_of_ns == dc[-1].received_ns + GRACE + 1  # default: after every grace period


def test_malformed_lines_are_reported_by_number_and_skipped(tmp_path: Path) -> None:
    gw, dc = clean_day()
    gw_log, dc_log = write_logs(tmp_path, gw, dc)
    lines = dc_log.read_bytes().splitlines(keepends=True)
    e1_line = next(i for i, line in enumerate(lines) if b"\x0117=E1\x01" in line)
    lines[e1_line] = lines[e1_line].replace(b"\x0132=100\x01", b"\x0132=900\x01")  # corrupt: checksum fails
    no_type = frame(b"49=VENUEDC\x0156=FIXGW\x0134=99\x0152=20261127-14:00:00.000\x01")
    no_exec_id = to_fix(replace(dc[1], exec_id="ZZ"), DROPCOPY, GATEWAY, 98)
    no_exec_id.remove(17)
    lines[3:3] = [b"this is not FIX at all\n", log_line(T0, no_type), b"\n", log_line(T0, no_exec_id),
                  b"20261127-14:00:00.000 : 8=FIX.4.4\x019=5\x0135=8\x01garbage\n"]
    dc_log.write_bytes(b"".join(lines))

    report, problems = reconcile_logs(gw_log, dc_log, VENUE, DROPCOPY, DAY, GRACE)
    assert e1_line == 2  # after the two logons, before the garbage
    assert [(p.line_no, p.reason.split(":")[0]) for p in problems] == [
        (3, "bad CheckSum (10)"),
        (4, "not a FIX message (does not start with 8=BeginString)"),
        (5, "missing tag 35 (MsgType)"),
        (7, "missing tag 17 (ExecID)"),
        (8, "no CheckSum (10) as last field"),
    ]
    assert all(p.path == str(dc_log) for p in problems)
    # the run went on: everything else matched, the unusable E1 shows up as what it is to the reconciler
    assert [b.id for b in report.breaks] == ["MISSING_FROM_DROPCOPY:E1:F"]
    assert report.input_problems == tuple(problems)


def test_bad_body_length_and_checksum_can_be_relaxed(tmp_path: Path) -> None:
    rec = fill("dropcopy", "E1", 0)
    raw = to_fix(rec, DROPCOPY, GATEWAY, 2).encode()
    body = raw[:raw.rindex(b"10=")].replace(b"\x019=", b"\x019=1", 1)
    bad_len = body + b"10=%03d\x01" % (sum(body) % 256)  # consistent checksum, wrong length
    path = tmp_path / "dc.log"
    path.write_bytes(log_line(rec.received_ns, bad_len))
    fills, problems = read_fills(path, DROPCOPY, "dropcopy")
    assert fills == [] and problems[0].reason.startswith("bad BodyLength (9)")
    fills, problems = read_fills(path, DROPCOPY, "dropcopy", verify_checksum=False)
    assert fills == [rec] and problems == []


def test_hand_written_pipe_lines_and_bare_messages(tmp_path: Path) -> None:
    rec = fill("dropcopy", "E1", 1234)
    raw = to_fix(rec, DROPCOPY, GATEWAY, 2).encode()
    path = tmp_path / "hand.log"
    # a bare message (no FileLog timestamp) is ordered by its SendingTime (52)
    path.write_bytes(raw.replace(b"\x01", b"|") + b"\r\n" + raw + b"\n")
    fills, problems = read_fills(path, DROPCOPY, "dropcopy")
    assert problems == [] and fills == [rec, rec]


def test_log_without_any_timestamp_is_a_problem(tmp_path: Path) -> None:
    msg = to_fix(fill("dropcopy", "E1", 0), DROPCOPY, GATEWAY, 2)
    msg.remove(52)
    path = tmp_path / "dc.log"
    path.write_bytes(msg.encode() + b"\n")
    assert read_fills(path, DROPCOPY, "dropcopy") == (
        [], [LogProblem(str(path), 1, "no log timestamp and no SendingTime (52) to order the message by")])


def test_nanosecond_log_timestamps_and_other_days(tmp_path: Path) -> None:
    gw, dc = clean_day()
    other_day = replace(gw[0], exec_id="OLD", trade_date="20261126")
    path = tmp_path / "gw.log"
    path.write_bytes(b"".join(log_line(r.received_ns + 7, to_fix(r, VENUE, GATEWAY, i), digits=9)
                              for i, r in enumerate([other_day] + gw)))
    fills, _ = read_fills(path, VENUE, "gateway")
    assert [f.received_ns - r.received_ns for f, r in zip(fills, [other_day] + gw)] == [7] * (len(gw) + 1)
    dc_path = tmp_path / "dc.log"
    dc_path.write_bytes(b"".join(log_line(r.received_ns + 7, to_fix(r, DROPCOPY, GATEWAY, i), digits=9)
                                 for i, r in enumerate(dc)))
    report, _ = reconcile_logs(path, dc_path, VENUE, DROPCOPY, DAY, GRACE, as_of_ns=AS_OF)
    assert report.breaks == () and report.gateway_messages == len(gw)
    assert report == reconcile_records([replace(r, received_ns=r.received_ns + 7) for r in gw],
                                       [replace(r, received_ns=r.received_ns + 7) for r in dc], GRACE, AS_OF)


def test_resent_messages_in_the_log_do_not_count_twice(tmp_path: Path) -> None:
    gw, dc = clean_day()
    resend = replace(dc[0], poss_dup=True, received_ns=dc[0].received_ns + 500 * MS)
    report, problems = reconcile_logs(*write_logs(tmp_path, gw, dc + [resend]), VENUE, DROPCOPY, DAY, GRACE,
                                      as_of_ns=AS_OF)
    assert problems == [] and report.breaks == () and report.dropcopy_messages == len(dc)
