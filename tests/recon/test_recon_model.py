import pytest
import simplefix

from gateway.recon.model import format_ns, format_qty, from_fix, parse_utc_timestamp
from recon_testlib import DROPCOPY, GATEWAY, T0, fill, to_fix


def _msg() -> dict[int, bytes]:
    fields = {17: b"E1", 37: b"O1", 11: b"C1", 1: b"ACC1", 55: b"XYZ", 54: b"1", 32: b"100", 31: b"10.5",
              150: b"F", 60: b"20261127-14:00:00.123"}
    return fields


def test_parses_simplefix_message_round_trip() -> None:
    rec = fill("dropcopy", "E7", 1234, side="5", qty=12.5, px=99.25, orig_cl_ord_id="C0")
    parsed = from_fix(to_fix(rec, DROPCOPY, GATEWAY, 9), "dropcopy", rec.received_ns)
    assert parsed == rec


def test_parses_dict_of_str_and_bytes_and_derives_trade_date() -> None:
    msg: dict[int, bytes | str] = dict(_msg())
    msg[55] = "XYZ"
    rec = from_fix(msg, "gateway", 42)
    assert (rec.exec_id, rec.symbol, rec.last_qty, rec.last_px, rec.trade_date) == ("E1", "XYZ", 100.0, 10.5,
                                                                                    "20261127")
    assert rec.exec_ref_id is None and rec.orig_cl_ord_id is None and not rec.poss_dup


def test_trade_date_tag_wins_and_poss_dup_flags_are_read() -> None:
    msg = _msg() | {75: b"20261126", 97: b"Y"}
    rec = from_fix(msg, "gateway", 0)
    assert rec.trade_date == "20261126" and rec.poss_dup


@pytest.mark.parametrize("tag, value, expected", [
    (17, None, "missing tag 17 (ExecID)"),
    (37, None, "missing tag 37 (OrderID)"),
    (55, None, "missing tag 55 (Symbol)"),
    (32, b"abc", "invalid tag 32 (LastQty): not a number"),
    (32, b"0", "invalid tag 32 (LastQty)"),
    (31, b"nan", "invalid tag 31 (LastPx): not finite"),
    (54, b"8", "invalid tag 54 (Side)"),
    (150, b"0", "invalid tag 150 (ExecType)"),
    (60, b"2026-11-27 14:00", "invalid tag 60 (TransactTime)"),
    (75, b"27/11/2026", "invalid tag 75 (TradeDate)"),
    (1, b"\xff", "invalid tag 1 (Account): not ASCII"),
])
def test_bad_tags_are_named(tag: int, value: bytes | None, expected: str) -> None:
    msg = _msg()
    if value is None:
        del msg[tag]
    else:
        msg[tag] = value
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        from_fix(msg, "gateway", 0)


def test_correction_needs_exec_ref_id() -> None:
    with pytest.raises(ValueError, match=r"missing tag 19 \(ExecRefID\)"):
        from_fix(_msg() | {150: b"G"}, "gateway", 0)
    assert from_fix(_msg() | {150: b"H", 19: b"E0", 32: b"0"}, "gateway", 0).exec_ref_id == "E0"


def test_unknown_source_refused() -> None:
    with pytest.raises(ValueError, match="unknown source"):
        from_fix(_msg(), "venue", 0)  # type: ignore[arg-type]


def test_timestamps_are_exact_integers() -> None:
    assert parse_utc_timestamp("19700101-00:00:01") == 1_000_000_000
    assert parse_utc_timestamp("19700101-00:00:01.5") == 1_500_000_000
    assert parse_utc_timestamp("19700101-00:00:01.000000007") == 1_000_000_007
    assert format_ns(T0 + 7) == "2026-11-27T14:00:00.000000007Z"
    with pytest.raises(ValueError):
        parse_utc_timestamp("20261340-00:00:00")
    # a day already seen (its midnight is remembered) still checks the time of day
    assert parse_utc_timestamp("20261203-23:59:59.25") - parse_utc_timestamp("20261203-00:00:00") == 86_399_250_000_000
    for bad in ("20261203-24:00:00", "20261203-23:60:00", "20261203-23:59:60"):
        with pytest.raises(ValueError, match="not a UTC timestamp"):
            parse_utc_timestamp(bad)


def test_quantities_print_stably() -> None:
    assert [format_qty(x) for x in (100.0, 10.5, 0.1 + 0.2, -0.0, -3.25)] == ["100", "10.5", "0.3", "0", "-3.25"]


def test_simplefix_message_missing_tag() -> None:
    msg = simplefix.FixMessage()
    msg.append_pair(17, "E1")
    with pytest.raises(ValueError, match=r"tag 150 \(ExecType\)"):
        from_fix(msg, "gateway", 0)
