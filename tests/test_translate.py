"""gateway.fix.translate over real QuickFIX messages, each result validated by QuickFIX against the real dictionaries."""

from __future__ import annotations

from typing import Iterable

import pytest
import quickfix as fix

from gateway.fix import translate as tr

SPECS = tr.SPEC_DIR
F42, F44, F50 = "FIX.4.2", "FIX.4.4", "FIXT.1.1"
NOW = "20240102-10:00:00.000"

Fields = Iterable[tuple[int, str]]


def _dictionary(name: str) -> fix.DataDictionary:
    # The tests' own instances, never the module's cached ones: they are set to accept user-defined tags.
    dd = fix.DataDictionary(str(SPECS / name))
    dd.checkUserDefinedFields(False)
    return dd


DD = {F42: _dictionary("FIX42.xml"), F44: _dictionary("FIX44.xml"), F50: _dictionary("FIX50SP2.xml")}
TRANSPORT = _dictionary("FIXT11.xml")


def message(msg_type: str, fields: Fields, parties: Iterable[tuple[str, str]] = (),
            header: Fields = ()) -> fix.Message:
    m = fix.Message()
    m.getHeader().setField(35, msg_type)
    for tag, value in header:
        m.getHeader().setField(tag, value)
    for tag, value in fields:
        m.setField(tag, value)
    for party_id, role in parties:
        g = fix.Group(453, 448)
        g.setField(448, party_id)
        g.setField(447, "D")
        g.setField(452, role)
        m.addGroup(g)
    return m


def on_wire(msg: fix.Message, begin: str) -> fix.Message:
    """`msg` as QuickFIX sends it on a `begin` session and the peer parses it, validated by the peer's
    dictionaries (the header fields are what Session::sendToTarget fills in)."""
    m = fix.Message(msg)
    hdr = m.getHeader()
    for tag, value in ((8, begin), (49, "SENDER"), (56, "TARGET"), (34, "7"), (52, NOW)):
        hdr.setField(tag, value)
    text = m.toString()
    app = DD[begin]
    if begin == F50:
        parsed = fix.Message(text, TRANSPORT, app, True)
        fix.DataDictionary.validate(parsed, TRANSPORT, app)
    else:
        parsed = fix.Message(text, app, True)
        app.validate(parsed)
    return parsed


def fields(m: fix.Message) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in m.toString().split("\x01"):
        if part:
            tag, _, value = part.partition("=")
            out.setdefault(int(tag), value)
    return out


def parties(m: fix.Message) -> list[tuple[str, str]]:
    out = []
    for i in range(1, m.groupCount(453) + 1):
        g = fix.Group(453, 448)
        m.getGroup(i, g)
        out.append((g.getField(448), g.getField(452)))
    return out


@pytest.fixture(scope="module")
def d42() -> tr.Dialect:
    return tr.Dialect(F42)


@pytest.fixture(scope="module")
def d44() -> tr.Dialect:
    return tr.Dialect(F44)


@pytest.fixture(scope="module")
def d50() -> tr.Dialect:
    return tr.Dialect(F50)


def report44(exec_type: str, status: str, **extra: str) -> list[tuple[int, str]]:
    filled = exec_type in ("F", "G") or status in ("1", "2")
    f = [(37, "V1"), (17, f"X{exec_type}"), (150, exec_type), (39, status), (11, "C1"), (1, "ACC1"),
         (55, "ACME"), (54, "1"), (38, "100"), (40, "2"), (44, "10.5"), (59, "0"), (60, NOW),
         (14, "100" if status == "2" else "40" if filled else "0"), (6, "10.5" if filled else "0"),
         (151, "0" if status in ("2", "4", "8", "C") else "60" if filled else "100")]
    if exec_type in ("F", "G"):
        f += [(32, "40"), (31, "10.5")]
    if exec_type in ("G", "H"):
        f.append((19, "XF"))
    if exec_type == "5":
        f.append((41, "C0"))
    f += [(int(k[1:]), v) for k, v in extra.items()]
    return f


