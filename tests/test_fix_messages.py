"""Reading a QuickFIX message in one SWIG call (gateway.fix.messages.to_dict): data fields, which may hold SOH,
are taken at their length, and the list of their length fields stays in step with the dictionaries."""

from __future__ import annotations

import re
from pathlib import Path

import quickfix as fix

from gateway.fix import messages as fm

SPECS = Path(__file__).resolve().parent.parent / "fix_specs"


def test_the_data_length_tags_are_those_of_the_dictionaries() -> None:
    found = {93}  # SignatureLength precedes Signature(89) in the trailer
    for xml in SPECS.glob("FIX*.xml"):
        pairs = re.findall(r"<field number=['\"](\d+)['\"] name=['\"]\w+['\"] type=['\"](\w+)['\"]", xml.read_text())
        types = {int(n): t for n, t in pairs}
        found |= {n for n, t in types.items() if t == "LENGTH" and types.get(n + 1) in ("DATA", "XMLDATA")}
    assert fm.DATA_LENGTH_TAGS == found


def test_a_data_field_with_soh_inside_is_one_field() -> None:
    m = fm.new_message("D")
    header_xml = "<x>\x0135=G\x01</x>"
    m.getHeader().setField(212, str(len(header_xml)))
    m.getHeader().setField(213, header_xml)
    text = "a\x0111=EVIL\x01b é"  # lengths are in bytes: é is two
    for tag, value in ((11, "C1"), (55, "AAPL"), (354, str(len(text.encode()))), (355, text), (58, "after")):
        m.setField(tag, value)
    f = fm.to_dict(m)
    assert (f[35], f[11], f[55], f[213], f[355], f[58]) == ("D", "C1", "AAPL", header_xml, text, "after")


def test_a_message_without_data_fields_reads_as_before() -> None:
    m = fix.Message("8=FIX.4.4\x019=40\x0135=D\x0134=2\x0149=A\x0156=B\x0111=C1\x0155=AAPL\x0110=000\x01", False)
    f = fm.to_dict(m)  # BodyLength(9) and CheckSum(10) are QuickFIX's own
    assert sorted(f) == [8, 9, 10, 11, 34, 35, 49, 55, 56]
    assert [f[t] for t in (8, 35, 34, 49, 56, 11, 55)] == ["FIX.4.4", "D", "2", "A", "B", "C1", "AAPL"]