# ---------------------------------------------------------------- identity
def test_fix44_is_the_identity(d44: tr.Dialect) -> None:
    m = message("8", report44("F", "2"))
    assert d44.identity
    assert tr.inbound(m, d44) is m
    assert tr.outbound(m, d44) is m


def test_dialect_refuses_unknown_begin_strings() -> None:
    with pytest.raises(ValueError):
        tr.Dialect("FIX.4.3")


# ---------------------------------------------------------------- 4.2 execution reports
REPORTS_42 = [  # ExecTransType, 4.2 ExecType, OrdStatus -> 4.4 ExecType, back to 4.2 (ExecTransType, ExecType)
    ("0", "1", "1", "F", ("0", "1")),  # partial fill
    ("0", "2", "2", "F", ("0", "2")),  # fill
    ("2", "2", "2", "G", ("2", "2")),  # correct of a fill
    ("1", "0", "0", "H", ("1", "0")),  # cancel (bust) of the only fill
    ("3", "1", "1", "I", ("3", "1")),  # status
    ("0", "0", "0", "0", ("0", "0")),  # new
    ("0", "4", "4", "4", ("0", "4")),  # canceled
    ("0", "D", "1", "D", ("0", "D")),  # restated
]


def report42(trans: str, exec_type: str, status: str) -> fix.Message:
    filled = status in ("1", "2") or exec_type in ("1", "2")
    f = [(37, "V1"), (17, "E1"), (20, trans), (150, exec_type), (39, status), (11, "C1"), (1, "ACC1"),
         (55, "ACME"), (54, "1"), (38, "100"), (40, "2"), (44, "10.5"), (60, NOW), (47, "A"), (76, "BRKR"),
         (109, "CLNT"), (14, "100" if status == "2" else "40" if filled else "0"),
         (151, "0" if status in ("2", "4") else "60" if filled else "100"), (6, "10.5" if filled else "0")]
    if exec_type in ("1", "2"):
        f += [(32, "40"), (31, "10.5")]
    if trans in ("1", "2"):
        f.append((19, "E0"))
    return on_wire(message("8", f, header=[(43, "Y"), (122, NOW)]), F42)


@pytest.mark.parametrize(("trans", "exec_type", "status", "want44", "back42"), REPORTS_42)
def test_fix42_report_in_and_back(d42: tr.Dialect, trans: str, exec_type: str, status: str, want44: str,
                                  back42: tuple[str, str]) -> None:
    m44 = tr.inbound(report42(trans, exec_type, status), d42)
    got = fields(on_wire(m44, F44))
    assert got[150] == want44
    assert 20 not in got and 47 not in got and 76 not in got and 109 not in got
    assert got[39] == status and got[528] == "A"
    assert sorted(parties(m44)) == [("BRKR", "1"), ("CLNT", "3")]
    assert got[43] == "Y"  # the router de-duplicates resends on the inbound PossDupFlag

    back = fields(on_wire(tr.outbound(m44, d42), F42))
    assert (back[20], back[150]) == back42
    assert back[47] == "A" and back[76] == "BRKR" and back[109] == "CLNT"
    assert 528 not in back and 453 not in back


def test_fix42_replaced_status_is_derived(d42: tr.Dialect) -> None:
    m = report42("0", "5", "5")  # 4.2 OrdStatus Replaced: 4.4 states the order instead
    got = fields(on_wire(tr.inbound(m, d42), F44))
    assert got[150] == "5" and got[39] == "0"


def test_fix42_unknown_exec_trans_type_is_refused(d42: tr.Dialect) -> None:
    m = report42("0", "0", "0")
    m.setField(20, "7")
    with pytest.raises(tr.Untranslatable):
        tr.inbound(m, d42)


# ---------------------------------------------------------------- 4.4 execution reports out
OUT_42 = {  # 4.4 (ExecType, OrdStatus) -> 4.2 (ExecTransType, ExecType)
    ("0", "0"): ("0", "0"), ("F", "1"): ("0", "1"), ("F", "2"): ("0", "2"), ("G", "2"): ("2", "2"),
    ("G", "1"): ("2", "1"), ("H", "0"): ("1", "0"), ("H", "1"): ("1", "1"), ("I", "1"): ("3", "1"),
    ("I", "0"): ("3", "0"), ("4", "4"): ("0", "4"), ("5", "0"): ("0", "5"), ("8", "8"): ("0", "8"),
    ("C", "C"): ("0", "C"),
}


@pytest.mark.parametrize(("exec_type", "status"), sorted(OUT_42))
def test_fix44_report_out(d42: tr.Dialect, d50: tr.Dialect, exec_type: str, status: str) -> None:
    extra = {"_103": "99"} if exec_type == "8" else {}  # OrdRejReason OTHER: 4.2 has no such value
    m44 = message("8", report44(exec_type, status, _528="P", **extra), parties=[("EXF", "1"), ("TRDR", "12")],
                  header=[(43, "Y"), (97, "Y"), (122, NOW), (115, "DESK")])
    on_wire(m44, F44)  # the test's own input is a valid 4.4 report

    to42 = tr.outbound(m44, d42)
    got = fields(on_wire(to42, F42))
    assert (got[20], got[150]) == OUT_42[exec_type, status]
    assert got[39] == status and got[47] == "P" and got[76] == "EXF"
    assert 453 not in got and 528 not in got and 103 not in got
    hdr = to42.getHeader()
    assert not any(hdr.isSetField(t) for t in (43, 97, 122, 8, 49, 56, 34, 52))
    assert hdr.getField(115) == "DESK"

    to50 = tr.outbound(m44, d50)
    got = fields(on_wire(to50, F50))
    assert got[150] == exec_type and got[39] == status and got[528] == "P"
    assert parties(to50) == [("EXF", "1"), ("TRDR", "12")]
    if exec_type == "8":
        assert got[103] == "99"


def test_report_without_symbol_gets_na_for_fix42(d42: tr.Dialect) -> None:
    m44 = message("8", [(t, v) for t, v in report44("8", "8") if t != 55])
    assert fields(on_wire(tr.outbound(m44, d42), F42))[55] == "[N/A]"


def test_cancel_reject_out(d42: tr.Dialect, d50: tr.Dialect) -> None:
    m44 = message("9", [(37, "V1"), (11, "C2"), (41, "C1"), (39, "0"), (434, "1"), (102, "99"), (58, "why"),
                        (1, "ACC1")])
    got = fields(on_wire(tr.outbound(m44, d42), F42))
    assert got[434] == "1" and got[41] == "C1" and 102 not in got and got[58] == "why"
    got = fields(on_wire(tr.outbound(m44, d50), F50))
    assert got[434] == "1" and got[102] == "99"


# ---------------------------------------------------------------- requests in
def new_order42(**extra: str) -> list[tuple[int, str]]:
    return [(11, "C1"), (1, "ACC1"), (21, "1"), (55, "ACME"), (54, "1"), (60, NOW), (38, "100"), (40, "2"),
            (44, "10.5"), (59, "0"), (47, "I"), (204, "0"), (439, "CLR")] + \
        [(int(k[1:]), v) for k, v in extra.items()]


def test_fix42_new_order_in(d42: tr.Dialect) -> None:
    m = on_wire(message("D", new_order42()), F42)
    m44 = tr.inbound(m, d42)
    got = fields(on_wire(m44, F44))
    assert got[528] == "I" and 47 not in got and 204 not in got and 439 not in got
    assert parties(m44) == [("CLR", "4")]
    assert (got[40], got[59], got[21]) == ("2", "0", "1")


def test_fix42_at_close_order_types(d42: tr.Dialect) -> None:
    m = on_wire(message("D", new_order42(_40="B")), F42)  # limit on close
    m44 = tr.inbound(m, d42)
    got = fields(on_wire(m44, F44))
    assert (got[40], got[59]) == ("2", "7")
    back = fields(on_wire(tr.outbound(m44, d42), F42))
    assert back[40] == "B" and 59 not in back


def test_fix42_rule80a_without_counterpart_is_dropped(d42: tr.Dialect) -> None:
    m = on_wire(message("D", new_order42(_47="C")), F42)  # program order: no single OrderCapacity
    got = fields(on_wire(tr.inbound(m, d42), F44))
    assert 47 not in got and 528 not in got


def test_fix42_request_value_without_counterpart_is_refused(d42: tr.Dialect) -> None:
    m = on_wire(message("D", new_order42(_40="C")), F42)  # forex market: gone in 4.4
    with pytest.raises(tr.Untranslatable) as e:
        tr.inbound(m, d42)
    assert e.value.tag == 40


def test_fix42_replace_and_cancel_in(d42: tr.Dialect) -> None:
    g = on_wire(message("G", [(41, "C1"), (11, "C2"), (1, "ACC1"), (21, "1"), (55, "ACME"), (54, "1"),
                              (60, NOW), (38, "50"), (40, "2"), (44, "10.6"), (76, "BRKR")]), F42)
    got = fields(on_wire(tr.inbound(g, d42), F44))
    assert (got[41], got[11], got[38], got[44]) == ("C1", "C2", "50", "10.6") and 76 not in got
    f = on_wire(message("F", [(41, "C2"), (11, "C3"), (55, "ACME"), (54, "1"), (60, NOW), (38, "50")]), F42)
    got = fields(on_wire(tr.inbound(f, d42), F44))
    assert (got[41], got[11], got[55]) == ("C2", "C3", "ACME")


def test_fix50_requests_in(d50: tr.Dialect) -> None:
    d = on_wire(message("D", [(11, "C1"), (1, "ACC1"), (55, "ACME"), (54, "1"), (60, NOW), (38, "100"),
                              (40, "2"), (44, "10.5"), (1138, "10"), (528, "A")],
                        parties=[("CLNT", "3")]), F50)
    m44 = tr.inbound(d, d50)
    got = fields(on_wire(m44, F44))
    assert 1138 not in got and got[528] == "A"  # DisplayQty: 5.0 only
    assert parties(m44) == [("CLNT", "3")]
    assert m44.getHeader().getField(8) == F44
    for mt, f in (("G", [(41, "C1"), (11, "C2"), (55, "ACME"), (54, "1"), (60, NOW), (38, "50"), (40, "2"),
                         (44, "10.6"), (2362, "SMP1")]),
                  ("F", [(41, "C2"), (11, "C3"), (55, "ACME"), (54, "1"), (60, NOW), (38, "50")])):
        got = fields(on_wire(tr.inbound(on_wire(message(mt, f), F50), d50), F44))
        assert got[11] == dict(f)[11] and 2362 not in got


def test_fix50_nested_party_sub_ids_survive(d50: tr.Dialect) -> None:
    m = message("D", [(11, "C1"), (55, "ACME"), (54, "1"), (60, NOW), (38, "100"), (40, "1")])
    p = fix.Group(453, 448)
    p.setField(448, "CLNT")
    p.setField(452, "3")
    sub = fix.Group(802, 523)
    sub.setField(523, "DESK7")
    sub.setField(803, "1")
    p.addGroup(sub)
    m.addGroup(p)
    m44 = on_wire(tr.inbound(on_wire(m, F50), d50), F44)
    got = fix.Group(453, 448)
    m44.getGroup(1, got)
    s = fix.Group(802, 523)
    got.getGroup(1, s)
    assert (got.getField(448), s.getField(523), s.getField(803)) == ("CLNT", "DESK7", "1")


def test_fix50_reports_in(d50: tr.Dialect) -> None:
    f = [(37, "V1"), (17, "E1"), (150, "L"), (39, "0"), (11, "C1"), (55, "ACME"), (54, "1"), (14, "0"),
         (151, "100"), (1057, "Y")]  # triggered; no AvgPx (optional in 5.0SP2); AggressorIndicator 5.0 only
    got = fields(on_wire(tr.inbound(on_wire(message("8", f), F50), d50), F44))
    assert (got[150], got[39], got[6]) == ("I", "0", "0") and 1057 not in got


# ---------------------------------------------------------------- requests out
def new_order44(**extra: str) -> list[tuple[int, str]]:
    return [(11, "G1"), (1, "ACC1"), (55, "ACME"), (54, "1"), (60, NOW), (38, "100"), (40, "2"), (44, "10.5"),
            (59, "0"), (528, "A")] + [(int(k[1:]), v) for k, v in extra.items()]


def test_fix44_requests_out(d42: tr.Dialect, d50: tr.Dialect) -> None:
    d = message("D", new_order44(), parties=[("CLNT", "3")])
    got = fields(on_wire(tr.outbound(d, d42), F42))
    assert got[21] == "1" and got[47] == "A" and got[109] == "CLNT"  # HandlInst: required in 4.2
    got = fields(on_wire(tr.outbound(d, d50), F50))
    assert got[528] == "A" and 21 not in got
    g = message("G", [(41, "G1"), (11, "G2"), (37, "V1"), (1, "ACC1"), (55, "ACME"), (54, "1"), (60, NOW),
                      (38, "50"), (40, "2"), (44, "10.6")])
    f = message("F", [(41, "G2"), (11, "G3"), (37, "V1"), (1, "ACC1"), (55, "ACME"), (54, "1"), (60, NOW),
                      (38, "50")])
    for m in (g, f):
        for d, begin in ((d42, F42), (d50, F50)):
            got = fields(on_wire(tr.outbound(m, d), begin))
            assert (got[41], got[11], got[37]) == (m.getField(41), m.getField(11), "V1")


def test_fix44_at_close_to_fix42(d42: tr.Dialect) -> None:
    got = fields(on_wire(tr.outbound(message("D", new_order44(_40="1", _59="7")), d42), F42))
    assert got[40] == "5" and 59 not in got
    with pytest.raises(tr.Untranslatable):  # stop order at the close: 4.2 cannot say it
        tr.outbound(message("D", new_order44(_40="3", _99="10", _59="7")), d42)


def test_fix44_request_fix42_cannot_express_is_refused(d42: tr.Dialect) -> None:
    with pytest.raises(tr.Untranslatable):
        tr.outbound(message("D", new_order44(_54="B")), d42)  # Side "as defined"
    no_symbol = [(t, v) for t, v in new_order44(_48="US0000000001", _22="4") if t != 55]
    with pytest.raises(tr.Untranslatable) as e:
        tr.outbound(message("D", no_symbol), d42)  # Symbol is required in 4.2
    assert e.value.tag == 55


# ---------------------------------------------------------------- user-defined tags
def test_extra_tags_kept_only_when_listed() -> None:
    for begin in (F42, F50):
        listed, unlisted = tr.Dialect(begin, frozenset({7001})), tr.Dialect(begin)
        m44 = message("8", report44("F", "1", _7001="desk-note"))
        assert fields(on_wire(tr.outbound(m44, listed), begin))[7001] == "desk-note"
        assert 7001 not in fields(on_wire(tr.outbound(m44, unlisted), begin))
        fields_in = new_order42(_7001="x") if begin == F42 else \
            [(11, "C1"), (55, "ACME"), (54, "1"), (60, NOW), (38, "1"), (40, "1"), (7001, "x")]
        received = on_wire(message("D", fields_in), begin)
        assert fields(tr.inbound(received, listed))[7001] == "x"
        assert 7001 not in fields(tr.inbound(received, unlisted))


def test_message_type_the_target_lacks_is_refused(d42: tr.Dialect) -> None:
    with pytest.raises(tr.Untranslatable):
        tr.outbound(message("AE", [(571, "T1")]), d42)  # TradeCaptureReport: not in 4.2


def test_gateway_rejects_render_for_every_dialect(d42: tr.Dialect, d50: tr.Dialect) -> None:
    from gateway.fix import messages as fm

    built = (fm.order_reject("C1", "ACC1", "ACME", "1", 100.0, 99, "QTY_MAX: too big"),
             fm.order_reject("C1", "", "", "", float("nan"), 3, "VENUE_DOWN"),
             fm.cancel_reject("C2", "C1", "", "8", "2", 99, "UNKNOWN_ORDER"))
    for m in built:
        for d, begin in ((d42, F42), (d50, F50)):
            got = fields(on_wire(tr.outbound(m, d), begin))
            assert got[11] == m.getField(11) and got[58] == m.getField(58)
